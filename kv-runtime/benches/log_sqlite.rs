//! Log `append` and a 100-entry `list` page on the SQLite backend, beside
//! raw rusqlite running the same statements by hand (same schema, WAL, same
//! `synchronous`, cached statements, the same JSON encode/decode of the
//! value), in the same run.
//!
//! `cargo bench -p kv-runtime --bench log_sqlite`
//!
//! The kv side goes through `Store`/`Log` (role check, validation, JSON
//! encoding and decoding, the rate-limit-free path, the hop to a blocking
//! thread), driven by `block_on` of a current-thread Tokio runtime. Each
//! side has its own database file, created by kv (so the schema is the
//! same) and filled with the same 1 000 entries of one parent.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::backend::sqlite::{Durability, SqliteBackend, SqliteOptions};
use kv_runtime::{Ctx, Log, PageRequest, Store};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// A chat line, the shape of a typical log entry.
#[derive(Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[log(table = "benchChat", write_role = member)]
struct ChatLine {
    text: String,
}

fn line(i: u64) -> ChatLine {
    ChatLine {
        text: format!("See you at the standup in five minutes ({i})"),
    }
}

/// The parent the list pages read (1 000 entries).
const FULL_ROOM: &str = "room-full";
/// The parent the appends go to.
const APPEND_ROOM: &str = "room-append";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// The statements kv runs for an append without an idempotency key and for
// a page, written out by hand for the baseline.
const LAST: &str = "SELECT last_seq FROM kv_log_parents WHERE tbl = ?1 AND parent = ?2";
const INSERT: &str = "INSERT INTO kv_log
         (tbl, parent, seq, value, created_at, author, deleted_at, idem_key, idem_count,
          schema_version)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, 1)";
const SET_LAST: &str = "INSERT INTO kv_log_parents (tbl, parent, last_seq) VALUES (?1, ?2, ?3)
     ON CONFLICT (tbl, parent) DO UPDATE SET last_seq = excluded.last_seq";
const FORWARD: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq > ?3 AND deleted_at IS NULL
     ORDER BY seq LIMIT ?4";
const BACKWARD: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq < ?3 AND deleted_at IS NULL
     ORDER BY seq DESC LIMIT ?4";

/// A raw entry, as the baseline reads it: parent, seq, value, created_at,
/// author, deleted_at.
type RawEntry = (String, i64, ChatLine, i64, Option<String>, Option<i64>);

fn raw_read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    let json: String = r.get(2)?;
    let value = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((r.get(0)?, r.get(1)?, value, r.get(3)?, r.get(4)?, r.get(5)?))
}

/// The raw append: the write lock, the parent's last number, the insert
/// and the new last number, in one transaction.
fn raw_append(conn: &mut Connection, parent: &str, value: &ChatLine) -> i64 {
    let json = serde_json::to_string(value).expect("json");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let last: i64 = tx
        .prepare_cached(LAST)
        .expect("prepare")
        .query_row(params!["benchChat", parent], |r| r.get(0))
        .optional()
        .expect("last")
        .unwrap_or(0);
    let seq = last + 1;
    tx.prepare_cached(INSERT)
        .expect("prepare")
        .execute(params!["benchChat", parent, seq, json, now_ms(), "ada"])
        .expect("insert");
    tx.prepare_cached(SET_LAST)
        .expect("prepare")
        .execute(params!["benchChat", parent, seq])
        .expect("set last");
    tx.commit().expect("commit");
    seq
}

/// A raw page of 100: one entry more is read, to know whether another
/// page follows (as kv does).
fn raw_page(conn: &Connection, backwards: bool, from: i64) -> Vec<RawEntry> {
    let sql = if backwards { BACKWARD } else { FORWARD };
    let mut entries: Vec<RawEntry> = conn
        .prepare_cached(sql)
        .expect("prepare")
        .query_map(params!["benchChat", FULL_ROOM, from, 101i64], raw_read)
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("entries");
    entries.truncate(100);
    entries
}

/// A connection with kv's pragmas: WAL, and `synchronous` as given.
fn raw_connection(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    conn
}

/// A directory of bench files, removed at the end.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kv-bench-log-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench directory");
        BenchDir(dir)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a kv store on `path` with the given durability, and fills
/// [`FULL_ROOM`] with 1 000 entries when it has none yet.
fn open(rt: &Runtime, path: &Path, durability: Durability) -> Store {
    rt.block_on(async {
        let options = SqliteOptions::default().durability(durability);
        let backend = SqliteBackend::open_with(path, options).await.expect("open");
        let store = Store::with_backend(backend);
        let log = store.log::<ChatLine>();
        let ctx = Ctx::internal();
        let latest = log
            .list_backwards(&ctx, FULL_ROOM.to_owned(), PageRequest::first(1))
            .await
            .expect("list");
        if latest.entries.is_empty() {
            for batch in 0..10u64 {
                let values = (0..100).map(|i| line(batch * 100 + i)).collect();
                log.append_many(&ctx, FULL_ROOM.to_owned(), values)
                    .await
                    .expect("fill");
            }
        }
        store
    })
}

/// `append` to one parent, kv beside raw, with the given `synchronous`
/// (`sync` names it).
fn bench_append(
    c: &mut Criterion,
    sync: &str,
    rt: &Runtime,
    log: &kv_runtime::Log<ChatLine>,
    raw: &mut Connection,
) {
    let member = Ctx::user("ada").with_role("member");
    // Past the first write-ahead-log checkpoint on both sides, so that the
    // measured commits are in the steady state.
    for i in 0..1_200 {
        rt.block_on(log.append(&member, APPEND_ROOM.to_owned(), line(i)))
            .expect("warm-up append");
        raw_append(raw, APPEND_ROOM, &line(i));
    }
    let mut g = c.benchmark_group(format!("log_sqlite/append_{sync}"));
    let mut i = 0u64;
    g.bench_function("kv", |b| {
        b.iter(|| {
            i += 1;
            black_box(rt.block_on(log.append(&member, APPEND_ROOM.to_owned(), line(i))))
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            i += 1;
            black_box(raw_append(raw, APPEND_ROOM, &line(i)))
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = BenchDir::new();
    let full = open(&rt, &dir.0.join("kv-full.db"), Durability::default());
    let normal = open(&rt, &dir.0.join("kv-normal.db"), Durability::ProcessCrash);
    // The raw files are created and filled by kv too, then closed.
    drop(open(&rt, &dir.0.join("raw-full.db"), Durability::default()));
    drop(open(
        &rt,
        &dir.0.join("raw-normal.db"),
        Durability::ProcessCrash,
    ));
    let mut raw_full = raw_connection(&dir.0.join("raw-full.db"), "FULL");
    let mut raw_normal = raw_connection(&dir.0.join("raw-normal.db"), "NORMAL");

    let log = full.log::<ChatLine>();
    let normal_log = normal.log::<ChatLine>();
    bench_append(c, "full", &rt, &log, &mut raw_full);
    bench_append(c, "normal", &rt, &normal_log, &mut raw_normal);

    let member = Ctx::user("ada").with_role("member");
    // The latest 100 entries: what a chat room shows first.
    let mut g = c.benchmark_group("log_sqlite/list_backwards_latest_100_of_1k");
    g.bench_function("kv", |b| {
        b.iter(|| {
            let page = rt
                .block_on(log.list_backwards(
                    &member,
                    FULL_ROOM.to_owned(),
                    PageRequest::first(100),
                ))
                .expect("list");
            assert_eq!(page.entries.len(), 100);
            black_box(page)
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let page = raw_page(&raw_full, true, i64::MAX);
            assert_eq!(page.len(), 100);
            black_box(page)
        })
    });
    g.finish();

    // A cursor page from the middle, oldest first.
    let first = rt
        .block_on(log.list(&member, FULL_ROOM.to_owned(), PageRequest::first(500)))
        .expect("list");
    let cursor = first.continue_cursor.expect("entries follow");
    let mut g = c.benchmark_group("log_sqlite/list_100_mid_1k");
    g.bench_function("kv", |b| {
        b.iter(|| {
            let request = PageRequest::after(cursor.as_str(), 100);
            let page = rt
                .block_on(log.list(&member, FULL_ROOM.to_owned(), request))
                .expect("list");
            assert_eq!(page.entries.len(), 100);
            black_box(page)
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let page = raw_page(&raw_full, false, 500);
            assert_eq!(page.len(), 100);
            black_box(page)
        })
    });
    g.finish();

    drop((full, normal, raw_full, raw_normal));
    drop(dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
