use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(soft_delete, keys = [a], soft_delete)]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
