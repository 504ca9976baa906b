//! Typed operations on the SQLite backend, beside raw rusqlite doing the
//! same statements by hand on the same schema with the same pragmas, in the
//! same run.
//!
//! `cargo bench -p kv-runtime --bench sqlite`
//!
//! Also: the throughput of 1 and of 8 concurrent writers at
//! `synchronous = FULL` (group commit), beside raw rusqlite with 1 and 8
//! threads on their own connections; and how long kv holds a runtime
//! worker per poll under a mixed read/write load (printed as
//! `sqlite/worker-hold` lines, not measured by criterion).
//!
//! The kv side goes through `Store`/`Table` (key check, validation, JSON
//! encoding and decoding, the hop to a blocking thread), each call driven by
//! `block_on` of a current-thread Tokio runtime. The raw side calls rusqlite
//! directly on the bench thread with cached statements, and also encodes
//! and decodes the JSON value, as a program doing it by hand would. Each
//! side has its own database file of the same content, created by kv (so
//! the schema is the same) and filled in one transaction.

use std::future::{poll_fn, Future};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::backend::next_version;
use kv_runtime::backend::sqlite::{Durability, SqliteBackend, SqliteOptions};
use kv_runtime::{Ctx, Kv, PageRequest, Store, Table};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchConfig", keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchItem", write_role = admin)]
struct Item {
    n: u64,
    label: String,
}

fn config(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

fn item_key(i: u64) -> String {
    format!("item-{i:06}")
}

fn item(i: u64) -> Item {
    Item {
        n: i,
        label: format!("feature flag number {i}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A directory of bench files, removed at the end.
struct BenchDir(PathBuf);

impl BenchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kv-bench-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench directory");
        BenchDir(dir)
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a kv database at `path` holding `items` rows of table
/// `benchItem` (kv creates the schema; the rows go in one transaction).
fn create(rt: &Runtime, path: &Path, items: u64) {
    rt.block_on(async {
        drop(
            SqliteBackend::open(path)
                .await
                .expect("kv creates the file"),
        )
    });
    let mut conn = Connection::open(path).expect("open");
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO kv_rows (tbl, key, value, created_at, updated_at, deleted_at, \
                 updated_by) VALUES ('benchItem', ?1, ?2, ?3, ?3, NULL, 'ada')",
            )
            .expect("prepare");
        let now = now_ms();
        for i in 0..items {
            let json = serde_json::to_string(&item(i)).expect("json");
            insert
                .execute(params![item_key(i), json, now])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}

// The statements kv runs, written out by hand for the baseline.
const GET: &str = "SELECT key, value, created_at, updated_at, deleted_at, updated_by
     FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const LIST_AFTER: &str = "SELECT key, value, created_at, updated_at, deleted_at, updated_by
     FROM kv_rows WHERE tbl = ?1 AND key > ?2 AND deleted_at IS NULL ORDER BY key LIMIT ?3";
const LIST_FIRST: &str = "SELECT key, value, created_at, updated_at, deleted_at, updated_by
     FROM kv_rows WHERE tbl = ?1 AND deleted_at IS NULL ORDER BY key LIMIT ?2";
const UPSERT: &str =
    "INSERT INTO kv_rows (tbl, key, value, created_at, updated_at, deleted_at, updated_by)
     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,
         updated_at = excluded.updated_at, deleted_at = NULL, updated_by = excluded.updated_by";

/// A raw row, as the baseline reads it.
type RawRow<T> = (String, T, i64, i64, Option<i64>, Option<String>);

/// A connection with kv's pragmas: WAL, and `synchronous` as given.
fn raw_connection(path: &Path, synchronous: &str) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    conn
}

fn raw_read<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow<T>> {
    let json: String = r.get(1)?;
    let value = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((r.get(0)?, value, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn raw_get(conn: &Connection, key: &str) -> Option<RawRow<SiteConfig>> {
    raw_get_in(conn, "benchConfig", key)
}

/// The raw read of the row `key` of `table`.
fn raw_get_in<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    key: &str,
) -> Option<RawRow<T>> {
    conn.prepare_cached(GET)
        .expect("prepare")
        .query_row(params![table, key], raw_read)
        .optional()
        .expect("get")
}

/// The raw conflict-checked upsert: `Err(current)` on a version mismatch.
fn raw_set(
    conn: &mut Connection,
    key: &str,
    value: &SiteConfig,
    expected: Option<i64>,
) -> Result<i64, Option<i64>> {
    let json = serde_json::to_string(value).expect("json");
    let now = now_ms();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let existing: Option<(i64, i64, Option<i64>)> = tx
        .prepare_cached(GET)
        .expect("prepare")
        .query_row(params!["benchConfig", key], |r| {
            Ok((r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()
        .expect("read");
    if let Some(expected) = expected {
        let current = existing.filter(|e| e.2.is_none()).map(|e| e.1);
        if current != Some(expected) {
            return Err(current);
        }
    }
    let created_at = existing.map_or(now, |e| e.0);
    let updated_at = next_version(existing.map(|e| e.1), now);
    tx.prepare_cached(UPSERT)
        .expect("prepare")
        .execute(params![
            "benchConfig",
            key,
            json,
            created_at,
            updated_at,
            "ada"
        ])
        .expect("upsert");
    tx.commit().expect("commit");
    Ok(updated_at)
}

fn raw_page(conn: &Connection, after: Option<&str>, n: usize) -> Vec<RawRow<Item>> {
    let limit = n as i64 + 1; // one more, to know whether a next page exists
    let mut rows: Vec<RawRow<Item>> = match after {
        Some(after) => conn
            .prepare_cached(LIST_AFTER)
            .expect("prepare")
            .query_map(params!["benchItem", after, limit], raw_read)
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows"),
        None => conn
            .prepare_cached(LIST_FIRST)
            .expect("prepare")
            .query_map(params!["benchItem", limit], raw_read)
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows"),
    };
    rows.truncate(n);
    rows
}

/// The kv cursor that continues after the first `skip` rows.
fn cursor_after(rt: &Runtime, store: &Store, skip: usize) -> String {
    let t = store.table::<Item>();
    let admin = Ctx::internal();
    let mut cursor = None;
    let mut seen = 0;
    while seen < skip {
        let n = (skip - seen).min(PageRequest::MAX_ITEMS);
        let request = match cursor.take() {
            Some(c) => PageRequest::after(c, n),
            None => PageRequest::first(n),
        };
        let page = rt.block_on(t.list(&admin, request)).expect("list");
        seen += page.page.len();
        cursor = page.continue_cursor;
    }
    cursor.expect("rows follow")
}

/// `set` and conflict-checked `set` of one row, kv beside raw, on stores
/// with the same `synchronous` setting (`sync` names it).
fn bench_writes(
    c: &mut Criterion,
    sync: &str,
    rt: &Runtime,
    table: &Table<SiteConfig>,
    raw: &mut Connection,
) {
    let admin = Ctx::user("ada").with_role("admin");
    let mut g = c.benchmark_group(format!("sqlite/set_{sync}"));
    let mut i = 0u64;
    g.bench_function("kv", |b| {
        b.iter(|| {
            i += 1;
            black_box(rt.block_on(table.set(&admin, SiteConfigKey::Motd, config(i))))
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            i += 1;
            black_box(raw_set(raw, "motd", &config(i), None))
        })
    });
    g.finish();

    let mut g = c.benchmark_group(format!("sqlite/set_expecting_{sync}"));
    let mut version = rt
        .block_on(table.get(SiteConfigKey::Motd))
        .expect("get")
        .expect("row")
        .updated_at;
    g.bench_function("kv", |b| {
        b.iter(|| {
            i += 1;
            let row = rt
                .block_on(table.set_expecting(&admin, SiteConfigKey::Motd, config(i), version))
                .expect("the version is current");
            version = row.updated_at;
        })
    });
    let mut version = raw_get(raw, "motd").expect("row").3;
    g.bench_function("raw", |b| {
        b.iter(|| {
            i += 1;
            version =
                raw_set(raw, "motd", &config(i), Some(version)).expect("the version is current");
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
    let files = [
        ("kv-1k", 1_000),
        ("raw-1k", 1_000),
        ("kv-100k", 100_000),
        ("raw-100k", 100_000),
        ("raw-normal", 0),
    ];
    for (name, items) in files {
        create(&rt, &dir.0.join(format!("{name}.db")), items);
    }
    let open = |name: &str| {
        let path = dir.0.join(format!("{name}.db"));
        rt.block_on(async { Store::with_backend(SqliteBackend::open(path).await.expect("open")) })
    };
    let kv = open("kv-1k");
    let kv_100k = open("kv-100k");
    let mut raw = raw_connection(&dir.0.join("raw-1k.db"), "FULL");
    let raw_100k = raw_connection(&dir.0.join("raw-100k.db"), "FULL");

    let table = kv.table::<SiteConfig>();
    let admin = Ctx::user("ada").with_role("admin");
    for (i, k) in SiteConfigKey::ALL.iter().enumerate() {
        rt.block_on(table.set(&admin, k, config(i as u64)))
            .expect("set");
        raw_set(&mut raw, k.as_str(), &config(i as u64), None).expect("raw set");
    }

    // The floor under every kv call: the round trip to a blocking thread
    // and back, doing nothing there.
    let mut g = c.benchmark_group("sqlite/hop");
    g.bench_function("spawn_blocking no-op", |b| {
        b.iter(|| {
            black_box(rt.block_on(async { tokio::task::spawn_blocking(|| black_box(1)).await }))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/get");
    g.bench_function("kv", |b| {
        b.iter(|| black_box(rt.block_on(table.get(black_box(SiteConfigKey::Motd)))))
    });
    // The untyped backend call through the blocking pool (what every get
    // did before it could be answered on the calling thread).
    let backend = kv.backend();
    g.bench_function("kv backend get (blocking pool)", |b| {
        b.iter(|| black_box(rt.block_on(backend.get("benchConfig", black_box("motd")))))
    });
    g.bench_function("raw", |b| {
        b.iter(|| black_box(raw_get(&raw, black_box("motd"))))
    });
    g.finish();

    let normal = rt.block_on(async {
        let options = SqliteOptions::default().durability(Durability::ProcessCrash);
        let backend = SqliteBackend::open_with(dir.0.join("kv-normal.db"), options).await;
        Store::with_backend(backend.expect("open"))
    });
    let normal_table = normal.table::<SiteConfig>();
    let mut raw_normal = raw_connection(&dir.0.join("raw-normal.db"), "NORMAL");
    for (i, k) in SiteConfigKey::ALL.iter().enumerate() {
        rt.block_on(normal_table.set(&admin, k, config(i as u64)))
            .expect("set");
        raw_set(&mut raw_normal, k.as_str(), &config(i as u64), None).expect("raw set");
    }
    // Fill each write-ahead log past its first checkpoint, so that the
    // measured commits overwrite the log in place (its steady state) rather
    // than grow the file, on both sides alike.
    for n in 0..1_200 {
        let v = config(n);
        rt.block_on(table.set(&admin, SiteConfigKey::Footer, v.clone()))
            .expect("warm-up set");
        rt.block_on(normal_table.set(&admin, SiteConfigKey::Footer, v.clone()))
            .expect("warm-up set");
        raw_set(&mut raw, "footer", &v, None).expect("warm-up set");
        raw_set(&mut raw_normal, "footer", &v, None).expect("warm-up set");
    }
    bench_writes(c, "full", &rt, &table, &mut raw);
    bench_writes(c, "normal", &rt, &normal_table, &mut raw_normal);

    let items = kv.table::<Item>();
    let items_100k = kv_100k.table::<Item>();
    let mut g = c.benchmark_group("sqlite/list_first_100_of_1k");
    g.bench_function("kv", |b| {
        b.iter(|| black_box(rt.block_on(items.list(&admin, PageRequest::first(100)))))
    });
    g.bench_function("raw", |b| b.iter(|| black_box(raw_page(&raw, None, 100))));
    g.finish();

    let mut g = c.benchmark_group("sqlite/list_100_mid_1k");
    let cursor = cursor_after(&rt, &kv, 500);
    g.bench_function("kv", |b| {
        b.iter(|| {
            let request = PageRequest::after(cursor.as_str(), 100);
            black_box(rt.block_on(items.list(&admin, request)))
        })
    });
    let after = item_key(499);
    g.bench_function("raw", |b| {
        b.iter(|| black_box(raw_page(&raw, Some(&after), 100)))
    });
    // The backend alone (untyped rows, no decoding): splits the kv figure
    // into the backend's share and the typed layer's.
    let backend = kv.backend();
    g.bench_function("kv backend only", |b| {
        b.iter(|| black_box(rt.block_on(backend.list("benchItem", Some(&after), 101))))
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/list_100_mid_100k");
    let cursor = cursor_after(&rt, &kv_100k, 50_000);
    g.bench_function("kv", |b| {
        b.iter(|| {
            let request = PageRequest::after(cursor.as_str(), 100);
            black_box(rt.block_on(items_100k.list(&admin, request)))
        })
    });
    let after = item_key(49_999);
    g.bench_function("raw", |b| {
        b.iter(|| black_box(raw_page(&raw_100k, Some(&after), 100)))
    });
    g.finish();

    drop((kv, kv_100k, normal, raw, raw_100k, raw_normal));
    bench_writers(c, &dir);
    worker_hold(&dir);
    drop(dir);
}

/// Writes per second of `writers` concurrent writers, each setting its own
/// row, at `synchronous = FULL`: kv on a 2-worker runtime (its writes
/// share commits), and raw rusqlite with one thread and connection per
/// writer (`BEGIN IMMEDIATE` with SQLite's busy timeout, one commit each).
fn bench_writers(c: &mut Criterion, dir: &BenchDir) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let path = dir.0.join("kv-writers.db");
    create(&rt, &path, 0);
    let store =
        rt.block_on(async { Store::with_backend(SqliteBackend::open(&path).await.expect("open")) });
    let raw_path = dir.0.join("raw-writers.db");
    create(&rt, &raw_path, 0);
    let mut g = c.benchmark_group("sqlite/writers_full (time per write)");
    g.sample_size(10);
    for writers in [1u64, 8] {
        let table = store.table::<Item>();
        g.bench_function(format!("kv, {writers} writers"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(writers);
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..writers)
                        .map(|w| {
                            let table = table.clone();
                            tokio::spawn(async move {
                                let admin = Ctx::internal();
                                for i in 0..per {
                                    table
                                        .set(&admin, format!("w{w}"), item(i))
                                        .await
                                        .expect("set");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("writer");
                    }
                });
                start.elapsed() * iters as u32 / (per * writers) as u32
            })
        });
        let raw_path = raw_path.clone();
        g.bench_function(format!("raw, {writers} threads"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(writers);
                let start = Instant::now();
                let threads: Vec<_> = (0..writers)
                    .map(|w| {
                        let raw_path = raw_path.clone();
                        std::thread::spawn(move || {
                            let mut conn = raw_connection(&raw_path, "FULL");
                            conn.busy_timeout(Duration::from_secs(30))
                                .expect("busy timeout");
                            for i in 0..per {
                                raw_item_set(&mut conn, &format!("w{w}"), &item(i));
                            }
                        })
                    })
                    .collect();
                for t in threads {
                    t.join().expect("writer");
                }
                start.elapsed() * iters as u32 / (per * writers) as u32
            })
        });
    }
    g.finish();
}

/// The raw upsert of an [`Item`] row (no conflict check).
fn raw_item_set(conn: &mut Connection, key: &str, value: &Item) {
    let json = serde_json::to_string(value).expect("json");
    let now = now_ms();
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let existing: Option<(i64, i64)> = tx
        .prepare_cached(GET)
        .expect("prepare")
        .query_row(params!["benchItem", key], |r| Ok((r.get(2)?, r.get(3)?)))
        .optional()
        .expect("read");
    tx.prepare_cached(UPSERT)
        .expect("prepare")
        .execute(params![
            "benchItem",
            key,
            json,
            existing.map_or(now, |e| e.0),
            next_version(existing.map(|e| e.1), now),
            "ada"
        ])
        .expect("upsert");
    tx.commit().expect("commit");
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One poll of a kv call: wall-clock time (which includes any time the
/// operating system ran another thread meanwhile) and the worker's CPU
/// time (what kv computed), in ns, which call of its task it was (0 for
/// the first), and whether the call was done after it.
type Poll = (u64, u64, u32, bool);

/// Polls `f`, the `call`th call of its task, recording how long each poll
/// ran (the time kv held the runtime worker) in `polls`.
async fn timed<F: Future>(f: F, call: u32, polls: &mut Vec<Poll>) -> F::Output {
    let mut f = pin!(f);
    poll_fn(|cx| {
        let (start, cpu) = (Instant::now(), thread_cpu());
        let out = f.as_mut().poll(cx);
        let wall = start.elapsed().as_nanos() as u64;
        polls.push((
            wall,
            (thread_cpu() - cpu).as_nanos() as u64,
            call,
            out.is_ready(),
        ));
        out
    })
    .await
}

/// Under a mixed load (4 tasks reading, 2 writing, on a 2-worker runtime,
/// `synchronous = FULL`, for 3 s), how long each poll of a kv call runs on
/// the worker: percentiles and the maximum, for gets and for sets. Then
/// the same load with raw readers (each task reading through its own
/// rusqlite connection on the worker, the same statement and JSON
/// decode) beside the same kv writers: what SQLite itself costs a worker.
/// Each run also times the polls of a task that does nothing but spend a
/// unit of budget (`no-op`): the floor of the measurement on this machine
/// under this load (to which it adds one busy task).
fn worker_hold(dir: &BenchDir) {
    worker_hold_with(dir, false);
    worker_hold_with(dir, true);
}

/// [`worker_hold`] with kv's readers, or raw ones (`raw_readers`).
fn worker_hold_with(dir: &BenchDir, raw_readers: bool) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let path = dir.0.join(if raw_readers {
        "kv-mixed-raw-readers.db"
    } else {
        "kv-mixed.db"
    });
    create(&rt, &path, 1_000);
    let store =
        rt.block_on(async { Store::with_backend(SqliteBackend::open(&path).await.expect("open")) });
    let until = Instant::now() + Duration::from_secs(3);
    let (gets, sets, idle) = rt.block_on(async {
        let readers: Vec<_> = (0..4u64)
            .map(|r| {
                let items = store.table::<Item>();
                // Set up as kv's reader connections are: never waiting
                // for a lock, refusing writes. In a mutex only to be
                // `Sync` (each task has its own).
                let raw = raw_readers.then(|| {
                    let conn = raw_connection(&path, "FULL");
                    conn.busy_timeout(Duration::ZERO).expect("busy timeout");
                    conn.pragma_update(None, "query_only", true)
                        .expect("query_only");
                    std::sync::Mutex::new(conn)
                });
                tokio::spawn(async move {
                    let mut polls = Vec::new();
                    let mut n = r;
                    let mut call = 0;
                    while Instant::now() < until {
                        n = (n * 7 + 13) % 1_000;
                        let key = item_key(n);
                        // The call itself inside: `get` reads when called.
                        let found = match &raw {
                            Some(conn) => {
                                timed(
                                    async {
                                        let conn = conn.lock().expect("connection");
                                        raw_get_in::<Item>(&conn, "benchItem", &key).is_some()
                                    },
                                    call,
                                    &mut polls,
                                )
                                .await
                            }
                            None => timed(async { items.get(&key).await }, call, &mut polls)
                                .await
                                .expect("get")
                                .is_some(),
                        };
                        assert!(found, "every key read is there");
                        if raw.is_some() {
                            // A read that never waits would keep the
                            // worker from the writers; kv's `get` counts
                            // against Tokio's budget, so the raw one does.
                            tokio::task::consume_budget().await;
                        }
                        call += 1;
                    }
                    polls
                })
            })
            .collect();
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let items = store.table::<Item>();
                tokio::spawn(async move {
                    let mut polls = Vec::new();
                    let admin = Ctx::internal();
                    let mut i = 0;
                    while Instant::now() < until {
                        i += 1;
                        let key = item_key((w * 500 + i) % 1_000);
                        let call = i as u32 - 1;
                        timed(
                            async { items.set(&admin, &key, item(i)).await },
                            call,
                            &mut polls,
                        )
                        .await
                        .expect("set");
                    }
                    polls
                })
            })
            .collect();
        // The floor of the measurement: a task whose polls do nothing but
        // spend a unit of Tokio's budget (as a `get` answered at once
        // does), on the same workers beside the readers and writers (a
        // seventh busy task). On a virtual machine the thread's CPU clock
        // also advances while the hypervisor runs something else, so its
        // maximum is what a poll can show without doing anything.
        let idle = tokio::spawn(async move {
            let mut polls = Vec::new();
            let mut call = 0;
            while Instant::now() < until {
                timed(
                    async {
                        tokio::task::consume_budget().await;
                        black_box(call)
                    },
                    call,
                    &mut polls,
                )
                .await;
                call += 1;
            }
            polls
        });
        let mut gets = Vec::new();
        for r in readers {
            gets.extend(r.await.expect("reader"));
        }
        let mut sets = Vec::new();
        for w in writers {
            sets.extend(w.await.expect("writer"));
        }
        let idle = idle.await.expect("idle task");
        (gets, sets, idle)
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let get = if raw_readers { "raw get" } else { "get" };
    let set = if raw_readers {
        "set (beside raw gets)"
    } else {
        "set"
    };
    let idle_name = if raw_readers {
        "no-op (beside raw gets)"
    } else {
        "no-op"
    };
    for (name, polls) in [(get, gets), (set, sets), (idle_name, idle)] {
        if polls.is_empty() {
            println!("sqlite/worker-hold: {name}: no polls in the time given");
            continue;
        }
        for (clock, wall) in [("wall", true), ("cpu", false)] {
            let mut ns: Vec<u64> = polls.iter().map(|p| if wall { p.0 } else { p.1 }).collect();
            ns.sort_unstable();
            let at = |q: f64| Duration::from_nanos(ns[((ns.len() - 1) as f64 * q) as usize]);
            println!(
                "sqlite/worker-hold: {name} ({clock}): {} polls; p50 {:?}, p99 {:?}, p99.9 {:?}, \
                 max {:?} (load average {load})",
                ns.len(),
                at(0.5),
                at(0.99),
                at(0.999),
                at(1.0),
            );
        }
        let mut longest = polls.clone();
        longest.sort_unstable_by_key(|p| std::cmp::Reverse(p.1));
        let longest: Vec<String> = longest
            .iter()
            .take(8)
            .map(|p| {
                let state = if p.3 { "done" } else { "waiting" };
                format!("{:?} (call {}, {state})", Duration::from_nanos(p.1), p.2)
            })
            .collect();
        println!(
            "sqlite/worker-hold: {name}: the longest polls by CPU time, with the call of its task \
             each was in: {}",
            longest.join(", ")
        );
    }
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
