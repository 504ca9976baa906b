use kv_runtime::{Kv, KvVersion};
use serde::{Deserialize, Serialize};

// Two types claim version 2: the previous one must be older.
#[derive(KvVersion, Deserialize)]
#[kv(version = 2)]
struct BannerOld {
    text: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(version = 2, from = BannerOld)]
struct Banner {
    message: String,
}

impl From<BannerOld> for Banner {
    fn from(p: BannerOld) -> Banner {
        Banner { message: p.text }
    }
}

fn main() {}
