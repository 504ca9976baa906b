use kv_runtime::Quota;

#[derive(Quota)]
#[quota(max = 5, window = "1h")]
pub struct Votes<T>(std::marker::PhantomData<T>);

fn main() {}
