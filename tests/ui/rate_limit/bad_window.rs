use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, rate_limit(max = 10, window = "30 seconds"))]
pub struct A {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, rate_limit(max = 10, window = "0s"))]
pub struct B {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, rate_limit(max = 10, window = "400d"))]
pub struct C {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, rate_limit(max = 10))]
pub struct D {
    pub message: String,
}

fn main() {}
