use kv_runtime::Quota;

#[derive(Quota)]
#[quota(max = 5, window = "400d")]
pub struct Votes;

fn main() {}
