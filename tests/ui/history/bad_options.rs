use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history(keep = 0))]
pub struct A {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history(keep_for = "30 days"))]
pub struct B {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history(keep_for = "500ms"))]
pub struct C {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history())]
pub struct D {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history(kept = 10))]
pub struct E {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history = 10)]
pub struct F {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = admin, history(keep = 100, keep_for = "36501d"))]
pub struct G {
    pub message: String,
}

fn main() {}
