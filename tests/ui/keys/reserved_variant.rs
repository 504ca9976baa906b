use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner, "ALL"])]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
