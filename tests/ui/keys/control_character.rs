use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

// U+0007 (bell) is one byte in UTF-8, U+0085 (next line) two: both are
// control characters, and each key is reported.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner, "a\u{7}b", "next\u{85}line"])]
pub struct SiteConfig {
    pub message: String,
}

fn main() {
    let _ = SiteConfigKey::Banner;
}
