use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner], soft_delet)]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
