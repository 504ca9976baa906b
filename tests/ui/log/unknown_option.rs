use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = member, colour = "red")]
pub struct ChatMessage {
    pub text: String,
}

fn main() {}
