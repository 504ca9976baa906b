use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner, maintenance], write_role = admin)]
pub struct SiteConfig {
    pub message: String,
}

fn main() {
    let _ = SiteConfigKey::Baner;
}
