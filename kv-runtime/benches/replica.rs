//! Replica reads beside a raw `ArcSwap<HashMap<String, Arc<T>>>` lookup, in
//! the same run: on one thread, and with a second thread reading the same
//! row at the same time (both cores). Also the cost of following a change:
//! from `set` returning to the row showing in the replica, for a small and a
//! 1000-row table (each batch of changes copies the replica's map).
//!
//! `cargo bench -p kv-runtime --bench replica`
//!
//! The time from a write in one process to its arrival in another
//! process's replica over PostgreSQL is measured by the bench
//! `replica_postgres` (it needs a server; see there).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::{Ctx, Kv, Replica, Row, Store, Table};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// A free-keyed table, for the 1000-row case.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin)]
struct Flag {
    on: bool,
    rollout: u8,
}

fn value(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

/// Times `iters` calls of `read` on this thread; with `contended`, a second
/// thread makes the same calls at the same time.
fn timed<F>(iters: u64, contended: bool, read: F) -> Duration
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    if !contended {
        let start = Instant::now();
        for _ in 0..iters {
            read();
        }
        return start.elapsed();
    }
    let barrier = Arc::new(Barrier::new(2));
    let other = {
        let barrier = Arc::clone(&barrier);
        let read = read.clone();
        thread::spawn(move || {
            barrier.wait();
            for _ in 0..iters {
                read();
            }
        })
    };
    barrier.wait();
    let start = Instant::now();
    for _ in 0..iters {
        read();
    }
    let elapsed = start.elapsed();
    let _ = other.join();
    elapsed
}

fn reads(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let store = Store::memory();
    let table = store.table::<SiteConfig>();
    let admin = Ctx::user("ada").with_role("admin");
    let raw: ArcSwap<HashMap<String, Arc<Row<SiteConfig>>>> = ArcSwap::from_pointee(HashMap::new());
    let replica = runtime.block_on(async {
        let mut map = HashMap::new();
        for (i, k) in SiteConfigKey::ALL.iter().enumerate() {
            let row = table.set(&admin, k, value(i as u64)).await.unwrap();
            map.insert(k.as_str().to_owned(), Arc::new(row));
        }
        raw.store(Arc::new(map));
        table.replica().await.unwrap()
    });
    let raw = Arc::new(raw);

    for (group, contended) in [("replica/get", false), ("replica/get, 2 threads", true)] {
        let mut g = c.benchmark_group(group);
        let r = replica.clone();
        g.bench_function("kv Replica::get", |b| {
            b.iter_custom(|iters| {
                let r = r.clone();
                timed(iters, contended, move || {
                    black_box(r.get(black_box(&SiteConfigKey::Motd)));
                })
            })
        });
        let m = Arc::clone(&raw);
        g.bench_function("raw ArcSwap<HashMap<String, Arc<T>>> get", |b| {
            b.iter_custom(|iters| {
                let m = Arc::clone(&m);
                timed(iters, contended, move || {
                    black_box(m.load().get(black_box("motd")).cloned());
                })
            })
        });
        g.finish();
    }
}

/// `set` on the memory backend, then spin until the replica shows the row.
fn set_until_visible<S: kv_runtime::KvSchema>(
    runtime: &tokio::runtime::Runtime,
    table: &Table<S>,
    replica: &Replica<S>,
    key: &S::Key,
    value: S,
) {
    let admin = Ctx::internal();
    let row = runtime.block_on(table.set(&admin, key, value)).unwrap();
    while replica.get(key).map(|r| r.updated_at) != Some(row.updated_at) {
        std::hint::spin_loop();
    }
}

fn follow(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("replica/follow a change (memory backend)");
    let store = Store::memory();
    let small = store.table::<SiteConfig>();
    let small_replica = runtime.block_on(small.replica()).unwrap();
    let mut i = 0u64;
    g.bench_function("4 rows: set, until visible in the replica", |b| {
        b.iter(|| {
            i += 1;
            set_until_visible(
                runtime,
                &small,
                &small_replica,
                &SiteConfigKey::Motd,
                value(i),
            );
        })
    });
    let flags = store.table::<Flag>();
    runtime.block_on(async {
        for n in 0..1000u32 {
            let flag = Flag {
                on: n % 2 == 0,
                rollout: (n % 100) as u8,
            };
            flags
                .set(&Ctx::internal(), format!("flag-{n:04}"), flag)
                .await
                .unwrap();
        }
    });
    let flags_replica = runtime.block_on(flags.replica()).unwrap();
    assert_eq!(flags_replica.len(), 1000);
    let key = "flag-0500".to_owned();
    let mut n = 0u8;
    g.bench_function("1000 rows: set, until visible in the replica", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let flag = Flag {
                on: true,
                rollout: n % 100,
            };
            set_until_visible(runtime, &flags, &flags_replica, &key, flag);
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    // One worker runs the replicas' follower tasks; the bench threads read.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    reads(c, &runtime);
    follow(c, &runtime);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
