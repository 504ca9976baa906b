//! Bounded waits. The bound is hang detection only: a test that waits
//! longer has hung; nothing here checks speed.

use std::future::Future;
use std::time::Duration;

/// Every wait in the tests is bounded by this.
pub const BOUND: Duration = Duration::from_secs(60);

/// `f`, which must finish within [`BOUND`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {BOUND:?}"))
}

/// Waits (bounded) until `check` holds, polling every few milliseconds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    bounded(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}
