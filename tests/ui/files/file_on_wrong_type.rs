use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, clean_files)]
pub struct Avatar {
    #[kv(file)]
    pub size: u64,
    #[kv(fiel)]
    pub name: String,
}

fn main() {}
