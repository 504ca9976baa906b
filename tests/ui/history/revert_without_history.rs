use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone)]
#[kv(keys = [banner], write_role = admin, soft_delete)]
pub struct SiteConfig {
    pub message: String,
}

async fn undo(store: kv_runtime::Store, ctx: kv_runtime::Ctx) {
    let _ = store.table::<SiteConfig>().revert(&ctx, SiteConfigKey::Banner, 1).await;
}

fn main() {}
