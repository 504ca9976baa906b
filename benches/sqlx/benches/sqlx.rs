//! kv beside sqlx, the crate a Rust web developer would otherwise pick to
//! keep the same rows, in one bench binary and one run: typed `get`, `set`
//! and a 100-row `list` page on kv's SQLite and PostgreSQL backends, and the
//! same work done through sqlx pools on the same database (the same table,
//! the same statements kv runs, the value decoded with serde_json).
//!
//! ```sh
//! cargo bench --manifest-path benches/sqlx/Cargo.toml
//! KV_TEST_POSTGRES_URL=postgres://... cargo bench --manifest-path benches/sqlx/Cargo.toml
//! ```
//!
//! Without `KV_TEST_POSTGRES_URL` only SQLite is measured (it says so).
//! With it, the bench creates a database `kv_bench_sqlx_<pid>` and drops it
//! at the end.
//!
//! The sqlx side, per backend:
//! - SQLite: a `SqlitePool` on the same file (WAL, `synchronous = FULL`,
//!   as kv's default); `get` once with sqlx's defaults and once with its
//!   per-acquire ping off (`test_before_acquire(false)`), `set` and the
//!   page with the ping off only (sqlx's faster setting); `set` is a
//!   `BEGIN IMMEDIATE` transaction that reads the row's version and upserts
//!   it, as kv's `set` does.
//! - PostgreSQL: a `PgPool` with sqlx's defaults, running kv's own
//!   statements (`kv_runtime::backend::postgres::sql`): the same `GET`,
//!   the same conditional upsert with its change notification, the same
//!   page query.
//!
//! Everything runs on one current-thread Tokio runtime (`block_on`), as
//! in kv's own benches; sqlx's SQLite driver does its work on a thread per
//! connection, kv's SQLite backend reads on the calling thread and writes
//! on its writer thread.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use kv_runtime::backend::postgres::sql;
use kv_runtime::backend::sqlite::SqliteBackend;
use kv_runtime::{Ctx, Kv, PageRequest, Store};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Executor, PgPool, SqlitePool};
use tokio::runtime::Runtime;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchSite", keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// 1 000 rows, for list pages.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchItem", write_role = admin)]
struct Item {
    active: bool,
    message: String,
}

/// What the sqlx side decodes values into (the same shape).
#[derive(Serialize, Deserialize, Debug)]
struct Value {
    active: bool,
    message: String,
}

fn site(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

fn value_json(i: u64) -> String {
    let v = site(i);
    serde_json::to_string(&Value {
        active: v.active,
        message: v.message,
    })
    .expect("json")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A row as the sqlx side reads it.
type SqlxRow = (String, Value, i64, i64, Option<i64>, Option<String>);

/// A row as SQLite returns it: key, value JSON, created, updated, deleted, by.
type SqliteColumns = (String, String, i64, i64, Option<i64>, Option<String>);

fn decode(key: String, json: &str, times: (i64, i64, Option<i64>), by: Option<String>) -> SqlxRow {
    let value = serde_json::from_str(json).expect("a stored value decodes");
    (key, value, times.0, times.1, times.2, by)
}

/// One line of a group: its name and one call run to the end (on the
/// bench's runtime).
type Line<F> = (&'static str, Box<F>);

/// A `get` of the row `motd`.
type GetCall<'a> = dyn Fn() -> Option<SqlxRow> + 'a;
/// A `set` of the row `banner` to the `i`-th value; returns its version.
type SetCall<'a> = dyn Fn(u64) -> i64 + 'a;
/// The 100 rows of `benchItem` after the key given.
type PageCall<'a> = dyn Fn(&str) -> Vec<SqlxRow> + 'a;

/// The sqlx side of one backend: its lines of each group.
struct SqlxLines<'a> {
    get: Vec<Line<GetCall<'a>>>,
    set: Line<SetCall<'a>>,
    page: Line<PageCall<'a>>,
}

/// The three groups of one backend (`backend/get`, `backend/set`,
/// `backend/list100 of 1000 rows`), kv's line beside each of sqlx's, on a
/// store whose `motd` row is set and whose `benchItem` table holds 1 000
/// rows.
fn bench_backend(c: &mut Criterion, rt: &Runtime, backend: &str, store: &Store, sqlx: SqlxLines) {
    let admin = Ctx::user("ada").with_role("admin");
    let table = store.table::<SiteConfig>();

    let mut g = c.benchmark_group(format!("{backend}/get"));
    g.bench_function("kv typed get", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(table.get(black_box(SiteConfigKey::Motd)))
                    .unwrap(),
            )
        })
    });
    for (name, get) in &sqlx.get {
        g.bench_function(*name, |b| b.iter(|| black_box(get())));
    }
    g.finish();

    let mut g = c.benchmark_group(format!("{backend}/set"));
    let mut i = 0u64;
    g.bench_function("kv typed set", |b| {
        b.iter(|| {
            i += 1;
            black_box(
                rt.block_on(table.set(&admin, SiteConfigKey::Footer, site(i)))
                    .unwrap(),
            )
        })
    });
    let (name, set) = &sqlx.set;
    let mut i = 0u64;
    g.bench_function(*name, |b| {
        b.iter(|| {
            i += 1;
            black_box(set(i))
        })
    });
    g.finish();

    let items = store.table::<Item>();
    let first = rt
        .block_on(items.list(&admin, PageRequest::first(100)))
        .unwrap();
    let cursor = first.continue_cursor.expect("more than 100 rows");
    let after = first
        .page
        .last()
        .map(|r| r.key.as_str().to_owned())
        .unwrap();
    let mut g = c.benchmark_group(format!("{backend}/list100 of 1000 rows"));
    g.bench_function("kv typed list page", |b| {
        b.iter(|| {
            let page = rt
                .block_on(items.list(&admin, PageRequest::after(cursor.clone(), 100)))
                .unwrap();
            assert_eq!(page.page.len(), 100);
            black_box(page)
        })
    });
    let (name, page) = &sqlx.page;
    g.bench_function(*name, |b| {
        b.iter(|| {
            let rows = page(&after);
            assert_eq!(rows.len(), 100);
            black_box(rows)
        })
    });
    g.finish();
}

// ---- SQLite ---------------------------------------------------------------

// kv's SQLite statements, written out by hand as a sqlx user would.
const SQLITE_GET: &str = "SELECT key, value, created_at, updated_at, deleted_at, updated_by
     FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const SQLITE_VERSION: &str =
    "SELECT created_at, updated_at FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const SQLITE_UPSERT: &str = "INSERT INTO kv_rows
         (tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version)
     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, 1)
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,
         updated_at = excluded.updated_at, deleted_at = NULL, updated_by = excluded.updated_by";
const SQLITE_PAGE: &str = "SELECT key, value, created_at, updated_at, deleted_at, updated_by
     FROM kv_rows WHERE tbl = ?1 AND key > ?2 AND deleted_at IS NULL ORDER BY key LIMIT ?3";

async fn sqlite_get(pool: &SqlitePool, key: &str) -> Option<SqlxRow> {
    let row: Option<SqliteColumns> = sqlx::query_as(SQLITE_GET)
        .bind("benchSite")
        .bind(key)
        .fetch_optional(pool)
        .await
        .expect("get");
    row.map(|(k, v, c, u, d, by)| decode(k, &v, (c, u, d), by))
}

/// kv's `set` by hand: the row's version read and the upsert in one
/// `BEGIN IMMEDIATE` transaction.
async fn sqlite_set(pool: &SqlitePool, key: &str, json: &str) -> i64 {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.expect("begin");
    let now = now_ms();
    let old: Option<(i64, i64)> = sqlx::query_as(SQLITE_VERSION)
        .bind("benchSite")
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .expect("read");
    let created_at = old.map_or(now, |o| o.0);
    let updated_at = old.map_or(now, |o| now.max(o.1 + 1));
    sqlx::query(SQLITE_UPSERT)
        .bind("benchSite")
        .bind(key)
        .bind(json)
        .bind(created_at)
        .bind(updated_at)
        .bind("ada")
        .execute(&mut *tx)
        .await
        .expect("upsert");
    tx.commit().await.expect("commit");
    updated_at
}

async fn sqlite_page(pool: &SqlitePool, after: &str) -> Vec<SqlxRow> {
    let rows: Vec<SqliteColumns> = sqlx::query_as(SQLITE_PAGE)
        .bind("benchItem")
        .bind(after)
        .bind(101i64)
        .fetch_all(pool)
        .await
        .expect("page");
    let mut page: Vec<SqlxRow> = rows
        .into_iter()
        .map(|(k, v, c, u, d, by)| decode(k, &v, (c, u, d), by))
        .collect();
    page.truncate(100);
    page
}

async fn sqlite_pool(path: &std::path::Path, ping: bool) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .test_before_acquire(ping)
        .connect_with(options)
        .await
        .expect("the sqlx pool opens")
}

/// A directory of bench files, removed at the end.
struct BenchDir(PathBuf);

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sqlite(c: &mut Criterion, rt: &Runtime) {
    let dir = BenchDir(std::env::temp_dir().join(format!("kv-bench-sqlx-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("bench directory");
    let path = dir.0.join("bench.db");
    let store = Store::with_backend(rt.block_on(SqliteBackend::open(&path)).expect("open"));
    let pool = rt.block_on(sqlite_pool(&path, true));
    let pool_no_ping = rt.block_on(sqlite_pool(&path, false));
    let admin = Ctx::user("ada").with_role("admin");
    let table = store.table::<SiteConfig>();
    rt.block_on(table.set(&admin, SiteConfigKey::Motd, site(0)))
        .expect("set");
    rt.block_on(async {
        let mut tx = pool.begin().await.expect("begin");
        for i in 0..1_000u64 {
            sqlx::query(SQLITE_UPSERT)
                .bind("benchItem")
                .bind(format!("k{i:06}"))
                .bind(value_json(i))
                .bind(1_700_000_000_000i64)
                .bind(1_700_000_000_000i64)
                .bind("bench")
                .execute(&mut *tx)
                .await
                .expect("fill");
        }
        tx.commit().await.expect("commit");
    });

    let lines = SqlxLines {
        get: vec![
            (
                "sqlx pool (defaults) get + decode",
                Box::new(|| rt.block_on(sqlite_get(&pool, black_box("motd")))),
            ),
            (
                "sqlx pool (no ping) get + decode",
                Box::new(|| rt.block_on(sqlite_get(&pool_no_ping, black_box("motd")))),
            ),
        ],
        set: (
            "sqlx pool (no ping) read + upsert",
            Box::new(|i| rt.block_on(sqlite_set(&pool_no_ping, "banner", &value_json(i)))),
        ),
        page: (
            "sqlx pool (no ping) page + decode",
            Box::new(|after| rt.block_on(sqlite_page(&pool_no_ping, after))),
        ),
    };
    bench_backend(c, rt, "sqlite", &store, lines);
    rt.block_on(pool.close());
    rt.block_on(pool_no_ping.close());
}

// ---- PostgreSQL -----------------------------------------------------------

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let start = base.find("://").map_or(0, |i| i + 3);
    let path = base[start..].find('/').map_or(base.len(), |i| start + i);
    match query {
        "" => format!("{}/{db}", &base[..path]),
        q => format!("{}/{db}?{q}", &base[..path]),
    }
}

async fn pg_get(pool: &PgPool, key: &str) -> Option<SqlxRow> {
    type Got = (String, i64, i64, Option<i64>, Option<String>, i32);
    let row: Option<Got> = sqlx::query_as(sql::GET)
        .bind("benchSite")
        .bind(key)
        .fetch_optional(pool)
        .await
        .expect("get");
    row.map(|(v, c, u, d, by, _)| decode(key.to_owned(), &v, (c, u, d), by))
}

/// kv's own `set` statement (conditional upsert and change notification).
async fn pg_set(pool: &PgPool, key: &str, json: &str) -> i64 {
    let row = sqlx::query(sql::PUT)
        .bind("benchSite")
        .bind(key)
        .bind(json)
        .bind(Some("ada"))
        .bind(now_ms())
        .bind(None::<i64>)
        .bind(false)
        .bind(1i32)
        .fetch_one(pool)
        .await
        .expect("set");
    let updated_at: Option<i64> = sqlx::Row::get(&row, 7);
    updated_at.expect("the row was written")
}

async fn pg_page(pool: &PgPool, after: &str) -> Vec<SqlxRow> {
    type Got = (String, String, i64, i64, Option<i64>, Option<String>, i32);
    let rows: Vec<Got> = sqlx::query_as(sql::LIST_AFTER)
        .bind("benchItem")
        .bind(after)
        .bind(101i64)
        .fetch_all(pool)
        .await
        .expect("page");
    let mut page: Vec<SqlxRow> = rows
        .into_iter()
        .map(|(k, v, c, u, d, by, _)| decode(k, &v, (c, u, d), by))
        .collect();
    page.truncate(100);
    page
}

fn postgres(c: &mut Criterion, rt: &Runtime) {
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        eprintln!(
            "sqlx bench: KV_TEST_POSTGRES_URL is not set; PostgreSQL not measured. Start a \
             server (scripts/test.sh shows how) and set it."
        );
        return;
    };
    let db = format!("kv_bench_sqlx_{}", std::process::id());
    let admin_pool = rt
        .block_on(PgPoolOptions::new().max_connections(1).connect(&url))
        .expect("the benchmark server is reachable");
    // Statements built at run time are `AssertSqlSafe` in sqlx 0.9: the
    // name is this process's own.
    rt.block_on(admin_pool.execute(AssertSqlSafe(format!(
        "CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'UTF8'"
    ))))
    .expect("the bench database can be created");
    let url = with_database(&url, &db);
    let store = rt.block_on(Store::open(&url)).expect("the store opens");
    let pool = rt
        .block_on(PgPoolOptions::new().connect(&url))
        .expect("the sqlx pool opens");
    let admin = Ctx::user("ada").with_role("admin");
    let table = store.table::<SiteConfig>();
    rt.block_on(table.set(&admin, SiteConfigKey::Motd, site(0)))
        .expect("set");
    rt.block_on(pool.execute(
        "INSERT INTO kv_rows (tbl, key, value, created_at, updated_at, updated_by) \
         SELECT 'benchItem', 'k' || lpad(i::text, 6, '0'), \
         jsonb_build_object('active', i % 2 = 0, 'message', 'Item number ' || i), \
         1700000000000, 1700000000000, 'bench' FROM generate_series(1, 1000) AS i; \
         ANALYZE kv_rows",
    ))
    .expect("fill");

    let lines = SqlxLines {
        get: vec![(
            "sqlx pool get + decode (same statement)",
            Box::new(|| rt.block_on(pg_get(&pool, black_box("motd")))),
        )],
        set: (
            "sqlx pool set (same statement)",
            Box::new(|i| rt.block_on(pg_set(&pool, "banner", &value_json(i)))),
        ),
        page: (
            "sqlx pool page + decode (same statement)",
            Box::new(|after| rt.block_on(pg_page(&pool, after))),
        ),
    };
    bench_backend(c, rt, "postgres", &store, lines);

    drop(store);
    rt.block_on(pool.close());
    rt.block_on(admin_pool.execute(AssertSqlSafe(format!(
        "DROP DATABASE \"{db}\" WITH (FORCE)"
    ))))
    .expect("the bench database can be dropped");
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    sqlite(&mut c, &rt);
    postgres(&mut c, &rt);
    c.final_summary();
}
