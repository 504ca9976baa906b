use kv_runtime::Quota;

#[derive(Quota)]
#[quota(window = "1h")]
pub struct Votes;

fn main() {}
