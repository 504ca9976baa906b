use kv_runtime::Quota;

pub struct Voter {
    pub id: u64,
}

#[derive(Quota)]
#[quota(max = 5, window = "1h", owner = Voter)]
pub struct Votes;

fn main() {}
