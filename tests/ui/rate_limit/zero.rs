use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, rate_limit = 0)]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
