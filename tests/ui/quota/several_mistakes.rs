use kv_runtime::Quota;

#[derive(Quota)]
#[quota(max = 0, window = "2y", name = "bad name", per = user)]
pub struct Votes;

fn main() {}
