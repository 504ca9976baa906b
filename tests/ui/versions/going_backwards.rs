use kv_runtime::{Kv, KvVersion};
use serde::{Deserialize, Serialize};

#[derive(KvVersion, Deserialize)]
#[kv(version = 3)]
struct BannerNext {
    text: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(version = 2, from = BannerNext)]
struct Banner {
    message: String,
}

impl From<BannerNext> for Banner {
    fn from(p: BannerNext) -> Banner {
        Banner { message: p.text }
    }
}

fn main() {}
