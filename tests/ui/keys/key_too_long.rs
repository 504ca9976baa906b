use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

// The second key is 257 bytes (4 lines of 64, and one more), one more than a
// key may have. The key enum is still generated, so `main` adds no error.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [
    banner,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
     aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
     aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
     aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\
     a",
])]
pub struct SiteConfig {
    pub message: String,
}

fn main() {
    let _ = SiteConfigKey::Banner;
}
