//! The PostgreSQL backend beyond the conformance suite: opening (bad URLs,
//! schema versions, concurrent opens), and what several backends on one
//! database share (rows, the change feed, the rate limit), as several app
//! servers would.
//!
//! Tests needing a server skip loudly without `KV_TEST_POSTGRES_URL` (and
//! fail in CI); run them with `scripts/test.sh --test postgres_backend`.

mod support;

use std::time::Duration;

use kv_runtime::backend::postgres::{PostgresBackend, PostgresOptions};
use kv_runtime::backend::{FeedEvent, RateDecision};
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use support::pg;
use support::wait::bounded;

/// Free keys, any JSON, internal writers only.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pgDoc", max_value_bytes = 1_000_000)]
struct Doc {
    body: serde_json::Value,
}

fn doc(body: serde_json::Value) -> Doc {
    Doc { body }
}

/// The next event of the feed that concerns `table`, skipping others.
async fn next_change(
    feed: &mut kv_runtime::backend::FeedReceiver,
    table: &str,
) -> kv_runtime::backend::Change {
    loop {
        let event = bounded("the change feed", feed.recv())
            .await
            .expect("the feed stays open");
        match event {
            FeedEvent::Change(c) if c.table == table => return c,
            FeedEvent::Change(_) => {}
            FeedEvent::Resync => panic!("no resync expected on a healthy server"),
        }
    }
}

#[tokio::test]
async fn refused_port_is_a_backend_error_naming_the_server() {
    // Port 1 on the loopback: nothing listens, the connection is refused.
    let err = bounded(
        "opening a refused port",
        Store::open("postgres://kv@127.0.0.1:1/kv"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Backend, "{err}");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("127.0.0.1:1"),
        "the message names the server: {text}"
    );
}

#[tokio::test]
async fn malformed_urls_and_options_are_config_errors() {
    for url in [
        "postgres://kv@127.0.0.1:notaport/kv",
        "postgres://",
        "postgresql:///kv",
        "postgres://kv@127.0.0.1/kv?pool_size=0",
        "postgres://kv@127.0.0.1/kv?pool_size=many",
        "postgres://kv@127.0.0.1/kv?no_such_option=1",
        "postgres://kv@127.0.0.1:1/kv?sslmode=bogus",
        "postgresql://kv:hunter2@127.0.0.1/kv?pool_size=-3",
    ] {
        let err = bounded(url, Store::open(url)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Config, "{url}: {err}");
        assert!(
            !err.to_string().contains("hunter2"),
            "passwords stay out of messages: {err}"
        );
    }
    let err = PostgresBackend::connect(
        "postgres://kv@127.0.0.1:1/kv",
        PostgresOptions::default().pool_size(0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    drop(
        Store::open(&db)
            .await
            .expect("first open creates the schema"),
    );
    let admin = pg::admin(&db).await;
    let version: i64 = admin
        .query_one(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, PostgresBackend::SCHEMA_VERSION);
    admin
        .execute(
            "UPDATE kv_meta SET value = 99 WHERE name = 'schema_version'",
            &[],
        )
        .await
        .unwrap();
    let err = Store::open(&db).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
    assert!(err.to_string().contains("99"), "{err}");
}

/// A database at schema version 1 (before `kv_tables`, the per-table
/// version floor) opens, keeps its rows and is migrated; a re-created row
/// then does not reuse a version of the deleted one.
#[tokio::test]
async fn a_version_1_schema_is_migrated() {
    use kv_runtime::backend::postgres::sql;
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let admin = pg::admin(&db).await;
    admin.batch_execute(sql::CREATE_META).await.unwrap();
    // Step 0 -> 1 is the version 1 schema, never edited once released.
    admin.batch_execute(sql::MIGRATIONS[0]).await.unwrap();
    admin
        .batch_execute(
            "INSERT INTO kv_meta (name, value) VALUES ('schema_version', 1);
             INSERT INTO kv_rows VALUES
                 ('pgDoc', 'old', '{\"body\": 1}', 5, 4102444800000, NULL, NULL);",
        )
        .await
        .unwrap();
    let store = Store::open(&db).await.expect("a version 1 database opens");
    let version: i64 = admin
        .query_one(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, PostgresBackend::SCHEMA_VERSION);
    assert_eq!(version, 4);
    let t = store.table::<Doc>();
    let old = t
        .get("old".to_owned())
        .await
        .unwrap()
        .expect("the version 1 row is kept");
    assert_eq!(old.value, doc(serde_json::json!(1)));
    assert!(t.rm(&Ctx::internal(), "old".to_owned()).await.unwrap());
    let reborn = t
        .set(
            &Ctx::internal(),
            "old".to_owned(),
            doc(serde_json::json!(2)),
        )
        .await
        .unwrap();
    assert!(reborn.updated_at > old.updated_at);
    let floor: i64 = admin
        .query_one(
            "SELECT version_floor FROM kv_tables WHERE tbl = 'pgDoc'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(floor, old.updated_at);
    // Opening again finds the current version and changes nothing.
    drop(Store::open(&db).await.expect("reopens"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_create_the_schema_once() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { Store::open(&db).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every concurrent open succeeds"));
    }
    let admin = pg::admin(&db).await;
    let rows = admin
        .query("SELECT name, value FROM kv_meta", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(1), PostgresBackend::SCHEMA_VERSION);
    // And the stores work on it.
    let t = stores[0].table::<Doc>();
    t.set(&Ctx::internal(), "k".to_owned(), doc(serde_json::json!(1)))
        .await
        .unwrap();
    let seen = stores[5].table::<Doc>().get("k".to_owned()).await.unwrap();
    assert_eq!(seen.map(|r| r.value.body), Some(serde_json::json!(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_share_rows_feed_and_rate_limit() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    // Two backends with their own pools and listeners, as two app servers.
    let a = Store::open(&db).await.unwrap();
    let b = Store::open(&format!("{db}?pool_size=2")).await.unwrap();
    let mut feed_b = b.backend().feed().subscribe();

    let row = a
        .table::<Doc>()
        .set(
            &Ctx::internal(),
            "shared".to_owned(),
            doc(serde_json::json!({"v": 1})),
        )
        .await
        .unwrap();
    let change = next_change(&mut feed_b, "pgDoc").await;
    assert_eq!(change.key, "shared");
    let fed = change.row.expect("the feed carries the live row");
    assert_eq!(fed.updated_at, row.updated_at);
    let read = b.backend().get("pgDoc", "shared").await.unwrap().unwrap();
    assert_eq!(fed, read, "the feed's row is the row as stored");

    assert!(a
        .table::<Doc>()
        .rm(&Ctx::internal(), "shared".to_owned())
        .await
        .unwrap());
    let change = next_change(&mut feed_b, "pgDoc").await;
    assert_eq!((change.key.as_str(), change.row), ("shared", None));

    // One sliding window for both.
    let hit = |s: &Store, now| {
        let backend = std::sync::Arc::clone(s.backend());
        async move {
            backend
                .rate_counter()
                .hit(
                    "pgDoc",
                    "caller",
                    kv_runtime::backend::Window {
                        max: 3,
                        window_ms: 1_000,
                    },
                    now,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(hit(&a, 0).await, RateDecision::Admitted);
    assert_eq!(hit(&b, 10).await, RateDecision::Admitted);
    assert_eq!(hit(&a, 20).await, RateDecision::Admitted);
    assert_eq!(
        hit(&b, 30).await,
        RateDecision::Limited {
            retry_after_ms: 970
        }
    );
    assert_eq!(hit(&b, 1_000).await, RateDecision::Admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_too_large_for_a_notification_are_read_back() {
    let Some(url) = pg::server_url() else { return };
    let store = pg::fresh_store(&url).await;
    let mut feed = store.backend().feed().subscribe();
    let t = store.table::<Doc>();
    let big = doc(serde_json::json!({ "text": "é".repeat(20_000) }));
    let row = t
        .set(&Ctx::internal(), "big".to_owned(), big.clone())
        .await
        .unwrap();
    let change = next_change(&mut feed, "pgDoc").await;
    let fed = change.row.expect("a large row is read back, not dropped");
    assert_eq!(fed.updated_at, row.updated_at);
    assert_eq!(
        serde_json::from_str::<Doc>(fed.value.json()).unwrap(),
        big,
        "the feed's value is the whole value"
    );
    // A small write after it still arrives, after it.
    t.set(
        &Ctx::internal(),
        "small".to_owned(),
        doc(serde_json::json!(0)),
    )
    .await
    .unwrap();
    assert_eq!(next_change(&mut feed, "pgDoc").await.key, "small");
}

#[tokio::test]
async fn nul_in_a_value_is_refused_as_validation_failed() {
    let Some(url) = pg::server_url() else { return };
    let store = pg::fresh_store(&url).await;
    let t = store.table::<Doc>();
    let err = t
        .set(
            &Ctx::internal(),
            "nul".to_owned(),
            doc(serde_json::json!({ "s": "a\u{0}b" })),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed, "{err}");
    match &err {
        kv_runtime::Error::ValidationFailed { table, fields } => {
            assert_eq!(*table, "pgDoc");
            assert!(fields[0].message.contains("NUL"), "{fields:?}");
        }
        other => panic!("expected ValidationFailed, got {other:?}"),
    }
    assert_eq!(t.get("nul".to_owned()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_serves_many_concurrent_calls() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let store = Store::open(&format!("{db}?pool_size=1")).await.unwrap();
    let t = store.table::<Doc>();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.set(
                    &Ctx::internal(),
                    format!("k{i:02}"),
                    doc(serde_json::json!(i)),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("each call waits for the one connection");
    }
    let page = t
        .list(&Ctx::internal(), kv_runtime::PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(page.page.len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_inserts_of_a_new_key_each_see_the_row_they_replaced() {
    use kv_runtime::backend::{Expect, Outcome, Payload, Stored};
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let a = Store::open(&db).await.unwrap();
    let b = Store::open(&db).await.unwrap();
    for round in 0..5 {
        let key = format!("new{round}");
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let backend =
                    std::sync::Arc::clone(if i % 2 == 0 { a.backend() } else { b.backend() });
                let key = key.clone();
                tokio::spawn(async move {
                    backend
                        .set(
                            "pgDoc",
                            kv_runtime::backend::Write {
                                key: &key,
                                expect: Expect::Any,
                                updated_by: None,
                                now: 1_000,
                                history: None,
                            },
                            Payload::from_json(format!("{i}")),
                        )
                        .await
                })
            })
            .collect();
        let mut versions = Vec::new();
        let mut replaced = Vec::new();
        for task in tasks {
            match task.await.unwrap().expect("an unconditional set succeeds") {
                Outcome::Done(Stored { row, previous }) => {
                    versions.push(row.updated_at);
                    replaced.push(previous.map(|p| p.updated_at));
                }
                other => panic!("no expectation, no conflict: {other:?}"),
            }
        }
        // The clock stands still, so the versions are 1000, 1001, ...; each
        // set replaced exactly the version before its own: one created the
        // row, none lost sight of another.
        versions.sort_unstable();
        replaced.sort_unstable();
        assert_eq!(versions, (1_000..1_012).collect::<Vec<i64>>());
        let expected: Vec<Option<i64>> = std::iter::once(None)
            .chain((1_000..1_011).map(Some))
            .collect();
        assert_eq!(replaced, expected);

        // Expecting a row that does not exist never creates it, however many try.
        let missing = format!("missing{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let backend =
                    std::sync::Arc::clone(if i % 2 == 0 { a.backend() } else { b.backend() });
                let key = missing.clone();
                tokio::spawn(async move {
                    backend
                        .set(
                            "pgDoc",
                            kv_runtime::backend::Write {
                                key: &key,
                                expect: Expect::Version(0),
                                updated_by: None,
                                now: 1_000,
                                history: None,
                            },
                            Payload::from_json("1"),
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(
                task.await.unwrap().unwrap(),
                Outcome::Conflict {
                    current_updated_at: None
                }
            );
        }
        assert_eq!(a.backend().get("pgDoc", &missing).await.unwrap(), None);
    }
}

/// A write waiting for a row lock that another program holds fails at
/// `lock_timeout`: BACKEND, retryable, saying so and that nothing was
/// written; and nothing was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_stuck_behind_a_lock_time_out() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let options = PostgresOptions::default().lock_timeout(Duration::from_millis(300));
    let store = Store::with_backend(PostgresBackend::connect(&db, options).await.unwrap());
    let t = store.table::<Doc>();
    let ctx = Ctx::internal();
    let first = t
        .set(&ctx, "locked".to_owned(), doc(serde_json::json!(1)))
        .await
        .unwrap();

    let mut other = pg::admin(&db).await;
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM kv_rows WHERE tbl = 'pgDoc' AND key = 'locked' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();

    let err = bounded(
        "a set behind a lock",
        t.set(&ctx, "locked".to_owned(), doc(serde_json::json!(2))),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Backend, "{err}");
    assert!(err.is_retryable());
    let text = err.to_string();
    assert!(text.contains("lock_timeout"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");

    tx.rollback().await.unwrap();
    let row = t.get("locked".to_owned()).await.unwrap().unwrap();
    assert_eq!(row.value.body, serde_json::json!(1));
    assert_eq!(row.updated_at, first.updated_at);
}
