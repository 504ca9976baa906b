use kv_runtime::Log;
use serde::{Deserialize, Serialize};

#[derive(Log, Serialize, Deserialize, Clone)]
#[log(write_role = member)]
pub enum ChatMessage {
    Text(String),
    Image(String),
}

fn main() {}
