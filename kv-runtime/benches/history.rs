//! What a history record adds to a typed `set`: the same `set` on two
//! tables of the same shape in the same store, one declared with
//! `history(keep = 100)` and one without, in the same process, on SQLite
//! (both durabilities) and PostgreSQL.
//!
//! On SQLite, the same run measures the floor by hand: raw rusqlite on a
//! file with kv's schema, one transaction running simplified versions of
//! kv's statements (read the row's version, upsert the row; then insert
//! the record, without kv's `ON CONFLICT` clause, and trim the row's
//! records to 100), with and without the record; and once more with the
//! record on a file without the `kv_history (tbl, at)` index, to show what
//! that index costs each write.
//!
//! `cargo bench -p kv-runtime --features postgres --bench history`
//!
//! The PostgreSQL part needs a server: `KV_TEST_POSTGRES_URL=postgres://...`
//! (it creates and uses a database `kv_bench_history_<pid>`, dropped at the
//! end). Without the variable it says so and measures SQLite only.
//!
//! Before measuring, each table is written more than `keep` times, so that
//! every measured `set` of the history table also trims its oldest record
//! (the steady state of a row that changes often), and the SQLite
//! write-ahead logs are past their first checkpoint.

mod support;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::Criterion;
use kv_runtime::backend::sqlite::{Durability, SqliteBackend, SqliteOptions};
use kv_runtime::{Ctx, Kv, Store};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use support::{connect, with_database};
use tokio::runtime::Runtime;

/// The table without history.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchPlain", keys = [banner], write_role = admin, soft_delete)]
struct Plain {
    active: bool,
    message: String,
}

/// The same table with history.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(
    table = "benchLogged",
    keys = [banner],
    write_role = admin,
    soft_delete,
    history(keep = 100)
)]
struct Logged {
    active: bool,
    message: String,
}

fn message(i: u64) -> String {
    format!("Scheduled maintenance tonight at 22:00 UTC ({i})")
}

/// Writes each table `n` times (see the module's comment).
fn warm_up(rt: &Runtime, store: &Store, admin: &Ctx, n: u64) {
    let (plain, logged) = (store.table::<Plain>(), store.table::<Logged>());
    for i in 0..n {
        let (active, message) = (i.is_multiple_of(2), message(i));
        rt.block_on(plain.set(
            admin,
            PlainKey::Banner,
            Plain {
                active,
                message: message.clone(),
            },
        ))
        .expect("warm-up set");
        rt.block_on(logged.set(admin, LoggedKey::Banner, Logged { active, message }))
            .expect("warm-up set");
    }
}

/// The two lines of one backend, in one criterion group named `name`.
fn bench_sets(c: &mut Criterion, rt: &Runtime, store: &Store, name: &str) {
    let admin = Ctx::user("ada").with_role("admin");
    warm_up(rt, store, &admin, 1_200);
    let (plain, logged) = (store.table::<Plain>(), store.table::<Logged>());
    let mut g = c.benchmark_group(name);
    let mut i = 0u64;
    g.bench_function("set without history", |b| {
        b.iter(|| {
            i += 1;
            let value = Plain {
                active: i.is_multiple_of(2),
                message: message(i),
            };
            black_box(
                rt.block_on(plain.set(&admin, PlainKey::Banner, value))
                    .unwrap(),
            )
        })
    });
    let mut i = 0u64;
    g.bench_function("set with history(keep = 100)", |b| {
        b.iter(|| {
            i += 1;
            let value = Logged {
                active: i.is_multiple_of(2),
                message: message(i),
            };
            black_box(
                rt.block_on(logged.set(&admin, LoggedKey::Banner, value))
                    .unwrap(),
            )
        })
    });
    g.finish();
}

// kv's statements, simplified and written out by hand for the raw baseline.
const RAW_GET: &str = "SELECT updated_at FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const RAW_UPSERT: &str = "INSERT INTO kv_rows
         (tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version)
     VALUES (?1, ?2, ?3, ?4, ?4, NULL, ?5, 1)
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,
         updated_at = excluded.updated_at, deleted_at = NULL, updated_by = excluded.updated_by";
const RAW_RECORD: &str = "INSERT INTO kv_history
         (tbl, key, version, op, value, schema_version, at, updated_by)
     VALUES (?1, ?2, ?3, 'set', ?4, 1, ?3, ?5)";
const RAW_TRIM: &str = "DELETE FROM kv_history WHERE tbl = ?1 AND key = ?2 AND version <= (
         SELECT version FROM kv_history WHERE tbl = ?1 AND key = ?2
         ORDER BY version DESC LIMIT 1 OFFSET 100)";

/// One raw `set` of `banner` in table `table`: read the row's version,
/// upsert it with the next one, and with `record` insert its history
/// record and trim the row's records to the newest 100, in one
/// transaction.
fn raw_set(conn: &mut Connection, table: &str, json: &str, record: bool) {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let current: Option<i64> = tx
        .prepare_cached(RAW_GET)
        .expect("prepare")
        .query_row(params![table, "banner"], |r| r.get(0))
        .optional()
        .expect("read");
    let version = current.map_or(1, |v| v + 1);
    tx.prepare_cached(RAW_UPSERT)
        .expect("prepare")
        .execute(params![table, "banner", json, version, "ada"])
        .expect("upsert");
    if record {
        tx.prepare_cached(RAW_RECORD)
            .expect("prepare")
            .execute(params![table, "banner", version, json, "ada"])
            .expect("record");
        tx.prepare_cached(RAW_TRIM)
            .expect("prepare")
            .execute(params![table, "banner"])
            .expect("trim");
    }
    tx.commit().expect("commit");
}

/// A raw connection to a file with kv's schema (made by opening a store on
/// it), with `synchronous` as given; `drop_at_index` drops the
/// `kv_history (tbl, at)` index.
fn raw_file(rt: &Runtime, path: PathBuf, synchronous: &str, drop_at_index: bool) -> Connection {
    rt.block_on(SqliteBackend::open(&path))
        .expect("the SQLite store opens");
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    if drop_at_index {
        conn.execute_batch("DROP INDEX kv_history_at")
            .expect("drop the index");
    }
    conn
}

/// The raw lines of one durability, in the criterion group `name`.
fn bench_raw(
    c: &mut Criterion,
    rt: &Runtime,
    dir: &std::path::Path,
    synchronous: &str,
    name: &str,
) {
    let mut with_index = raw_file(
        rt,
        dir.join(format!("raw-{synchronous}.db")),
        synchronous,
        false,
    );
    let mut without_index = raw_file(
        rt,
        dir.join(format!("raw-{synchronous}-no-at-index.db")),
        synchronous,
        true,
    );
    let json = |i: u64| {
        serde_json::to_string(&Plain {
            active: i.is_multiple_of(2),
            message: message(i),
        })
        .expect("json")
    };
    for i in 0..1_200 {
        raw_set(&mut with_index, "rawPlain", &json(i), false);
        raw_set(&mut with_index, "rawLogged", &json(i), true);
        raw_set(&mut without_index, "rawLogged", &json(i), true);
    }
    let mut g = c.benchmark_group(name);
    let mut i = 0u64;
    g.bench_function("raw set", |b| {
        b.iter(|| {
            i += 1;
            raw_set(&mut with_index, "rawPlain", &json(i), false)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw set + record + trim", |b| {
        b.iter(|| {
            i += 1;
            raw_set(&mut with_index, "rawLogged", &json(i), true)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw set + record + trim, no (tbl, at) index", |b| {
        b.iter(|| {
            i += 1;
            raw_set(&mut without_index, "rawLogged", &json(i), true)
        })
    });
    g.finish();
}

/// A directory of bench files, removed at the end.
struct BenchDir(PathBuf);

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sqlite(c: &mut Criterion, rt: &Runtime) {
    let dir =
        BenchDir(std::env::temp_dir().join(format!("kv-bench-history-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).expect("bench directory");
    for (file, durability, name) in [
        ("full.db", Durability::PowerLoss, "sqlite-full/set"),
        ("normal.db", Durability::ProcessCrash, "sqlite-normal/set"),
    ] {
        let store = rt.block_on(async {
            let options = SqliteOptions::default().durability(durability);
            let backend = SqliteBackend::open_with(dir.0.join(file), options).await;
            Store::with_backend(backend.expect("the SQLite store opens"))
        });
        bench_sets(c, rt, &store, name);
    }
    bench_raw(c, rt, &dir.0, "FULL", "sqlite-full/set");
    bench_raw(c, rt, &dir.0, "NORMAL", "sqlite-normal/set");
}

fn postgres(c: &mut Criterion, rt: &Runtime) {
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        eprintln!(
            "history bench: KV_TEST_POSTGRES_URL is not set; PostgreSQL not measured. Start a \
             server (scripts/test.sh shows how) and set it."
        );
        return;
    };
    let db = format!("kv_bench_history_{}", std::process::id());
    let admin = rt.block_on(connect(&url));
    rt.block_on(admin.batch_execute(&format!(
        "CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'UTF8'"
    )))
    .expect("the bench database can be created");
    let store = rt
        .block_on(Store::open(&with_database(&url, &db)))
        .expect("the PostgreSQL store opens");
    bench_sets(c, rt, &store, "postgres/set");
    drop(store);
    rt.block_on(admin.batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)")))
        .expect("the bench database can be dropped");
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // One thread, as in the other benches: the PostgreSQL connection tasks
    // run inside `block_on`.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    sqlite(&mut c, &rt);
    postgres(&mut c, &rt);
    c.final_summary();
}
