//! Watch streams on the memory backend: the shared scenarios, plus what only
//! an in-process backend lets a test provoke (a lagging watcher, a stored
//! value that no longer matches the schema).

mod support;

use std::sync::Arc;

use kv_runtime::backend::{Backend, Expect, Payload};
use kv_runtime::{ErrorCode, Store};
use support::tables::*;
use support::wait::{bounded, eventually};
use support::watch::{self, next_ok};

#[tokio::test]
async fn first_item_is_the_current_state() {
    watch::first_item_is_the_current_state(Store::memory()).await;
}

#[tokio::test]
async fn watch_sees_each_change_in_order() {
    watch::watch_sees_each_change_in_order(Store::memory()).await;
}

#[tokio::test]
async fn watch_sees_hard_deletes() {
    watch::watch_sees_hard_deletes(Store::memory()).await;
}

#[tokio::test]
async fn watch_keeps_commit_order_of_a_burst() {
    watch::watch_keeps_commit_order_of_a_burst(Store::memory()).await;
}

#[tokio::test]
async fn table_watch_starts_with_every_live_row() {
    watch::table_watch_starts_with_every_live_row(Store::memory()).await;
}

#[tokio::test]
async fn dropping_watches_and_replicas_leaks_nothing() {
    watch::dropping_watches_and_replicas_leaks_nothing(Store::memory()).await;
}

/// A watcher that falls more than the feed's capacity behind gets the
/// current state again, flagged `resynced`, and ends on the last write.
#[tokio::test]
async fn a_lagging_watcher_resynchronises() {
    let store = Store::memory();
    let t = store.table::<Banner>();
    let mut w = t.watch(BannerKey::Banner).await.unwrap();
    let mut tw = t.watch_table().await.unwrap();
    assert_eq!(next_ok(&mut w).await.row, None);
    let writes = kv_runtime::backend::FEED_CAPACITY as u64 + 500;
    let mut last = None;
    for n in 1..=writes {
        last = Some(
            t.set(&admin(), BannerKey::Banner, banner("lag", n))
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    let mut resynced = false;
    let mut previous = 0;
    loop {
        let e = next_ok(&mut w).await;
        resynced |= e.resynced;
        let row = e.row.expect("only sets were made");
        assert!(row.updated_at > previous, "states go forward");
        previous = row.updated_at;
        if row == last {
            break;
        }
    }
    assert!(resynced, "the lag was reported as a resync");
    let pending = tokio::time::timeout(std::time::Duration::from_millis(50), w.next()).await;
    assert!(pending.is_err(), "nothing after the last write");

    // The table watch too: it delivers every live row again, flagged.
    let mut resynced = false;
    loop {
        let e = next_ok(&mut tw).await;
        resynced |= e.resynced;
        if e.row.as_ref() == Some(&last) {
            break;
        }
    }
    assert!(resynced);
}

/// A stored value that does not match the schema is an `Err` item, not a
/// panic, and the stream goes on.
#[tokio::test]
async fn an_unreadable_row_is_an_error_item() {
    let store = Store::memory();
    let t = store.table::<Banner>();
    let raw_put = |json: &'static str| {
        let backend: Arc<dyn Backend> = Arc::clone(store.backend());
        async move {
            backend
                .set(
                    "watchBanner",
                    kv_runtime::backend::Write {
                        key: "banner",
                        expect: Expect::Any,
                        updated_by: None,
                        now: 1,
                        history: None,
                    },
                    Payload::from_json(json),
                )
                .await
                .unwrap();
        }
    };
    raw_put(r#"{"text": 5}"#).await;
    let mut w = t.watch(BannerKey::Banner).await.unwrap();
    let err = bounded("watch", w.next()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unreadable, "{err}");
    let mut tw = t.watch_table().await.unwrap();
    let err = bounded("watch", tw.next()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unreadable, "{err}");
    let replica = t.replica().await.unwrap();
    assert_eq!(replica.get(&BannerKey::Banner), None);
    assert_eq!(replica.status().unreadable_rows, 1);
    assert!(replica.status().last_error.is_some());

    let good = t
        .set(&admin(), BannerKey::Banner, banner("fine", 1))
        .await
        .unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&good));
    assert_eq!(next_ok(&mut tw).await.row.as_ref(), Some(&good));
    raw_put(r#"[]"#).await;
    assert!(bounded("watch", w.next()).await.unwrap().is_err());
    eventually("the replica drops the unreadable row", || {
        replica.get(&BannerKey::Banner).is_none()
    })
    .await;
    let again = t
        .set(&admin(), BannerKey::Banner, banner("fine", 2))
        .await
        .unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&again));
}

/// Rows whose key the schema does not declare are skipped by table watches
/// and replicas (they are orphans of an older schema).
#[tokio::test]
async fn undeclared_keys_are_skipped() {
    let store = Store::memory();
    let backend = Arc::clone(store.backend());
    for key in ["retired", "banner"] {
        backend
            .set(
                "watchBanner",
                kv_runtime::backend::Write {
                    key,
                    expect: Expect::Any,
                    updated_by: None,
                    now: 1,
                    history: None,
                },
                Payload::from_json(r#"{"text":"t","n":1}"#),
            )
            .await
            .unwrap();
    }
    let t = store.table::<Banner>();
    let mut tw = t.watch_table().await.unwrap();
    let replica = t.replica().await.unwrap();
    assert_eq!(next_ok(&mut tw).await.key, BannerKey::Banner);
    assert_eq!(replica.len(), 1);
    assert_eq!(replica.get_str("retired"), None);
    backend
        .set(
            "watchBanner",
            kv_runtime::backend::Write {
                key: "retired",
                expect: Expect::Any,
                updated_by: None,
                now: 2,
                history: None,
            },
            Payload::from_json(r#"{"text":"t","n":2}"#),
        )
        .await
        .unwrap();
    let motd = t
        .set(&admin(), BannerKey::Motd, banner("m", 1))
        .await
        .unwrap();
    let e = next_ok(&mut tw).await;
    assert_eq!(
        e.row.as_ref(),
        Some(&motd),
        "the undeclared key was skipped"
    );
    eventually("the replica sees motd", || replica.len() == 2).await;
    assert_eq!(replica.get_str("retired"), None);
}

/// Watches are `Unpin + Send` (an SSE response can own one; their
/// `Stream` impl is used by the web layer), the futures that make them are
/// `Send`, and replicas can be shared between threads.
#[test]
fn the_types_can_cross_threads() {
    fn send_unpin<T: Unpin + Send + 'static>() {}
    fn send<T: Send>(_: &T) {}
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    send_unpin::<kv_runtime::Watch<Banner>>();
    send_unpin::<kv_runtime::Watch<Banner>>();
    send_sync_clone::<kv_runtime::Replica<Banner>>();
    let store = Store::memory();
    let t = store.table::<Banner>();
    send(&t.watch(BannerKey::Banner));
    send(&t.watch_table());
    send(&t.replica());
}
