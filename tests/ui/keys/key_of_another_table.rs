use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner], write_role = admin)]
pub struct SiteConfig {
    pub message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [db])]
pub struct Health {
    pub ok: bool,
}

async fn read(store: kv_runtime::Store) {
    let _ = store.table::<SiteConfig>().get(HealthKey::Db).await;
}

fn main() {}
