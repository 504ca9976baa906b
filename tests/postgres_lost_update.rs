//! No lost update across processes: two OS processes, four tasks each, each
//! task doing 250 conflict-checked increments of one counter row on one
//! PostgreSQL database (read, `set_expecting` with the row's `updated_at`,
//! retry on CONFLICT). The counter must end at exactly the number of
//! successful sets, and every failed set must be a CONFLICT.
//!
//! The workers are this test binary run again (`--exact
//! lost_update_worker`) with `KV_PG_WORKER_URL` set; without it that test
//! does nothing.

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use support::pg;

const PROCESSES: usize = 2;
const TASKS: usize = 4;
const INCREMENTS: u64 = 250;
const WORKER_URL: &str = "KV_PG_WORKER_URL";
const WORKER_START: &str = "KV_PG_WORKER_START_MS";

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pgCounter", keys = [hits])]
struct Counter {
    n: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn no_lost_update_across_processes() {
    let Some(url) = pg::server_url() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(async {
        let db = pg::fresh_database(&url).await;
        let store = Store::open(&db).await.unwrap();
        store
            .table::<Counter>()
            .set(&Ctx::internal(), CounterKey::Hits, Counter { n: 0 })
            .await
            .unwrap();
        db
    });

    let exe = std::env::current_exe().unwrap();
    // Both workers start their increments at the same moment, once their
    // stores are open.
    let start = now_ms() + 2_000;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "lost_update_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_URL, &db)
                .env(WORKER_START, start.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the test binary can run itself")
        })
        .collect();

    let mut successes = 0u64;
    let mut conflicts = 0u64;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "worker failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("WORKER RESULT ").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("worker printed no result:\n{stdout}\n{stderr}"));
        let mut fields = line
            .split_whitespace()
            .map(|f| f.split_once('=').unwrap().1.parse::<u64>().unwrap());
        successes += fields.next().unwrap();
        conflicts += fields.next().unwrap();
    }
    eprintln!("{successes} successful increments, {conflicts} conflicts (retried)");
    assert_eq!(successes, PROCESSES as u64 * TASKS as u64 * INCREMENTS);

    let final_n = runtime.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .table::<Counter>()
            .get(CounterKey::Hits)
            .await
            .unwrap()
            .expect("the counter exists")
            .value
            .n
    });
    assert_eq!(final_n, successes, "every successful set is counted once");
}

/// One worker process: `TASKS` tasks doing `INCREMENTS` increments each.
/// Does nothing unless run by `no_lost_update_across_processes`.
#[test]
fn lost_update_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let start: u64 = std::env::var(WORKER_START)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (successes, conflicts) = runtime.block_on(async move {
        let store = Store::open(&format!("{url}?pool_size={TASKS}"))
            .await
            .unwrap();
        let wait = start.saturating_sub(now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let t = store.table::<Counter>();
                tokio::spawn(async move {
                    let ctx = Ctx::internal();
                    let (mut ok, mut conflicts) = (0u64, 0u64);
                    while ok < INCREMENTS {
                        let row = t.get(CounterKey::Hits).await.unwrap().unwrap();
                        let next = Counter { n: row.value.n + 1 };
                        match t
                            .set_expecting(&ctx, CounterKey::Hits, next, row.updated_at)
                            .await
                        {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
                                conflicts += 1;
                            }
                        }
                    }
                    (ok, conflicts)
                })
            })
            .collect();
        let mut totals = (0, 0);
        for task in tasks {
            let (ok, c) = task.await.expect("a worker task does not panic");
            totals.0 += ok;
            totals.1 += c;
        }
        totals
    });
    println!("WORKER RESULT successes={successes} conflicts={conflicts}");
}
