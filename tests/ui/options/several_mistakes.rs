use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner, banner], write_role = 42, colour = "red", table = "bad name")]
pub struct SiteConfig {
    pub message: String,
}

fn main() {
    // The key enum is still generated, so this line adds no error.
    let _ = SiteConfigKey::Banner;
}
