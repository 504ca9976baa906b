//! Group commit on SQLite: concurrent writes share transactions, yet each
//! keeps its own check, its own failure and its place in the change feed.

mod support;

use std::collections::HashMap;

use kv_runtime::backend::{Backend, FeedEvent, TryRecv};
use kv_runtime::{ErrorCode, Store};
use support::sqlite::url;
use support::tables::*;
use support::tempdir::TempDir;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

const WRITERS: usize = 64;

/// Of many concurrent writes, one fails inside SQLite (a trigger refuses
/// its key): it alone fails, with BACKEND; every other write is stored and
/// published once, after its commit, in the order of the versions it got.
#[test]
fn a_failing_write_does_not_take_its_group_down() {
    let dir = TempDir::new("sqlite-group-failure");
    let path = dir.join("kv.db");
    runtime().block_on(async {
        let store = Store::open(&url(&path)).await.expect("store opens");
        let conn = rusqlite::Connection::open(&path).expect("rusqlite opens the file");
        conn.execute_batch(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON kv_rows
             WHEN NEW.key = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .expect("the trigger is created");
        drop(conn);
        let mut feed = store.backend().feed().subscribe();
        let t = store.table::<Note>();
        for round in 0..5 {
            let writers: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let t = t.clone();
                    let key = if i == WRITERS / 2 {
                        "poison".to_owned()
                    } else {
                        format!("k{i}")
                    };
                    tokio::spawn(async move {
                        let result = t.set(&admin(), &key, note(&format!("{round}-{i}"))).await;
                        (key, result)
                    })
                })
                .collect();
            let mut stored = HashMap::new();
            for writer in writers {
                let (key, result) = writer.await.expect("the task ends");
                if key == "poison" {
                    let err = result.expect_err("the trigger refuses this key");
                    assert_eq!(err.code(), ErrorCode::Backend, "{err}");
                    let mut causes = err.to_string();
                    let mut source = std::error::Error::source(&err);
                    while let Some(cause) = source {
                        causes = format!("{causes}: {cause}");
                        source = cause.source();
                    }
                    assert!(causes.contains("poisoned"), "{causes}");
                } else {
                    let row = result.unwrap_or_else(|e| panic!("{key} is stored: {e}"));
                    stored.insert(key, row);
                }
            }
            assert_eq!(stored.len(), WRITERS - 1);
            for (key, row) in &stored {
                let read = t.get(key).await.expect("get").expect("the row is there");
                assert_eq!(&read, row);
            }
            assert_eq!(t.get("poison".to_owned()).await.expect("get"), None);
            // The feed: each stored write once, none for the failed one.
            let mut published = HashMap::new();
            loop {
                match feed.try_recv() {
                    TryRecv::Event(FeedEvent::Change(change)) => {
                        assert_ne!(change.key, "poison", "a failed write is not published");
                        let row = change.row.expect("a set publishes its row");
                        let before = published.insert(change.key.clone(), row.updated_at);
                        assert_eq!(before, None, "{} published twice", change.key);
                    }
                    TryRecv::Event(FeedEvent::Resync) => panic!("the feed kept up"),
                    TryRecv::Empty | TryRecv::Closed => break,
                }
            }
            assert_eq!(published.len(), WRITERS - 1, "round {round}");
            for (key, row) in &stored {
                assert_eq!(published.get(key), Some(&row.updated_at), "{key}");
            }
        }
    });
}

/// Many concurrent `set_if_absent` of one key, and many conflict-checked
/// updates from one version: exactly one of each wins, however the writes
/// are grouped (a check sees the earlier writes of its own group).
#[test]
fn checks_see_the_earlier_writes_of_their_group() {
    let dir = TempDir::new("sqlite-group-checks");
    let path = dir.join("kv.db");
    runtime().block_on(async {
        let store = Store::open(&url(&path)).await.expect("store opens");
        let t = store.table::<Note>();
        for round in 0..5 {
            let key = format!("once-{round}");
            let creators: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (t, key) = (t.clone(), key.clone());
                    tokio::spawn(async move {
                        t.set_if_absent(&admin(), &key, note(&i.to_string())).await
                    })
                })
                .collect();
            let mut created = None;
            for creator in creators {
                match creator.await.expect("the task ends") {
                    Ok(row) => {
                        assert!(created.is_none(), "two set_if_absent of {key} succeeded");
                        created = Some(row);
                    }
                    Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
                }
            }
            let created = created.expect("one set_if_absent succeeded");
            let updaters: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (t, key) = (t.clone(), key.clone());
                    let version = created.updated_at;
                    tokio::spawn(async move {
                        t.set_expecting(&admin(), &key, note(&format!("u{i}")), version)
                            .await
                    })
                })
                .collect();
            let mut winners = 0;
            for updater in updaters {
                match updater.await.expect("the task ends") {
                    Ok(_) => winners += 1,
                    Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
                }
            }
            assert_eq!(winners, 1, "exactly one update from one version wins");
        }
    });
}
