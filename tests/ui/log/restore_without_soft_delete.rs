use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = member)]
pub struct ChatMessage {
    pub text: String,
}

async fn undo(store: kv_runtime::Store, ctx: kv_runtime::Ctx) {
    let _ = store.log::<ChatMessage>().restore(&ctx, "general".to_owned(), 7).await;
}

fn main() {}
