use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: u64,
}

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(parent = Room, write_role = member)]
pub struct ChatMessage {
    pub text: String,
}

fn main() {}
