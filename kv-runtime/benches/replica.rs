//! Replica reads beside a raw `ArcSwap<HashMap<String, Arc<T>>>` lookup, in
//! the same run: on one thread, and with a second thread reading the same
//! row at the same time (both cores). Also the cost of following a change:
//! from `set` returning to the row showing in the replica, for tables of 4,
//! 1 000, 10 000 and 100 000 rows; the follower thread's CPU time per
//! change at those sizes; and the replica's memory beside the rows it
//! holds (a counting allocator; it adds one atomic add per allocation to
//! both sides of every line).
//!
//! `cargo bench -p kv-runtime --bench replica`
//!
//! The CPU and memory figures are printed (`replica/cpu` and
//! `replica/memory` lines), not measured by criterion.
//!
//! The time from a write in one process to its arrival in another
//! process's replica over PostgreSQL is measured by the bench
//! `replica_postgres` (it needs a server; see there).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, Criterion};
use kv_runtime::{Ctx, Kv, Replica, Row, Store, Table};
use serde::{Deserialize, Serialize};

/// Counts the bytes allocated and not yet freed, for the memory figures.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Waits until no thread allocates or frees for a while (tasks of earlier
/// cases finishing their drops), then returns the live bytes.
fn settled_bytes() -> isize {
    let mut last = live_bytes();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = live_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance, motd, footer], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// A free-keyed table, for the large cases.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin)]
struct Flag {
    on: bool,
    rollout: u8,
}

/// A free-keyed table of rows the size of a short configuration value, for
/// the memory figures beside the tiny [`Flag`].
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin)]
struct Setting {
    enabled: bool,
    message: String,
}

fn flag(n: u32) -> Flag {
    Flag {
        on: n.is_multiple_of(2),
        rollout: (n % 100) as u8,
    }
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
    // The same map with the replica's hasher (foldhash), to show how much
    // of a difference is the hash function.
    type FoldMap = HashMap<String, Arc<Row<SiteConfig>>, foldhash::fast::RandomState>;
    let raw_fold: Arc<ArcSwap<FoldMap>> = Arc::new(ArcSwap::from_pointee(
        raw.load()
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect(),
    ));

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
        let m = Arc::clone(&raw_fold);
        g.bench_function("raw ArcSwap<HashMap<String, Arc<T>, foldhash>> get", |b| {
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

/// `get` of one row in a 100 000-row replica beside the raw map of the same
/// rows: the lookup walks the trie's levels there.
fn reads_large(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let (_flags, replica) = flags(runtime, 100_000);
    let raw: Arc<ArcSwap<HashMap<String, Arc<Row<Flag>>>>> = Arc::new(ArcSwap::from_pointee(
        replica
            .rows()
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect(),
    ));
    let keys: Arc<Vec<String>> =
        Arc::new((0..4096).map(|n| format!("flag-{:06}", n * 24)).collect());
    let mut g = c.benchmark_group("replica/get, 100000 rows, 4096 keys in turn");
    let (r, k) = (replica.clone(), Arc::clone(&keys));
    g.bench_function("kv Replica::get_str", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(r.get_str(black_box(&k[i])))
        })
    });
    let (m, k) = (Arc::clone(&raw), Arc::clone(&keys));
    g.bench_function("raw ArcSwap<HashMap<String, Arc<T>>> get", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(m.load().get(black_box(k[i].as_str())).cloned())
        })
    });
    g.finish();
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

/// A store whose [`Flag`] table holds `rows` rows `flag-000000`, ..., and a
/// replica of it.
fn flags(runtime: &tokio::runtime::Runtime, rows: u32) -> (Table<Flag>, Replica<Flag>) {
    let store = Store::memory();
    let flags = store.table::<Flag>();
    runtime.block_on(async {
        for n in 0..rows {
            flags
                .set(&Ctx::internal(), format!("flag-{n:06}"), flag(n))
                .await
                .unwrap();
        }
    });
    let replica = runtime.block_on(flags.replica()).unwrap();
    assert_eq!(replica.len(), rows as usize);
    (flags, replica)
}

/// CPU time of the calling thread: (user, system).
fn thread_cpu() -> (Duration, Duration) {
    // SAFETY: an all-zero rusage is valid, and the pointer is to it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    (time(usage.ru_utime), time(usage.ru_stime))
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
    let mut cpu = Vec::new();
    for rows in [1_000u32, 10_000, 100_000] {
        let (flags, replica) = flags(runtime, rows);
        let key = format!("flag-{:06}", rows / 2);
        let mut n = 0u8;
        g.bench_function(
            format!("{rows} rows: set, until visible in the replica"),
            |b| {
                b.iter(|| {
                    n = n.wrapping_add(1);
                    let flag = Flag {
                        on: true,
                        rollout: n % 100,
                    };
                    set_until_visible(runtime, &flags, &replica, &key, flag);
                })
            },
        );
        // The follower task runs on the runtime's only worker: its CPU
        // time over many changes, each waited for.
        let worker_cpu = || {
            runtime
                .block_on(runtime.spawn(async { thread_cpu() }))
                .unwrap()
        };
        let changes = 20_000u32;
        let before = worker_cpu();
        for c in 0..changes {
            let flag = Flag {
                on: c % 2 == 0,
                rollout: (c % 100) as u8,
            };
            set_until_visible(runtime, &flags, &replica, &key, flag);
        }
        let after = worker_cpu();
        let user = (after.0 - before.0) / changes;
        let system = (after.1 - before.1) / changes;
        cpu.push((rows, user, system));
        drop((flags, replica));
    }
    g.finish();
    for (rows, user, system) in cpu {
        println!(
            "replica/cpu: {rows} rows: follower thread per change: user {user:?}, system \
             {system:?} (parking and waking)"
        );
    }
}

/// Bytes the replica of a `rows`-row table holds (its map, its rows, the
/// follower's per-key state), beside the rows alone (`Vec<Arc<Row>>` of
/// copies) and a raw `HashMap<String, Arc<Row>>` of them.
fn memory<S, F>(runtime: &tokio::runtime::Runtime, name: &str, rows: u32, make: F)
where
    S: kv_runtime::KvSchema<Key = String>,
    F: Fn(u32) -> S,
{
    let store = Store::memory();
    let table = store.table::<S>();
    runtime.block_on(async {
        for n in 0..rows {
            table
                .set(&Ctx::internal(), format!("key-{n:06}"), make(n))
                .await
                .unwrap();
        }
    });
    let before = settled_bytes();
    let replica = runtime.block_on(table.replica()).unwrap();
    let replica_bytes = settled_bytes() - before;
    let held = replica.rows();
    let before = live_bytes();
    let copies: Vec<Arc<Row<S>>> = held.iter().map(|r| Arc::new(Row::clone(r))).collect();
    let row_bytes = live_bytes() - before;
    let before = live_bytes();
    let raw: HashMap<String, Arc<Row<S>>> = held
        .iter()
        .map(|r| (r.key.clone(), Arc::clone(r)))
        .collect();
    let raw_map_bytes = live_bytes() - before;
    println!(
        "replica/memory: {name}, {rows} rows: replica {} B ({:.0} B/row), the rows alone {} B \
         ({:.0} B/row): {:.2}x; a raw HashMap<String, Arc<Row>> over them adds {} B ({:.0} B/row): \
         {:.2}x",
        replica_bytes,
        replica_bytes as f64 / f64::from(rows),
        row_bytes,
        row_bytes as f64 / f64::from(rows),
        replica_bytes as f64 / row_bytes as f64,
        raw_map_bytes,
        raw_map_bytes as f64 / f64::from(rows),
        (row_bytes + raw_map_bytes) as f64 / row_bytes as f64,
    );
    drop((raw, copies, held, replica));
}

fn bench(c: &mut Criterion) {
    // One worker runs the replicas' follower tasks; the bench threads read.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    reads(c, &runtime);
    reads_large(c, &runtime);
    follow(c, &runtime);
    for rows in [1_000, 100_000] {
        memory(&runtime, "Flag { on: bool, rollout: u8 }", rows, flag);
        memory(
            &runtime,
            "Setting { enabled: bool, message: 40 chars }",
            rows,
            |n| Setting {
                enabled: n % 2 == 0,
                message: format!("Maintenance window at 22:00 UTC {n:08}"),
            },
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
