use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

fn not_a_predicate(_user: &str) -> bool {
    true
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(write_role(predicate = not_a_predicate))]
pub struct Flags {
    pub on: bool,
}

fn main() {}
