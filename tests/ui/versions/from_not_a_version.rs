use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Plain {
    text: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(version = 2, from = Plain)]
struct Banner {
    message: String,
}

impl From<Plain> for Banner {
    fn from(p: Plain) -> Banner {
        Banner { message: p.text }
    }
}

fn main() {}
