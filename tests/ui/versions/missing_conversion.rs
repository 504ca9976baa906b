use kv_runtime::{Kv, KvVersion};
use serde::{Deserialize, Serialize};

#[derive(KvVersion, Deserialize)]
#[kv(version = 1)]
struct BannerV1 {
    text: String,
}

// No `impl From<BannerV1> for Banner`: old rows could not be converted.
#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(version = 2, from = BannerV1)]
struct Banner {
    message: String,
}

fn main() {}
