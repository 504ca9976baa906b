use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, clean_files)]
pub struct Avatar {
    pub url: String,
}

fn main() {}
