//! Bring your own pool: kv over the connections an app already has, so
//! that the app does not open a second pool to the same database.

mod support;

use std::str::FromStr;

use kv_runtime::backend::postgres::{PostgresBackend, PostgresOptions};
use kv_runtime::backend::sqlite::{OpenFlags, SqliteBackend, SqliteOptions};
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use support::{pg, tempdir::TempDir};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "byoFlags", keys = [beta], write_role = admin)]
struct Flags {
    on: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_runs_on_the_apps_postgres_pool() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    // The app's own pool, made the app's way.
    let config = tokio_postgres::Config::from_str(&db).unwrap();
    let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(3)
        .build()
        .unwrap();
    let backend = PostgresBackend::with_pool(pool.clone(), &db, PostgresOptions::default())
        .await
        .unwrap();
    let store = Store::with_backend(backend);
    let t = store.table::<Flags>();
    let row = t
        .set(&Ctx::internal(), FlagsKey::Beta, Flags { on: true })
        .await
        .unwrap();
    assert_eq!(t.get(FlagsKey::Beta).await.unwrap(), Some(row));
    // kv's writes went through the app's connections: the pool opened them
    // (no more than its own cap), and the app sees kv's row through them.
    let status = pool.status();
    assert!(status.size >= 1 && status.size <= 3, "{status:?}");
    let client = pool.get().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM kv_rows WHERE tbl = 'byoFlags'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    drop(client);
    // The change feed has its own connection, verified as usual.
    let health = store.health().await;
    assert!(health.backend.reachable, "{health:?}");
    assert!(health.backend.feed.is_healthy(), "{health:?}");
}

#[tokio::test]
async fn kv_opens_sqlite_with_the_apps_flags() {
    let dir = TempDir::new("byo-sqlite");
    let path = dir.join("app.db");
    let existing_only = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    // Without CREATE, a missing file is an error, not a new database.
    let err = SqliteBackend::open_with(&path, SqliteOptions::default().open_flags(existing_only))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
    assert!(!path.exists(), "nothing was created");

    // The app made the file; kv opens it with the app's flags and shares it.
    let app = rusqlite::Connection::open(&path).unwrap();
    app.execute_batch("CREATE TABLE app_users (name TEXT)")
        .unwrap();
    let backend =
        SqliteBackend::open_with(&path, SqliteOptions::default().open_flags(existing_only))
            .await
            .unwrap();
    let store = Store::with_backend(backend);
    store
        .table::<Flags>()
        .set(&Ctx::internal(), FlagsKey::Beta, Flags { on: true })
        .await
        .unwrap();
    let n: i64 = app
        .query_row("SELECT count(*) FROM kv_rows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the app reads kv's row in its own file");

    // kv writes: read-only flags are refused up front.
    let err = SqliteBackend::open_with(
        &path,
        SqliteOptions::default().open_flags(OpenFlags::SQLITE_OPEN_READ_ONLY),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config);
    assert!(err.to_string().contains("SQLITE_OPEN_READ_WRITE"), "{err}");
}
