//! Watch streams and replicas on PostgreSQL: the shared scenarios, a write
//! made in another operating-system process reaching a watcher and a
//! replica here, per-key order under 1000 rapid concurrent writes, and no
//! listener left behind.
//!
//! Each test gets a database of its own (LISTEN/NOTIFY is per database).
//! Without `KV_TEST_POSTGRES_URL` the tests skip loudly (and fail in CI);
//! run them with `scripts/test.sh --test watch_postgres`.
//!
//! The write from another process is made by the `kv-test-worker` binary
//! (`tests/worker/`), role `watch-writer`.

mod support;

use kv_runtime::backend::postgres::PostgresBackend;
use kv_runtime::{Ctx, Store};
use support::pg;
use support::process;
use support::tables::*;
use support::wait::{bounded, eventually, BOUND};
use support::watch::{self, next_ok, summary};

/// Runs a shared scenario on a store over a fresh database.
macro_rules! on_postgres {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(url) = pg::server_url() else { return };
            watch::$name(pg::fresh_store(&url).await).await;
        }
    )*};
}

on_postgres!(
    first_item_is_the_current_state,
    watch_sees_each_change_in_order,
    watch_sees_hard_deletes,
    watch_keeps_commit_order_of_a_burst,
    table_watch_starts_with_every_live_row,
    replica_follows_the_table,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_watches_and_replicas_leaks_nothing() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let backend = PostgresBackend::open_url(&db).await.unwrap();
    watch::dropping_watches_and_replicas_leaks_nothing(Store::with_backend(backend)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_another_process_reaches_watchers_and_replicas() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let store = Store::open(&db).await.unwrap();
    let t = store.table::<Banner>();
    let mut w = t.watch(BannerKey::Banner).await.unwrap();
    let mut tw = t.watch_table().await.unwrap();
    let replica = t.replica().await.unwrap();
    assert_eq!(next_ok(&mut w).await.row, None);
    assert!(replica.is_empty());

    // The worker sets, sets, soft-deletes, restores and sets the banner,
    // reporting the `updated_at` each write produced.
    let mut child = process::spawn("watch-writer", &[&db]);
    let lines = process::lines(&mut child);
    let mut pid = 0;
    // Each write as the writer saw it: Some(updated_at), or None for the rm.
    let mut written: Vec<Option<i64>> = Vec::new();
    loop {
        let line = lines
            .recv_timeout(BOUND)
            .expect("the writer reports within the bound");
        let (what, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match what {
            "pid" => pid = arg.parse().unwrap(),
            "set" => written.push(Some(arg.parse().unwrap())),
            "rm" => written.push(None),
            "done" => break,
            other => panic!("unexpected line from the writer: {other}"),
        }
    }
    process::wait(child);
    assert!(
        pid != 0 && pid != std::process::id(),
        "the writer is another process"
    );

    let mut seen = Vec::new();
    let mut values = Vec::new();
    while seen.len() < written.len() {
        let e = next_ok(&mut w).await;
        assert!(!e.resynced, "after {values:?}: {e:?}");
        values.push(summary(&e));
        seen.push(e.row.map(|r| r.updated_at));
    }
    assert_eq!(seen, written, "the watcher saw every write, in order");
    let expected_values = [
        Some(("one".to_owned(), 1)),
        Some(("two".to_owned(), 2)),
        None,
        Some(("two".to_owned(), 2)),
        Some(("three".to_owned(), 3)),
    ];
    assert_eq!(values, expected_values);

    let mut table_seen = Vec::new();
    while table_seen.len() < written.len() {
        let e = next_ok(&mut tw).await;
        assert_eq!(e.key, BannerKey::Banner);
        table_seen.push(e.row.map(|r| r.updated_at));
    }
    assert_eq!(table_seen, written, "the table watch too");

    let last = written.last().copied().flatten();
    eventually("the replica has the last write", || {
        replica.get(&BannerKey::Banner).map(|r| r.updated_at) == last
    })
    .await;
    assert_eq!(replica.get(&BannerKey::Banner).unwrap().value.n, 3);
    let status = replica.status();
    assert!(status.in_sync, "{status:?}");
    assert_eq!(status.resyncs, 0);
}

/// Four writers hammer one key with 250 writes each (1000 in all), through
/// a second store (its own pool and listener); then one final write. The
/// watcher sees strictly increasing versions, one state per write, ending
/// on the final write; the replica ends there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_per_key_holds_under_1000_rapid_writes() {
    const WRITERS: u64 = 4;
    const EACH: u64 = 250;
    const FINAL: u64 = 1_000_000;
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let reader = Store::open(&db).await.unwrap();
    let writer = Store::open(&db).await.unwrap();
    let t = reader.table::<Banner>();
    let mut w = t.watch(BannerKey::Banner).await.unwrap();
    let replica = t.replica().await.unwrap();
    assert_eq!(next_ok(&mut w).await.row, None);

    let consumer = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let e = next_ok(&mut w).await;
            let row = e.row.expect("only sets are made");
            let done = row.value.n == FINAL;
            seen.push((row.updated_at, row.value.n, e.resynced));
            if done {
                return seen;
            }
        }
    });

    let mut tasks = Vec::new();
    for task in 0..WRITERS {
        let wt = writer.table::<Banner>();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                wt.set(
                    &Ctx::internal(),
                    BannerKey::Banner,
                    banner("rapid", task * 1000 + i),
                )
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        bounded("a writer", task).await.unwrap();
    }
    let last = writer
        .table::<Banner>()
        .set(&admin(), BannerKey::Banner, banner("final", FINAL))
        .await
        .unwrap();

    let seen = bounded("the watcher reaching the final write", consumer)
        .await
        .unwrap();
    assert!(
        seen.windows(2).all(|p| p[0].0 < p[1].0),
        "states arrive in increasing updated_at order"
    );
    assert_eq!(seen.last().map(|s| s.0), Some(last.updated_at));
    let resynced = seen.iter().any(|s| s.2);
    assert!(!resynced, "no resync on a healthy server");
    assert_eq!(
        seen.len() as u64,
        WRITERS * EACH + 1,
        "one state per write: nothing lost, nothing repeated"
    );
    eventually("the replica reaches the final write", || {
        replica.get(&BannerKey::Banner).map(|r| r.updated_at) == Some(last.updated_at)
    })
    .await;
    assert_eq!(replica.status().resyncs, 0);
}

/// Rows too large for a notification (the feed reads them back) keep
/// their order too: what the watcher sees is a subsequence of the states
/// written, never a later state ahead of an earlier one, and it ends on
/// the last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_too_large_for_a_notification_keep_their_order() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let reader = Store::open(&db).await.unwrap();
    let writer = Store::open(&db).await.unwrap();
    let t = reader.table::<Banner>();
    let wt = writer.table::<Banner>();
    let mut w = t.watch(BannerKey::Banner).await.unwrap();
    let replica = t.replica().await.unwrap();
    assert_eq!(next_ok(&mut w).await.row, None);

    let big = "x".repeat(9000);
    // Each write as written: Some(updated_at), or None for a delete.
    let mut written = Vec::new();
    for n in 1..=30 {
        let row = wt
            .set(&admin(), BannerKey::Banner, banner(&big, n))
            .await
            .unwrap();
        written.push(Some(row.updated_at));
        if n % 3 == 0 {
            assert!(wt.rm(&admin(), BannerKey::Banner).await.unwrap());
            written.push(None);
        }
    }
    let last = wt
        .set(&admin(), BannerKey::Banner, banner(&big, 99))
        .await
        .unwrap();
    written.push(Some(last.updated_at));

    let mut seen = Vec::new();
    loop {
        let e = next_ok(&mut w).await;
        let state = e.row.as_ref().map(|r| r.updated_at);
        seen.push(state);
        if state == Some(last.updated_at) {
            break;
        }
    }
    // Greedy matching decides whether `seen` is a subsequence of `written`.
    let mut rest = written.iter();
    for state in &seen {
        assert!(
            rest.any(|w| w == state),
            "{state:?} is out of order: seen {seen:?}, written {written:?}"
        );
    }
    eventually("the replica reaches the last write", || {
        replica.get(&BannerKey::Banner).map(|r| r.updated_at) == Some(last.updated_at)
    })
    .await;
}

/// The feed itself, for rows too large for a notification: when writers
/// race ahead of the listener, a row read back may already be a later
/// version; the feed must not hand that on early (it would arrive again,
/// out of order, with the later change). Per key, versions on the feed
/// strictly increase and end on the last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_keeps_commit_order_for_rows_read_back() {
    use kv_runtime::backend::FeedEvent;
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let reader = Store::open(&db).await.unwrap();
    let writer = Store::open(&db).await.unwrap();
    let mut feed = reader.backend().feed().subscribe();
    let big = "y".repeat(9000);
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let wt = writer.table::<Banner>();
        let big = big.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                wt.set(
                    &Ctx::internal(),
                    BannerKey::Banner,
                    banner(&big, task * 100 + i),
                )
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        bounded("a writer", task).await.unwrap();
    }
    let last = writer
        .table::<Banner>()
        .set(&admin(), BannerKey::Banner, banner(&big, 999))
        .await
        .unwrap();
    let mut versions = Vec::new();
    loop {
        let event = bounded("the feed", feed.recv()).await.unwrap();
        let FeedEvent::Change(change) = event else {
            panic!("no resync on a healthy server");
        };
        let row = change.row.expect("only sets are made");
        versions.push(row.updated_at);
        if row.updated_at == last.updated_at {
            break;
        }
    }
    assert!(
        versions.windows(2).all(|p| p[0] < p[1]),
        "versions on the feed: {versions:?}"
    );
}
