use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(keys = [general, random], write_role = member)]
pub struct ChatMessage {
    pub text: String,
}

fn main() {}
