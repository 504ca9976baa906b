use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner])]
pub enum SiteConfig {
    On,
    Off,
}

fn main() {
    let _ = SiteConfigKey::Banner;
}
