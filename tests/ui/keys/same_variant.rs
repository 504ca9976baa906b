use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [site_banner, "site-banner"])]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
