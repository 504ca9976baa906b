//! Log `append` and a 100-entry `list` page on the PostgreSQL backend,
//! beside a raw tokio-postgres client running the same statements by hand
//! (prepared once, the value encoded or decoded with serde_json), in the
//! same run, against the same database.
//!
//! Needs a server: `KV_TEST_POSTGRES_URL=postgres://... cargo bench -p
//! kv-runtime --features postgres --bench log_postgres` (it creates and
//! uses a database `kv_bench_log_<pid>`, dropped at the end). Without the
//! variable it prints a message and does nothing.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use kv_runtime::backend::postgres::sql::log as sql;
use kv_runtime::{Ctx, Log, PageRequest, Store};
use serde::{Deserialize, Serialize};
use support::{connect, with_database};
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
/// The parent kv appends to.
const KV_ROOM: &str = "room-kv";
/// The parent the raw client appends to.
const RAW_ROOM: &str = "room-raw";

fn main() {
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        eprintln!(
            "log_postgres bench: KV_TEST_POSTGRES_URL is not set; nothing to measure. Start a \
             server (scripts/test.sh shows how) and set it."
        );
        return;
    };
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // One thread: both clients' connection tasks run inside `block_on`, so
    // neither gets a second core the other lacks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let db = format!("kv_bench_log_{}", std::process::id());
    let admin = rt.block_on(connect(&url));
    rt.block_on(admin.batch_execute(&format!(
        "CREATE DATABASE \"{db}\" TEMPLATE template0 ENCODING 'UTF8'"
    )))
    .expect("the bench database can be created");
    bench(&mut c, &rt, &with_database(&url, &db));
    rt.block_on(admin.batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)")))
        .expect("the bench database can be dropped");
    c.final_summary();
}

/// A raw entry, as the baseline reads it: seq, value, created_at, author,
/// deleted_at.
type RawEntry = (i64, ChatLine, i64, Option<String>, Option<i64>);

fn raw_entry(r: &tokio_postgres::Row) -> RawEntry {
    (
        r.get(0),
        serde_json::from_str(r.get::<_, &str>(1)).expect("json"),
        r.get(2),
        r.get(3),
        r.get(4),
    )
}

fn bench(c: &mut Criterion, rt: &Runtime, url: &str) {
    let store = rt.block_on(Store::open(url)).expect("the store opens");
    let raw = rt.block_on(connect(url));
    let member = Ctx::user("ada").with_role("member");
    let log = store.log::<ChatLine>();
    for batch in 0..10u64 {
        let values = (0..100).map(|i| line(batch * 100 + i)).collect();
        rt.block_on(log.append_many(&member, FULL_ROOM.to_owned(), values))
            .expect("fill");
    }
    rt.block_on(raw.batch_execute("ANALYZE kv_log"))
        .expect("analyze");

    let append = rt.block_on(raw.prepare(sql::APPEND)).expect("prepare");
    let forward = rt.block_on(raw.prepare(sql::FORWARD)).expect("prepare");
    let backward = rt.block_on(raw.prepare(sql::BACKWARD)).expect("prepare");

    let mut g = c.benchmark_group("log_postgres/append");
    let mut i = 0u64;
    g.bench_function("kv typed append", |b| {
        b.iter(|| {
            i += 1;
            let entry = rt
                .block_on(log.append(&member, KV_ROOM.to_owned(), line(i)))
                .expect("append");
            black_box(entry)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw tokio-postgres append (same statement)", |b| {
        b.iter(|| {
            i += 1;
            let values = vec![serde_json::to_string(&line(i)).expect("json")];
            let now = 1_700_000_000_000i64;
            let rows = rt
                .block_on(raw.query(
                    &append,
                    &[
                        &"benchChat",
                        &RAW_ROOM,
                        &values,
                        &Some("ada"),
                        &now,
                        &None::<&str>,
                        &1i32,
                    ],
                ))
                .expect("append");
            assert_eq!(rows.len(), 1);
            black_box(rows[0].get::<_, i64>(0))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("log_postgres/list_backwards_latest_100_of_1k");
    g.bench_function("kv typed page", |b| {
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
    g.bench_function("raw tokio-postgres page + decode", |b| {
        b.iter(|| {
            // The same statement kv runs: one entry more than the page, to
            // know whether another page follows.
            let rows = rt
                .block_on(raw.query(
                    &backward,
                    &[&"benchChat", &FULL_ROOM, &i64::MAX, &101i64, &false],
                ))
                .expect("list");
            let page: Vec<RawEntry> = rows.iter().take(100).map(raw_entry).collect();
            assert_eq!(page.len(), 100);
            black_box((page, rows.len() > 100))
        })
    });
    g.finish();

    let first = rt
        .block_on(log.list(&member, FULL_ROOM.to_owned(), PageRequest::first(500)))
        .expect("list");
    let cursor = first.continue_cursor.expect("entries follow");
    let mut g = c.benchmark_group("log_postgres/list_100_mid_1k");
    g.bench_function("kv typed page", |b| {
        b.iter(|| {
            let request = PageRequest::after(cursor.as_str(), 100);
            let page = rt
                .block_on(log.list(&member, FULL_ROOM.to_owned(), request))
                .expect("list");
            assert_eq!(page.entries.len(), 100);
            black_box(page)
        })
    });
    g.bench_function("raw tokio-postgres page + decode", |b| {
        b.iter(|| {
            let rows = rt
                .block_on(raw.query(
                    &forward,
                    &[&"benchChat", &FULL_ROOM, &500i64, &101i64, &false],
                ))
                .expect("list");
            let page: Vec<RawEntry> = rows.iter().take(100).map(raw_entry).collect();
            assert_eq!(page.len(), 100);
            black_box((page, rows.len() > 100))
        })
    });
    g.finish();
    drop((log, store, raw));
}
