use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = ["2fa", "", 42, "self"])]
pub struct SiteConfig {
    pub message: String,
}

fn main() {}
