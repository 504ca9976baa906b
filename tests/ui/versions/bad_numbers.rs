use kv_runtime::{Kv, KvVersion};
use serde::{Deserialize, Serialize};

#[derive(KvVersion, Deserialize)]
#[kv(version = 1)]
struct V1 {
    text: String,
}

// Versions start at 1.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(table = "zero", version = 0)]
struct Zero {
    text: String,
}

// `from` needs this version's own number.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(table = "unnumbered", from = V1)]
struct Unnumbered {
    text: String,
}

// Version 1 comes from nothing.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(table = "first", version = 1, from = V1)]
struct First {
    text: String,
}

// A previous version takes only `version` and `from`, and needs its number.
#[derive(KvVersion, Deserialize)]
#[kv(soft_delete)]
struct Old {
    text: String,
}

fn main() {}
