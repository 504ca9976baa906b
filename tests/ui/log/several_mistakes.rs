use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = 42, read_role = rooms::may_read, table = "bad name", rate_limit = 0, parent = "RoomId")]
pub struct ChatMessage {
    pub text: String,
}

fn main() {}
