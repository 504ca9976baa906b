//! How stale a replica is across processes on PostgreSQL: the time from a
//! write in process A to its arrival in process B's replica, as p50, p99
//! and max over 1000 writes (after 20 warm-up writes), one every 3 ms.
//! Beside it, in the same run, the raw floor: a bare `pg_notify` from a
//! tokio-postgres client in A to a tokio-postgres connection LISTENing in
//! B, timed the same way.
//!
//! Needs a server: `KV_TEST_POSTGRES_URL=postgres://... cargo bench -p
//! kv-runtime --features postgres --bench replica_postgres` (it creates and
//! uses a database `kv_bench_replica_<pid>`, dropped at the end). Without
//! the variable it prints a skip line and measures nothing. Run without
//! `--bench` (`cargo test --benches`), it makes a few writes only, as a
//! smoke test.
//!
//! This process is B: it holds the replica (or the raw LISTEN connection)
//! and a thread that polls it every ~50 us. Process A is this bench binary
//! run again as the writer (`replica_postgres writer MODE DB WRITES`),
//! printing for each write the time just before it and the time it was
//! acknowledged. Both processes read the same system clock, so the times
//! compare.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kv_runtime::{Ctx, Kv, Store, Table};
use serde::{Deserialize, Serialize};
use support::{connect, with_database};
use tokio_postgres::{AsyncMessage, NoTls};

const WARM_UP: u64 = 20;
const WRITES: u64 = 1000;
/// Writes when run as a smoke test (without `--bench`).
const SMOKE_WRITES: u64 = 10;
const PAUSE: Duration = Duration::from_millis(3);
const POLL: Duration = Duration::from_micros(50);
/// The raw baseline's channel (the backend's is `kv_changes`).
const RAW_CHANNEL: &str = "kv_bench_raw";

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchLatency", keys = [probe])]
struct Probe {
    text: String,
    n: u64,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, mode, db, writes] = args.as_slice() {
        if role == "writer" {
            writer(mode, db, writes.parse().expect("WRITES is a number"));
            return;
        }
    }
    let Ok(url) = std::env::var("KV_TEST_POSTGRES_URL") else {
        eprintln!(
            "replica_postgres bench: SKIPPED, KV_TEST_POSTGRES_URL is not set; nothing \
             measured. Start a server (scripts/test.sh shows how) and set it."
        );
        return;
    };
    let writes = if args.iter().any(|a| a == "--bench") {
        WRITES
    } else {
        SMOKE_WRITES
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let name = format!("kv_bench_replica_{}", std::process::id());
    let admin = runtime.block_on(connect(&url));
    runtime
        .block_on(admin.batch_execute(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        )))
        .expect("the bench database can be created");
    let db = with_database(&url, &name);

    let (kv, resyncs) = kv_replica(&runtime, &db, writes);
    let raw = raw_listen(&runtime, &db, writes);

    runtime
        .block_on(admin.batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")))
        .expect("the bench database can be dropped");

    println!(
        "replica_postgres: from a write in process A to its arrival in process B, \
         {writes} writes (after {WARM_UP} warm-up), one every {PAUSE:?}; ms"
    );
    println!("{:<56} {:>6} {:>6} {:>6}", "", "p50", "p99", "max");
    kv.print("kv:  set in A -> Replica::get in B");
    raw.print("raw: pg_notify in A -> LISTEN in B");
    println!("replica resyncs during the run: {resyncs}");
}

/// Process B with a replica of `Probe`; returns the latencies and the
/// replica's resync count.
fn kv_replica(runtime: &tokio::runtime::Runtime, db: &str, writes: u64) -> (Latencies, u64) {
    let store = runtime.block_on(Store::open(db)).expect("the store opens");
    let replica = runtime
        .block_on(store.table::<Probe>().replica())
        .expect("the replica loads");
    let latest = {
        let replica = replica.clone();
        move || replica.get(&ProbeKey::Probe).map_or(0, |row| row.value.n)
    };
    let latencies = measure("kv", db, writes, latest);
    (latencies, replica.status().resyncs)
}

/// Process B with a raw connection LISTENing on [`RAW_CHANNEL`].
fn raw_listen(runtime: &tokio::runtime::Runtime, db: &str, writes: u64) -> Latencies {
    let latest = Arc::new(AtomicU64::new(0));
    let client = runtime.block_on(async {
        let (client, mut connection) = tokio_postgres::connect(db, NoTls)
            .await
            .expect("the bench server is reachable");
        let latest = Arc::clone(&latest);
        tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                if let Ok(AsyncMessage::Notification(n)) = message {
                    let n: u64 = n.payload().parse().expect("the payload is a number");
                    latest.fetch_max(n, Ordering::Relaxed);
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {RAW_CHANNEL}"))
            .await
            .expect("LISTEN works");
        client
    });
    let latencies = measure("raw", db, writes, move || latest.load(Ordering::Relaxed));
    drop(client);
    latencies
}

/// Runs the writer `mode` in another process while a thread here polls
/// `latest` (the highest write number visible in this process), and
/// returns the delays from the writer's times to the first poll that saw
/// each write.
fn measure(
    mode: &str,
    db: &str,
    writes: u64,
    latest: impl Fn() -> u64 + Send + 'static,
) -> Latencies {
    let total = WARM_UP + writes;
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen: HashMap<u64, i64> = HashMap::new();
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) && last < total {
                let n = latest();
                if n > last {
                    let at = now_us();
                    // Writes a batch skipped arrived at the same time.
                    for k in last + 1..=n {
                        seen.insert(k, at);
                    }
                    last = n;
                }
                std::thread::sleep(POLL);
            }
            seen
        })
    };

    let exe = std::env::current_exe().expect("the bench knows its path");
    let mut child = Command::new(exe)
        .args(["writer", mode, db, &writes.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the writer process starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut written: HashMap<u64, (i64, i64)> = HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("the writer's output is text");
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["w", n, issued, acked] => {
                let n = n.parse().expect("a write number");
                written.insert(n, (issued.parse().unwrap(), acked.parse().unwrap()));
            }
            ["done"] => break,
            other => panic!("unexpected line from the writer: {other:?}"),
        }
    }
    let status = child.wait().expect("the writer is reaped");
    assert!(status.success(), "the writer failed: {status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !poller.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().expect("the poller does not panic");

    let mut from_issue = Vec::new();
    let mut from_ack = Vec::new();
    for n in WARM_UP + 1..=total {
        let (issued, acked) = written[&n];
        let arrived = *seen
            .get(&n)
            .unwrap_or_else(|| panic!("{mode}: write {n} never arrived"));
        from_issue.push(arrived - issued);
        from_ack.push(arrived - acked);
    }
    from_issue.sort_unstable();
    from_ack.sort_unstable();
    Latencies {
        from_issue,
        from_ack,
    }
}

/// Delays in microseconds, sorted.
struct Latencies {
    from_issue: Vec<i64>,
    from_ack: Vec<i64>,
}

impl Latencies {
    fn print(&self, what: &str) {
        for (from, delays) in [
            ("issued", &self.from_issue),
            ("acknowledged", &self.from_ack),
        ] {
            println!(
                "{:<56} {:>6.2} {:>6.2} {:>6.2}",
                format!("{what}, from {from}"),
                percentile(delays, 0.5),
                percentile(delays, 0.99),
                percentile(delays, 1.0),
            );
        }
    }
}

/// The `p` quantile (nearest rank) of sorted microseconds, in milliseconds.
fn percentile(sorted: &[i64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What process A writes with.
enum Writer {
    /// A typed `set` of the `Probe` row.
    Kv(Table<Probe>),
    /// A bare `pg_notify` on [`RAW_CHANNEL`], prepared once.
    Raw(tokio_postgres::Client, tokio_postgres::Statement),
}

impl Writer {
    async fn open(mode: &str, db: &str) -> Writer {
        match mode {
            "kv" => {
                let store = Store::open(db).await.expect("the store opens");
                Writer::Kv(store.table::<Probe>())
            }
            "raw" => {
                let client = connect(db).await;
                let notify = client
                    .prepare(&format!("SELECT pg_notify('{RAW_CHANNEL}', $1::text)"))
                    .await
                    .expect("the statement prepares");
                Writer::Raw(client, notify)
            }
            other => panic!("unknown writer mode {other:?}"),
        }
    }

    /// Write number `n`; returns once it is acknowledged.
    async fn write(&self, n: u64) {
        match self {
            Writer::Kv(t) => {
                let probe = Probe {
                    text: "latency".to_owned(),
                    n,
                };
                t.set(&Ctx::internal(), ProbeKey::Probe, probe)
                    .await
                    .expect("set succeeds");
            }
            Writer::Raw(client, notify) => {
                client
                    .query(notify, &[&n.to_string()])
                    .await
                    .expect("pg_notify succeeds");
            }
        }
    }
}

/// Process A: `WARM_UP + writes` writes, one every [`PAUSE`], each
/// reported as `w N ISSUED_US ACKED_US`; then `done`.
fn writer(mode: &str, db: &str, writes: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let writer = Writer::open(mode, db).await;
        for n in 1..=WARM_UP + writes {
            let issued = now_us();
            writer.write(n).await;
            let acked = now_us();
            println!("w {n} {issued} {acked}");
            tokio::time::sleep(PAUSE).await;
        }
        println!("done");
    });
}
