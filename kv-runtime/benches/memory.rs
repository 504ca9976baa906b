//! Typed `get` and `set` on the memory backend, beside a raw
//! `RwLock<HashMap<String, T>>` doing the same work, in the same run; and
//! `get` also beside the same map holding a whole row (the value, three
//! times and the writer), and beside a map of tables of ordered rows
//! shaped like the backend's storage.
//!
//! `cargo bench -p kv-runtime --bench memory`
//!
//! The memory backend never waits, so each future is polled once with a
//! no-op waker: the figures are the cost of the operation, not of an executor.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// A row as a hand-written map would keep it beside its value.
#[derive(Clone)]
#[allow(dead_code)] // Read only by `black_box`.
struct RawRow {
    value: SiteConfig,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    updated_by: Option<Arc<str>>,
}

fn value(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

/// Completes a future that never waits.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the memory backend never waits"),
    }
}

fn bench(c: &mut Criterion) {
    let store = Store::memory();
    let table = store.table::<SiteConfig>();
    let admin = Ctx::user("ada").with_role("admin");
    let raw: RwLock<HashMap<String, SiteConfig>> = RwLock::new(HashMap::new());
    let raw_rows: RwLock<HashMap<String, RawRow>> = RwLock::new(HashMap::new());
    for (i, k) in SiteConfigKey::ALL.iter().enumerate() {
        ready(table.set(&admin, k, value(i as u64))).unwrap();
        raw.write()
            .unwrap()
            .insert(k.as_str().to_owned(), value(i as u64));
        raw_rows.write().unwrap().insert(
            k.as_str().to_owned(),
            RawRow {
                value: value(i as u64),
                created_at: 1,
                updated_at: 2,
                deleted_at: None,
                updated_by: Some(Arc::from("ada")),
            },
        );
    }

    let mut g = c.benchmark_group("memory/get");
    g.bench_function("kv typed get", |b| {
        b.iter(|| {
            let row = ready(table.get(black_box(SiteConfigKey::Motd))).unwrap();
            black_box(row)
        })
    });
    g.bench_function("raw RwLock<HashMap> get+clone", |b| {
        b.iter(|| {
            let v = raw.read().unwrap().get(black_box("motd")).cloned();
            black_box(v)
        })
    });
    // The same map holding what a kv row carries besides its value (the
    // three times and the writer as shared text), cloned the same way: the
    // cost of the answer's size, apart from kv's work to find it.
    g.bench_function("raw RwLock<HashMap> get+clone of a whole row", |b| {
        b.iter(|| {
            let v = raw_rows.read().unwrap().get(black_box("motd")).cloned();
            black_box(v)
        })
    });
    // A map shaped like the memory backend's storage: tables by name
    // (hashed with foldhash, as kv does), each an ordered map of whole
    // rows; what kv's `get` costs beyond it is kv's own path to the row.
    let mut tables: HashMap<String, BTreeMap<String, RawRow>, foldhash::fast::RandomState> =
        HashMap::default();
    for name in ["flags", "siteConfig", "health"] {
        let rows = raw_rows.read().unwrap().clone().into_iter().collect();
        tables.insert(name.to_owned(), rows);
    }
    let tables = RwLock::new(tables);
    g.bench_function(
        "raw RwLock<HashMap<table, BTreeMap>> get+clone of a whole row",
        |b| {
            b.iter(|| {
                let v = tables
                    .read()
                    .unwrap()
                    .get(black_box("siteConfig"))
                    .and_then(|rows| rows.get(black_box("motd")))
                    .cloned();
                black_box(v)
            })
        },
    );
    g.finish();

    let mut g = c.benchmark_group("memory/set");
    let mut i = 0u64;
    g.bench_function("kv typed set", |b| {
        b.iter(|| {
            i += 1;
            let row = ready(table.set(&admin, SiteConfigKey::Motd, value(i))).unwrap();
            black_box(row)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw RwLock<HashMap> insert", |b| {
        b.iter(|| {
            i += 1;
            let old = raw.write().unwrap().insert("motd".to_owned(), value(i));
            black_box(old)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
