//! Replicas on the in-process backends (memory, SQLite): loading, following
//! changes, resynchronising after the feed overflowed.

mod support;

use std::future::Future;

use kv_runtime::Store;
use support::sqlite;
use support::tables::*;
use support::tempdir::TempDir;
use support::wait::eventually;
use support::watch::replica_follows_the_table;

#[tokio::test]
async fn replica_follows_the_table_in_memory() {
    replica_follows_the_table(Store::memory()).await;
}

#[tokio::test]
async fn replica_follows_the_table_on_sqlite() {
    let dir = TempDir::new("replica");
    replica_follows_the_table(sqlite::store_in(&dir).await).await;
}

/// More writes than the feed holds, made while the follower cannot run (a
/// single-threaded runtime that does not yield): the follower lags, reloads
/// the table, and ends on the last write.
#[tokio::test(flavor = "current_thread")]
async fn a_lagging_replica_reloads() {
    let store = Store::memory();
    let t = store.table::<Banner>();
    let replica = t.replica().await.unwrap();
    let writes = kv_runtime::backend::FEED_CAPACITY as u64 + 100;
    let mut last = None;
    for n in 1..=writes {
        last = Some(
            t.set(&admin(), BannerKey::Banner, banner("lag", n))
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    eventually("the replica reloads and ends on the last write", || {
        replica.get(&BannerKey::Banner).as_deref() == Some(&last)
    })
    .await;
    let status = replica.status();
    assert!(status.resyncs >= 1, "{status:?}");
    assert!(status.in_sync, "{status:?}");
    assert_eq!(status.stale_for(), None);
}

/// `get` needs no runtime: it is a plain function call.
#[test]
fn get_is_synchronous() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = Store::memory();
    let t = store.table::<Banner>();
    let (replica, row) = runtime.block_on(async {
        let row = t
            .set(&admin(), BannerKey::Banner, banner("sync", 1))
            .await
            .unwrap();
        (t.replica().await.unwrap(), row)
    });
    // Called from a plain thread, outside the runtime.
    let reader = std::thread::spawn(move || replica.get(&BannerKey::Banner));
    assert_eq!(reader.join().unwrap().as_deref(), Some(&row));
}

/// Outside a Tokio runtime a replica cannot run its follower: an error, not
/// a panic.
#[test]
fn starting_a_replica_outside_tokio_is_an_error() {
    let store = Store::memory();
    let t = store.table::<Banner>();
    let fut = t.replica();
    // Poll it by hand, with no runtime around.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            assert_eq!(e.code(), kv_runtime::ErrorCode::Config, "{e}")
        }
        other => panic!(
            "expected a config error, got {:?}",
            other.map(|r| r.is_ok())
        ),
    }
}
