//! The rate limit holds across processes: two OS processes writing as the
//! same user to one PostgreSQL database share one sliding-window budget.
//!
//! The table (`Limited`, in `support/tables.rs`) allows 5 writes per 10 s. Each phase runs processes at one
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
//! The processes are the `kv-test-worker` binary (`tests/worker/`), role
//! `rate-limit`, which fails when a refusal is anything but RATE_LIMITED.

mod support;

use kv_runtime::Store;
use support::pg;
use support::process;

const T: i64 = 1_800_000_000_000;

/// Runs `processes` workers at `now`, each trying `tries` writes, and returns
/// how many writes were admitted in total.
fn phase(db: &str, processes: usize, now: i64, tries: u32) -> u32 {
    let (now, tries) = (now.to_string(), tries.to_string());
    let children: Vec<_> = (0..processes)
        .map(|_| process::spawn("rate-limit", &[db, &now, &tries]))
        .collect();
    children
        .into_iter()
        .map(|child| {
            process::reported(&process::finish(child), "admitted")
                .parse::<u32>()
                .expect("a count")
        })
        .sum()
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
