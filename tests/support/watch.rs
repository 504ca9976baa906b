//! The watch and replica scenarios that run unchanged on every backend, and
//! what they need to read a watch.

use std::sync::Arc;
use std::time::Duration;

use kv_runtime::{Replica, Store, Watch, WatchEvent};

use super::tables::*;
use super::wait::{bounded, eventually};

/// The next item of a watch (of a key or of a table), which must come
/// within the bound and be `Ok`.
pub async fn next_ok<S: kv_runtime::KvSchema>(watch: &mut Watch<S>) -> WatchEvent<S> {
    bounded("the next watch item", watch.next())
        .await
        .expect("the watch stays open")
        .expect("the watch item is not an error")
}

/// The value summary of an event's live row (text and number), for
/// comparing sequences.
pub fn summary(e: &WatchEvent<Banner>) -> Option<(String, u64)> {
    e.row.as_ref().map(|r| (r.value.text.clone(), r.value.n))
}

/// The first item is the current state: the row, or `None`.
pub async fn first_item_is_the_current_state(store: Store) {
    let t = store.table::<Banner>();
    let mut absent = bounded("watch", t.watch(BannerKey::Motd)).await.unwrap();
    let first = next_ok(&mut absent).await;
    assert_eq!(first.key, BannerKey::Motd);
    assert_eq!(first.row, None);
    assert!(!first.resynced);

    let row = t
        .set(&admin(), BannerKey::Banner, banner("hello", 1))
        .await
        .unwrap();
    let mut present = bounded("watch", t.watch(BannerKey::Banner)).await.unwrap();
    let first = next_ok(&mut present).await;
    assert_eq!(first.row.as_ref(), Some(&row));
    assert!(!first.resynced);

    // A soft-deleted row is no row.
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let mut deleted = bounded("watch", t.watch(BannerKey::Banner)).await.unwrap();
    assert_eq!(next_ok(&mut deleted).await.row, None);
}

/// set / soft rm / restore, one step at a time: each state arrives, in order.
pub async fn watch_sees_each_change_in_order(store: Store) {
    let t = store.table::<Banner>();
    let mut w = bounded("watch", t.watch(BannerKey::Banner)).await.unwrap();
    assert_eq!(next_ok(&mut w).await.row, None);

    let one = t
        .set(&admin(), BannerKey::Banner, banner("one", 1))
        .await
        .unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&one));

    let two = t
        .set(&admin(), BannerKey::Banner, banner("two", 2))
        .await
        .unwrap();
    let e = next_ok(&mut w).await;
    assert_eq!(e.row.as_ref(), Some(&two));
    assert!(!e.resynced);

    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let e = next_ok(&mut w).await;
    assert_eq!(e.row, None, "a soft delete shows as no row");
    assert!(!e.resynced);

    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    let e = next_ok(&mut w).await;
    assert_eq!(
        e.row.as_ref(),
        Some(&restored),
        "a restore shows the row again"
    );
    assert!(restored.updated_at > two.updated_at);

    // Another key of the table, and another table, are not this watch's.
    t.set(&admin(), BannerKey::Motd, banner("other", 9))
        .await
        .unwrap();
    store
        .table::<Note>()
        .set(&admin(), "banner".to_owned(), note("x"))
        .await
        .unwrap();
    let three = t
        .set(&admin(), BannerKey::Banner, banner("three", 3))
        .await
        .unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&three));
}

/// Hard deletes (a table without soft delete) show as no row, and the key
/// can come back.
pub async fn watch_sees_hard_deletes(store: Store) {
    let t = store.table::<Note>();
    let key = "a".to_owned();
    let first = t.set(&admin(), &key, note("1")).await.unwrap();
    let mut w = bounded("watch", t.watch(&key)).await.unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&first));
    let second = t.set(&admin(), &key, note("2")).await.unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&second));
    assert!(t.rm(&admin(), &key).await.unwrap());
    assert_eq!(
        next_ok(&mut w).await.row,
        None,
        "a hard delete shows as no row"
    );
    let again = t.set(&admin(), &key, note("3")).await.unwrap();
    assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&again));
}

/// Writes made back to back, before the watcher reads anything, still come
/// out one state per write, in commit order.
pub async fn watch_keeps_commit_order_of_a_burst(store: Store) {
    let t = store.table::<Banner>();
    let start = t
        .set(&admin(), BannerKey::Banner, banner("start", 0))
        .await
        .unwrap();
    let mut w = bounded("watch", t.watch(BannerKey::Banner)).await.unwrap();
    let mut expected = vec![Some(("start".to_owned(), 0))];
    for n in 1..=5 {
        t.set(&admin(), BannerKey::Banner, banner("burst", n))
            .await
            .unwrap();
        expected.push(Some(("burst".to_owned(), n)));
    }
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    expected.push(None);
    t.restore(&admin(), BannerKey::Banner).await.unwrap();
    expected.push(Some(("burst".to_owned(), 5)));
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    expected.push(None);
    let last = t
        .set(&admin(), BannerKey::Banner, banner("end", 6))
        .await
        .unwrap();
    expected.push(Some(("end".to_owned(), 6)));

    let mut seen = Vec::new();
    let mut versions = Vec::new();
    while seen.len() < expected.len() {
        let e = next_ok(&mut w).await;
        assert!(!e.resynced, "no resync on a healthy feed: {seen:?}");
        if let Some(row) = &e.row {
            versions.push(row.updated_at);
        }
        seen.push(summary(&e));
    }
    assert_eq!(seen, expected);
    assert!(versions.windows(2).all(|p| p[0] < p[1]), "{versions:?}");
    assert_eq!(versions.first(), Some(&start.updated_at));
    assert_eq!(versions.last(), Some(&last.updated_at));
}

/// A whole-table watch starts with every live row, in key order, then
/// follows changes of any key.
pub async fn table_watch_starts_with_every_live_row(store: Store) {
    let t = store.table::<Note>();
    for k in ["c", "a", "b", "d"] {
        t.set(&admin(), k.to_owned(), note(k)).await.unwrap();
    }
    assert!(t.rm(&admin(), "b".to_owned()).await.unwrap());
    // Rows of another table are not this table's.
    store
        .table::<Banner>()
        .set(&admin(), BannerKey::Banner, banner("x", 1))
        .await
        .unwrap();

    let mut w = bounded("watch_table", t.watch_table()).await.unwrap();
    let mut first = Vec::new();
    for _ in 0..3 {
        let e = next_ok(&mut w).await;
        assert!(!e.resynced);
        let row = e.row.expect("the initial items are live rows");
        assert_eq!(row.key, e.key);
        first.push(row.value.text);
    }
    assert_eq!(first, ["a", "c", "d"]);

    store
        .table::<Banner>()
        .set(&admin(), BannerKey::Banner, banner("y", 2))
        .await
        .unwrap();
    let e_row = t.set(&admin(), "e".to_owned(), note("e")).await.unwrap();
    let e = next_ok(&mut w).await;
    assert_eq!(e.key, "e");
    assert_eq!(e.row.as_ref(), Some(&e_row));
    assert!(t.rm(&admin(), "a".to_owned()).await.unwrap());
    let e = next_ok(&mut w).await;
    assert_eq!((e.key.as_str(), e.row), ("a", None));
    let b = t.set(&admin(), "b".to_owned(), note("b2")).await.unwrap();
    let e = next_ok(&mut w).await;
    assert_eq!(e.row.as_ref(), Some(&b));
}

/// A replica loads every live row, follows set / rm / restore, and answers
/// `get` synchronously.
pub async fn replica_follows_the_table(store: Store) {
    let t = store.table::<Banner>();
    let notes = store.table::<Note>();
    let first = t
        .set(&admin(), BannerKey::Banner, banner("one", 1))
        .await
        .unwrap();
    for k in ["a", "b"] {
        notes.set(&admin(), k.to_owned(), note(k)).await.unwrap();
    }
    let replica = bounded("replica", t.replica()).await.unwrap();
    let note_replica = bounded("replica", notes.replica()).await.unwrap();
    assert_eq!(replica.len(), 1);
    assert!(!replica.is_empty());
    assert_eq!(replica.get(&BannerKey::Banner).as_deref(), Some(&first));
    assert_eq!(replica.get_str("banner").as_deref(), Some(&first));
    assert_eq!(replica.get(&BannerKey::Motd), None);
    assert_eq!(replica.get_str("nope"), None);
    assert_eq!(note_replica.len(), 2);
    let status = replica.status();
    assert!(status.in_sync && status.following);
    assert_eq!(status.resyncs, 0);
    assert_eq!(status.stale_for(), None);

    let second = t
        .set(&admin(), BannerKey::Banner, banner("two", 2))
        .await
        .unwrap();
    eventually("the replica sees the set", || {
        replica.get(&BannerKey::Banner).as_deref() == Some(&second)
    })
    .await;
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    eventually("the replica sees the soft delete", || {
        replica.get(&BannerKey::Banner).is_none()
    })
    .await;
    assert!(replica.is_empty());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    let motd = t
        .set(&admin(), BannerKey::Motd, banner("m", 7))
        .await
        .unwrap();
    eventually("the replica sees the restore and the new key", || {
        replica.get(&BannerKey::Banner).as_deref() == Some(&restored)
            && replica.get(&BannerKey::Motd).as_deref() == Some(&motd)
    })
    .await;
    let rows: Vec<_> = replica.rows().iter().map(|r| r.key).collect();
    assert_eq!(rows, [BannerKey::Banner, BannerKey::Motd]);
    // A clone shares the mirror.
    let clone = replica.clone();
    assert_eq!(clone.len(), 2);

    assert!(notes.rm(&admin(), "a".to_owned()).await.unwrap());
    eventually("the replica sees the hard delete", || {
        note_replica.get_str("a").is_none() && note_replica.len() == 1
    })
    .await;
    let status = replica.status();
    assert!(status.in_sync);
    assert!(status.changes_applied >= 4, "{status:?}");
}

/// Listeners (feed receivers) come and go with watches and replicas.
pub async fn dropping_watches_and_replicas_leaks_nothing(store: Store) {
    let listeners = || store.backend().feed().listeners();
    let t = store.table::<Banner>();
    let baseline = Arc::strong_count(store.backend());
    assert_eq!(listeners(), 0);

    let w1 = bounded("watch", t.watch(BannerKey::Banner)).await.unwrap();
    let mut w2 = bounded("watch", t.watch(BannerKey::Motd)).await.unwrap();
    let tw = bounded("watch_table", t.watch_table()).await.unwrap();
    let r1 = bounded("replica", t.replica()).await.unwrap();
    let r2 = r1.clone();
    let r3: Replica<Banner> = bounded("replica", Replica::start(&t)).await.unwrap();
    assert_eq!(listeners(), 5);
    // A watch in the middle of waiting for the feed is dropped too.
    assert_eq!(next_ok(&mut w2).await.row, None);
    let pending = tokio::time::timeout(Duration::from_millis(50), w2.next()).await;
    assert!(pending.is_err(), "nothing was written");

    drop((w1, w2, tw));
    assert_eq!(listeners(), 2);
    drop(r1);
    assert_eq!(listeners(), 2, "a clone keeps the replica following");
    t.set(&admin(), BannerKey::Banner, banner("still", 1))
        .await
        .unwrap();
    eventually("the clone still follows", || {
        r2.get(&BannerKey::Banner).is_some()
    })
    .await;
    drop((r2, r3));
    // The follower tasks stop when aborted: soon, not necessarily at once.
    eventually("every listener is gone", || listeners() == 0).await;
    eventually("no task holds the store", || {
        Arc::strong_count(store.backend()) == baseline
    })
    .await;
}
