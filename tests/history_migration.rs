//! Storage schema 4 (the history table) migrated from schema 3, the
//! version before it, on SQLite and PostgreSQL: the rows of a version 3
//! database stay, `kv_history` appears, and the first change of an old
//! row is recorded (its earlier changes, made without history, are not).
//! Opening again changes nothing.

mod support;

use kv_runtime::backend::HistoryOp;
use kv_runtime::{Ctx, PageRequest, Store};
use support::tables::{recorded, Recorded};
use support::tempdir::TempDir;
use support::{pg, sqlite};

fn run<F: std::future::Future<Output = ()>>(f: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(f);
}

/// The old row's value, as version 3 stored it (JSON text).
const OLD: &str = r#"{"by":"v3","i":1,"pad":"y"}"#;

/// After the migration: the old row reads, a change to it is recorded,
/// and revert goes back to it.
async fn history_works_on_the_migrated_row(store: &Store) {
    let t = store.table::<Recorded>();
    let ctx = Ctx::internal();
    let old = t
        .get("old".to_owned())
        .await
        .expect("get")
        .expect("the version 3 row is kept");
    assert_eq!(old.value, recorded("v3", 1));
    let page = t
        .history(&ctx, "old".to_owned(), PageRequest::first(10))
        .await
        .expect("history");
    assert!(page.entries.is_empty(), "nothing was recorded before");
    let new = t
        .set(&ctx, "old".to_owned(), recorded("v4", 2))
        .await
        .expect("set");
    let page = t
        .history(&ctx, "old".to_owned(), PageRequest::first(10))
        .await
        .expect("history");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].op, HistoryOp::Set);
    assert_eq!(page.entries[0].version, new.updated_at);
    // The version before history is not in it, so it cannot be reverted to.
    let err = t
        .revert(&ctx, "old".to_owned(), old.updated_at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), kv_runtime::ErrorCode::NotFound);
}

#[test]
fn sqlite_schema_3_is_migrated_to_4() {
    run(async {
        let dir = TempDir::new("history-sqlite-v3");
        let path = dir.join("kv.db");
        {
            // The schema exactly as versions 1 to 3 created it.
            let (v1, v3) = (sqlite::SCHEMA_V1, sqlite::SCHEMA_V1_TO_V3);
            let conn = rusqlite::Connection::open(&path).expect("rusqlite creates it");
            conn.execute_batch(&format!(
                "{v1}{v3}
                 INSERT INTO kv_meta (name, value) VALUES ('schema_version', 3);
                 INSERT INTO kv_rows VALUES
                     ('historyEntry', 'old', '{OLD}', 5, 1000, NULL, 'ada', 1);"
            ))
            .expect("the version 3 schema");
        }
        let store = Store::open(&sqlite::url(&path))
            .await
            .expect("a version 3 file opens");
        history_works_on_the_migrated_row(&store).await;
        drop(store);
        let conn = rusqlite::Connection::open(&path).expect("rusqlite opens it");
        let version: i64 = conn
            .query_row(
                "SELECT value FROM kv_meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .expect("the version is recorded");
        assert_eq!(version, 5);
        let records: i64 = conn
            .query_row("SELECT count(*) FROM kv_history", [], |r| r.get(0))
            .expect("kv_history exists");
        assert_eq!(records, 1);
        drop(conn);
        // Opening again finds version 5 and keeps the record.
        let store = Store::open(&sqlite::url(&path)).await.expect("reopens");
        let history = store
            .backend()
            .history("historyEntry", "old", None, 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
    });
}

#[test]
fn postgres_schema_3_is_migrated_to_4() {
    use kv_runtime::backend::postgres::sql;
    let Some(url) = pg::server_url() else { return };
    run(async {
        let db = pg::fresh_database(&url).await;
        let admin = pg::admin(&db).await;
        admin.batch_execute(sql::CREATE_META).await.unwrap();
        // Steps 0 -> 3: released, never edited.
        for step in &sql::MIGRATIONS[..3] {
            admin.batch_execute(step).await.unwrap();
        }
        admin
            .batch_execute(&format!(
                "INSERT INTO kv_meta (name, value) VALUES ('schema_version', 3);
                 INSERT INTO kv_rows VALUES
                     ('historyEntry', 'old', '{OLD}', 5, 1000, NULL, 'ada', 1);"
            ))
            .await
            .unwrap();
        let store = Store::open(&db).await.expect("a version 3 database opens");
        history_works_on_the_migrated_row(&store).await;
        let version: i64 = admin
            .query_one(
                "SELECT value FROM kv_meta WHERE name = 'schema_version'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, 5);
        let records: i64 = admin
            .query_one("SELECT count(*) FROM kv_history", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(records, 1);
        drop(store);
        let store = Store::open(&db).await.expect("reopens");
        let history = store
            .backend()
            .history("historyEntry", "old", None, 10)
            .await
            .expect("history");
        assert_eq!(history.len(), 1);
    });
}
