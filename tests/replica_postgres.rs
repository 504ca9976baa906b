//! How stale a replica is across processes on PostgreSQL: the time from a
//! write committed by process A to its arrival in process B's replica,
//! p50 and p99 over 1000 writes. A measurement, not a check: it is ignored
//! by default and asserts nothing about speed. Run it with
//!
//! `scripts/test.sh --test replica_postgres -- --ignored --nocapture`
//!
//! This process is B: it holds the replica and a thread that polls it
//! (every ~50 us). Process A is this test binary run again (the re-exec
//! trick) as the writer: one write every 3 ms, printing for each the time
//! just before the write and the time it was acknowledged (both processes
//! read the same system clock, so the times compare).

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kv_runtime::Store;
use support::pg;
use support::process::{child_lines, spawn_child, wait_child, LINE};
use support::tables::*;
use support::wait::BOUND;

const WRITER_ENV: &str = "KV_REPLICA_PG_LATENCY_DB";
const WRITES: u64 = 1000;
const WARM_UP: u64 = 20;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Process A of [`replica_latency_across_processes`].
#[test]
fn latency_writer() {
    let Ok(db) = std::env::var(WRITER_ENV) else {
        return; // not a child process: nothing to do
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        let t = store.table::<Banner>();
        for n in 1..=WARM_UP + WRITES {
            let issued = now_us();
            t.set(&admin(), BannerKey::Banner, banner("latency", n))
                .await
                .unwrap();
            let acked = now_us();
            println!("{LINE}w {n} {issued} {acked}");
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        println!("{LINE}done");
    });
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[test]
#[ignore = "a measurement for BENCHMARKS.md; needs KV_TEST_POSTGRES_URL"]
fn replica_latency_across_processes() {
    let Some(url) = pg::server_url() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(pg::fresh_database(&url));
    let store = runtime.block_on(Store::open(&db)).unwrap();
    let replica = runtime.block_on(store.table::<Banner>().replica()).unwrap();

    // The poller: when each write (by its n) first shows in the replica.
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let replica = replica.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen: HashMap<u64, i64> = HashMap::new();
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) && last < WARM_UP + WRITES {
                if let Some(row) = replica.get(&BannerKey::Banner) {
                    let n = row.value.n;
                    if n > last {
                        let at = now_us();
                        // Writes a batch skipped arrived at the same time.
                        for k in last + 1..=n {
                            seen.insert(k, at);
                        }
                        last = n;
                    }
                }
                std::thread::sleep(Duration::from_micros(50));
            }
            seen
        })
    };

    let mut child = spawn_child("latency_writer", &[(WRITER_ENV, db.as_str())]);
    let lines = child_lines(&mut child);
    let mut written: HashMap<u64, (i64, i64)> = HashMap::new();
    loop {
        let line = lines
            .recv_timeout(BOUND)
            .expect("the writer reports within the bound");
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["w", n, issued, acked] => {
                written.insert(
                    n.parse().unwrap(),
                    (issued.parse().unwrap(), acked.parse().unwrap()),
                );
            }
            ["done"] => break,
            other => panic!("unexpected line from the writer: {other:?}"),
        }
    }
    wait_child(child);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let seen = poller.join().unwrap();

    let mut from_issue = Vec::new();
    let mut from_ack = Vec::new();
    for n in WARM_UP + 1..=WARM_UP + WRITES {
        let (issued, acked) = written[&n];
        let arrived = *seen
            .get(&n)
            .unwrap_or_else(|| panic!("write {n} never reached the replica"));
        from_issue.push(arrived - issued);
        from_ack.push(arrived - acked);
    }
    from_issue.sort_unstable();
    from_ack.sort_unstable();
    let status = replica.status();
    println!(
        "replica latency across processes over {WRITES} writes (ms): \
         write issued -> visible: p50 {:.2}, p99 {:.2}, max {:.2}; \
         write acknowledged -> visible: p50 {:.2}, p99 {:.2}, max {:.2}; resyncs {}",
        percentile(&from_issue, 0.5),
        percentile(&from_issue, 0.99),
        percentile(&from_issue, 1.0),
        percentile(&from_ack, 0.5),
        percentile(&from_ack, 0.99),
        percentile(&from_ack, 1.0),
        status.resyncs,
    );
}
