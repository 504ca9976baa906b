use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = member)]
pub struct ChatMessage<T> {
    pub body: T,
}

fn main() {}
