use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
pub struct SiteConfig<T> {
    pub value: T,
}

fn main() {}
