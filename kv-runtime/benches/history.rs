//! What a history record adds to a typed `set`: the same `set` on two
//! tables of the same shape in the same store, one declared with
//! `history(keep = 100)` and one without, in the same process, on SQLite
//! (both durabilities) and PostgreSQL.
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
