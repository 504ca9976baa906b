use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = member)]
pub struct ChatMessage {
    #[log(max_len = 500)]
    pub text: String,
}

fn main() {}
