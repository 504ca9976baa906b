//! The rate limit holds across processes: two OS processes writing as the
//! same user to one PostgreSQL database share one sliding-window budget.
//!
//! The table allows 5 writes per 10 s. Each phase runs processes at one
//! instant of a [`ManualClock`] (the time is handed to each worker), each
//! trying several writes:
//!
//! 1. one process at T tries 3: all admitted;
//! 2. two processes at T+5 s try 5 each: exactly 2 admitted between them;
//! 3. two processes at T+10 s try 5 each: the 3 writes of T have left the
//!    window, the 2 of T+5 s have not: exactly 3 admitted (a fixed window
//!    would admit 5 here);
//! 4. two processes at T+15 s try 5 each: exactly 2 more (the writes of
//!    T+5 s have left).
//!
//! Workers are this test binary run again (`--exact rate_limit_worker`)
//! with `KV_PG_RATE_URL` set; without it that test does nothing.

mod support;

use std::process::{Command, Stdio};

use kv_runtime::{Ctx, ErrorCode, Kv, ManualClock, Store};
use serde::{Deserialize, Serialize};
use support::pg;

const WORKER_URL: &str = "KV_PG_RATE_URL";
const WORKER_NOW: &str = "KV_PG_RATE_NOW_MS";
const WORKER_TRIES: &str = "KV_PG_RATE_TRIES";
const T: i64 = 1_800_000_000_000;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pgLimited", write_role = public, rate_limit(max = 5, window = "10s"))]
struct Limited {
    n: u32,
}

/// Runs `processes` workers at `now`, each trying `tries` writes, and returns
/// how many writes were admitted in total.
fn phase(db: &str, processes: usize, now: i64, tries: u32) -> u32 {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let children: Vec<_> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "rate_limit_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(WORKER_URL, db)
                .env(WORKER_NOW, now.to_string())
                .env(WORKER_TRIES, tries.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the test binary can run itself")
        })
        .collect();
    let mut admitted = 0;
    for child in children {
        let out = child.wait_with_output().expect("the worker finishes");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "worker failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split("admitted ").nth(1))
            .unwrap_or_else(|| panic!("the worker reports its count:\n{stdout}"));
        admitted += line.trim().parse::<u32>().expect("a count");
    }
    admitted
}

#[test]
fn processes_share_one_sliding_window() {
    let Some(url) = pg::server_url() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(async {
        let db = pg::fresh_database(&url).await;
        // Create the schema once before the workers race to open it.
        Store::open(&db).await.expect("the database opens");
        db
    });
    assert_eq!(
        phase(&db, 1, T, 3),
        3,
        "phase 1: a fresh budget admits 3 of 5"
    );
    assert_eq!(
        phase(&db, 2, T + 5_000, 5),
        2,
        "phase 2: 2 slots left between both processes"
    );
    assert_eq!(
        phase(&db, 2, T + 10_000, 5),
        3,
        "phase 3: the window slid past T's 3 writes"
    );
    assert_eq!(
        phase(&db, 2, T + 15_000, 5),
        2,
        "phase 4: the window slid past T+5s"
    );
}

/// One worker: at the handed-in instant, try `tries` writes as user
/// `shared`; every refusal must be RATE_LIMITED.
#[test]
fn rate_limit_worker() {
    let Ok(db) = std::env::var(WORKER_URL) else {
        return;
    };
    let now: i64 = std::env::var(WORKER_NOW).unwrap().parse().unwrap();
    let tries: u32 = std::env::var(WORKER_TRIES).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admitted = runtime.block_on(async {
        let store = Store::open(&db)
            .await
            .unwrap()
            .with_clock(ManualClock::new(now));
        let table = store.table::<Limited>();
        let ctx = Ctx::user("shared");
        let tasks: Vec<_> = (0..tries)
            .map(|n| {
                let table = table.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move { table.set(&ctx, format!("k{n}"), Limited { n }).await })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(e) => assert_eq!(e.code(), ErrorCode::RateLimited, "{e}"),
            }
        }
        admitted
    });
    println!("admitted {admitted}");
}
