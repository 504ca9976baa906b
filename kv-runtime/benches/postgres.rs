//! Typed `get`, `set`, conflict-checked `set` and a 100-row `list` page on
//! the PostgreSQL backend, beside a raw tokio-postgres client running the
//! same statements by hand (prepared once, the value encoded or decoded with
//! serde_json), in the same run, against the same database.
//!
//! Needs a server: `KV_TEST_POSTGRES_URL=postgres://... cargo bench -p
//! kv-runtime --features postgres --bench postgres` (it creates and uses a
//! database `kv_bench_<pid>`, dropped at the end). Without the variable it
//! prints a message and does nothing.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use kv_runtime::backend::postgres::sql;
use kv_runtime::{Ctx, Kv, KvKey, PageRequest, Store};
use serde::{Deserialize, Serialize};
use support::{connect, with_database};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchSite", keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// 1 000 rows, for list pages.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchItems1k", write_role = admin)]
struct Items1k {
    active: bool,
    message: String,
}

/// 100 000 rows, for list pages.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchItems100k", write_role = admin)]
struct Items100k {
    active: bool,
    message: String,
}

/// What the raw client decodes values into (the same shape).
#[derive(Serialize, Deserialize, Debug)]
struct RawValue {
    active: bool,
    message: String,
}

fn value(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

fn raw_value(i: u64) -> RawValue {
    let v = value(i);
    RawValue {
        active: v.active,
        message: v.message,
    }
}

/// Fills `table` with `n` rows `k000001`, ... straight in SQL.
async fn fill(client: &Client, table: &str, n: i64) {
    client
        .execute(
            "INSERT INTO kv_rows (tbl, key, value, created_at, updated_at, updated_by) \
             SELECT $1::text, 'k' || lpad(i::text, 6, '0'), \
             jsonb_build_object('active', i % 2 = 0, 'message', 'Item number ' || i), \
             1700000000000, 1700000000000, 'bench' \
             FROM generate_series(1, $2::bigint) AS i",
            &[&table, &n],
        )
        .await
        .expect("rows can be inserted");
}

fn main() {
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        eprintln!(
            "postgres bench: KV_TEST_POSTGRES_URL is not set; nothing to measure. Start a \
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
    let db = format!("kv_bench_{}", std::process::id());
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

fn bench(c: &mut Criterion, rt: &Runtime, url: &str) {
    let store = rt.block_on(Store::open(url)).expect("the store opens");
    let raw = rt.block_on(connect(url));
    let admin = Ctx::user("ada").with_role("admin");
    let site = store.table::<SiteConfig>();
    let first = rt
        .block_on(site.set(&admin, SiteConfigKey::Motd, value(0)))
        .unwrap();
    rt.block_on(fill(&raw, "benchItems1k", 1_000));
    rt.block_on(fill(&raw, "benchItems100k", 100_000));
    rt.block_on(raw.batch_execute("ANALYZE kv_rows")).unwrap();

    let get = rt.block_on(raw.prepare(sql::GET)).unwrap();
    let put = rt.block_on(raw.prepare(sql::PUT)).unwrap();
    let list_after = rt.block_on(raw.prepare(sql::LIST_AFTER)).unwrap();

    let mut g = c.benchmark_group("postgres/get");
    g.bench_function("kv typed get", |b| {
        b.iter(|| {
            let row = rt
                .block_on(site.get(black_box(SiteConfigKey::Motd)))
                .unwrap();
            black_box(row)
        })
    });
    g.bench_function("raw tokio-postgres get + decode", |b| {
        b.iter(|| {
            let row = rt
                .block_on(raw.query_opt(&get, &[&"benchSite", &black_box("motd")]))
                .unwrap()
                .unwrap();
            let v: RawValue = serde_json::from_str(row.get::<_, &str>(0)).unwrap();
            let updated_at: i64 = row.get(2);
            black_box((v, updated_at))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("postgres/set");
    let mut i = 0u64;
    g.bench_function("kv typed set", |b| {
        b.iter(|| {
            i += 1;
            let row = rt
                .block_on(site.set(&admin, SiteConfigKey::Motd, value(i)))
                .unwrap();
            black_box(row)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw tokio-postgres set (same statement)", |b| {
        b.iter(|| {
            i += 1;
            let json = serde_json::to_string(&raw_value(i)).unwrap();
            let now = 1_700_000_000_000i64;
            let row = rt
                .block_on(raw.query_one(
                    &put,
                    &[
                        &"benchSite",
                        &"motd",
                        &json,
                        &Some("ada"),
                        &now,
                        &None::<i64>,
                        &false,
                        &1i32,
                    ],
                ))
                .unwrap();
            let updated_at: Option<i64> = row.get(7);
            black_box(updated_at.unwrap())
        })
    });
    // What the statement's extras cost (the previous row for hooks, the
    // row lock for the check, the change notification): a bare upsert.
    let bare = rt
        .block_on(raw.prepare(
            "INSERT INTO kv_rows AS r (tbl, key, value, created_at, updated_at, updated_by) \
             VALUES ($1::text, $2::text, $3::text::jsonb, $4::bigint, $4::bigint, $5::text) \
             ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value, \
             updated_at = GREATEST(EXCLUDED.updated_at, r.updated_at + 1), deleted_at = NULL, \
             updated_by = EXCLUDED.updated_by RETURNING r.updated_at",
        ))
        .unwrap();
    let mut i = 0u64;
    g.bench_function("raw bare upsert (no previous row, no notify)", |b| {
        b.iter(|| {
            i += 1;
            let json = serde_json::to_string(&raw_value(i)).unwrap();
            let now = 1_700_000_000_000i64;
            let row = rt
                .block_on(raw.query_one(&bare, &[&"benchSite", &"motd", &json, &now, &"ada"]))
                .unwrap();
            black_box(row.get::<_, i64>(0))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("postgres/set_expecting");
    let mut current = rt
        .block_on(site.get(SiteConfigKey::Motd))
        .unwrap()
        .map_or(first.updated_at, |r| r.updated_at);
    let mut i = 0u64;
    g.bench_function("kv typed set_expecting", |b| {
        b.iter(|| {
            i += 1;
            let row = rt
                .block_on(site.set_expecting(&admin, SiteConfigKey::Motd, value(i), current))
                .unwrap();
            current = row.updated_at;
            black_box(row)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw tokio-postgres set_expecting (same statement)", |b| {
        b.iter(|| {
            i += 1;
            let json = serde_json::to_string(&raw_value(i)).unwrap();
            let now = 1_700_000_000_000i64;
            let row = rt
                .block_on(raw.query_one(
                    &put,
                    &[
                        &"benchSite",
                        &"motd",
                        &json,
                        &Some("ada"),
                        &now,
                        &Some(current),
                        &false,
                        &1i32,
                    ],
                ))
                .unwrap();
            let updated_at: Option<i64> = row.get(7);
            current = updated_at.expect("the expectation holds");
            black_box(current)
        })
    });
    g.finish();

    list_pages::<Items1k>(c, rt, &store, &raw, &list_after, &admin, "1k");
    list_pages::<Items100k>(c, rt, &store, &raw, &list_after, &admin, "100k");
}

/// The second page of 100 rows (a cursor page, as most pages are).
fn list_pages<S: kv_runtime::KvSchema>(
    c: &mut Criterion,
    rt: &Runtime,
    store: &Store,
    raw: &Client,
    list_after: &tokio_postgres::Statement,
    admin: &Ctx,
    label: &str,
) {
    let table = store.table::<S>();
    let first = rt
        .block_on(table.list(admin, PageRequest::first(100)))
        .unwrap();
    let cursor = first.continue_cursor.expect("more than 100 rows");
    let after = first
        .page
        .last()
        .map(|r| r.key.as_str().to_owned())
        .unwrap();

    let mut g = c.benchmark_group(format!("postgres/list100 of {label} rows"));
    g.bench_function("kv typed list page", |b| {
        b.iter(|| {
            let page = rt
                .block_on(table.list(admin, PageRequest::after(cursor.clone(), 100)))
                .unwrap();
            assert_eq!(page.page.len(), 100);
            black_box(page)
        })
    });
    g.bench_function("raw tokio-postgres page + decode", |b| {
        b.iter(|| {
            // The same statement kv runs: one row more than the page, to
            // know whether another page follows.
            let rows = rt
                .block_on(raw.query(list_after, &[&S::TABLE, &after.as_str(), &101i64]))
                .unwrap();
            let page: Vec<(String, RawValue, i64)> = rows
                .iter()
                .take(100)
                .map(|r| {
                    (
                        r.get::<_, String>(0),
                        serde_json::from_str(r.get::<_, &str>(1)).unwrap(),
                        r.get::<_, i64>(3),
                    )
                })
                .collect();
            assert_eq!(page.len(), 100);
            black_box((page, rows.len() > 100))
        })
    });
    g.finish();
}
