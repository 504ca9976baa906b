//! What the `metrics` feature costs on the read paths meant for every
//! request: the memory backend's `get` and `Replica::get`, with no recorder
//! installed and with the Prometheus recorder (`metrics-exporter-prometheus`)
//! counting, beside the raw baselines of the `memory` and `replica` benches,
//! in the same run.
//!
//! `cargo bench -p kv-runtime --features metrics --bench metrics`
//!
//! For the build without the feature, compare with
//! `cargo bench -p kv-runtime --bench memory --bench replica`.

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::{Ctx, Kv, Row, Store};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = Store::memory();
    let table = store.table::<SiteConfig>();
    let admin = Ctx::user("ada").with_role("admin");
    let raw: RwLock<HashMap<String, SiteConfig>> = RwLock::new(HashMap::new());
    let mut rows = HashMap::new();
    for (i, k) in SiteConfigKey::ALL.iter().enumerate() {
        let row = ready(table.set(&admin, k, value(i as u64))).unwrap();
        raw.write()
            .unwrap()
            .insert(k.as_str().to_owned(), value(i as u64));
        rows.insert(k.as_str().to_owned(), Arc::new(row));
    }
    let raw_rows: ArcSwap<HashMap<String, Arc<Row<SiteConfig>>>> = ArcSwap::from_pointee(rows);
    let replica = runtime.block_on(table.replica()).unwrap();
    // The recorder an app installs to serve /metrics. Installed (globally,
    // as an app does) between the cases without and with it.
    let prometheus = PrometheusBuilder::new().build_recorder();
    let handle = prometheus.handle();
    let mut prometheus = Some(prometheus);
    let mut install = move || {
        if let Some(recorder) = prometheus.take() {
            metrics::set_global_recorder(recorder).expect("no recorder before this one");
        }
    };

    // One group, so that criterion reports every case in one table.
    let mut g = c.benchmark_group("metrics/read");
    g.bench_function("kv typed get, no recorder", |b| {
        b.iter(|| black_box(ready(table.get(black_box(SiteConfigKey::Motd))).unwrap()))
    });
    g.bench_function("kv Replica::get, no recorder", |b| {
        b.iter(|| black_box(replica.get(black_box(&SiteConfigKey::Motd))))
    });
    g.bench_function("raw RwLock<HashMap> get+clone", |b| {
        b.iter(|| black_box(raw.read().unwrap().get(black_box("motd")).cloned()))
    });
    g.bench_function("raw ArcSwap<HashMap<String, Arc<T>>> get", |b| {
        b.iter(|| black_box(raw_rows.load().get(black_box("motd")).cloned()))
    });
    install();
    g.bench_function("kv typed get, Prometheus recorder", |b| {
        b.iter(|| black_box(ready(table.get(black_box(SiteConfigKey::Motd))).unwrap()))
    });
    g.bench_function("kv Replica::get, Prometheus recorder", |b| {
        b.iter(|| black_box(replica.get(black_box(&SiteConfigKey::Motd))))
    });
    // A local recorder (as in tests) gets no cached handle: this is what
    // every counted get cost before handles were kept.
    let local = PrometheusBuilder::new().build_recorder();
    g.bench_function("kv typed get, local Prometheus recorder (uncached)", |b| {
        metrics::with_local_recorder(&local, || {
            b.iter(|| black_box(ready(table.get(black_box(SiteConfigKey::Motd))).unwrap()))
        })
    });
    g.finish();

    // The recorder saw the reads: the cases above measured real counting.
    let text = handle.render();
    assert!(
        text.contains("kv_operations_total{table=\"siteConfig\",op=\"get\",outcome=\"ok\"}"),
        "the Prometheus recorder did not count the gets:\n{text}"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
