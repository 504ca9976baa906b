use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = 42)]
pub struct A {
    pub x: bool,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role = auth::is_admin)]
pub struct B {
    pub x: bool,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role(predicat = is_admin))]
pub struct C {
    pub x: bool,
}

fn main() {}
