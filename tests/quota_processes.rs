//! A quota across operating-system processes, on SQLite and PostgreSQL:
//! 10 uses per minute, consumed by two processes at once, admits exactly
//! 10 in any window.
//!
//! Each phase runs two `kv-test-worker quota` processes at one instant of a
//! [`ManualClock`](kv_runtime::ManualClock) (the time is handed to each),
//! each trying several consumes:
//!
//! | phase | at | tries | admitted | why |
//! |---|---|---|---|---|
//! | 1 | T | 2 x 3 | 6 | a fresh budget |
//! | 2 | T+20 s | 2 x 5 | 4 | 10 in the window |
//! | 3 | T+40 s | 2 x 5 | 0 | still 10 |
//! | 4 | T+60 s | 2 x 5 | 6 | T's 6 have left |
//! | 5 | T+80 s | 2 x 5 | 4 | T+20 s's 4 have left |
//! | 6 | T+80 s | 2 x 5 | 0 | full again |
//!
//! A fixed window would admit 10 at T+60 s; a count kept per process would
//! admit 20 anywhere.

mod support;

use kv_runtime::{Quota, Store};
use support::tables::TenPerMinute;
use support::tempdir::TempDir;
use support::{pg, process, sqlite};

const T: i64 = 1_800_000_000_000;

/// Two workers at `now`, each trying `tries` consumes: the total admitted.
fn phase(url: &str, now: i64, tries: u32) -> u32 {
    let (now, tries) = (now.to_string(), tries.to_string());
    let children: Vec<_> = (0..2)
        .map(|_| process::spawn("quota", &[url, &now, &tries]))
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

fn run_scenario(url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        drop(Store::open(url).await.expect("the store opens"));
    });
    assert_eq!(phase(url, T, 3), 6, "phase 1");
    assert_eq!(phase(url, T + 20_000, 5), 4, "phase 2");
    assert_eq!(phase(url, T + 40_000, 5), 0, "phase 3");
    assert_eq!(phase(url, T + 60_000, 5), 6, "phase 4: the window slid");
    assert_eq!(phase(url, T + 80_000, 5), 4, "phase 5");
    assert_eq!(phase(url, T + 80_000, 5), 0, "phase 6");
    // What the processes counted, as any of them sees it.
    runtime.block_on(async {
        let store = Store::open(url)
            .await
            .unwrap()
            .with_clock(kv_runtime::ManualClock::new(T + 80_000));
        let quota: Quota<TenPerMinute> = store.quota();
        let state = quota.check("shared").await.unwrap();
        assert_eq!((state.used, state.remaining), (10, 0));
        // The next slot frees when T+60 s's uses leave.
        assert_eq!(state.retry_after, Some(std::time::Duration::from_secs(40)));
    });
}

#[test]
fn sqlite_processes_share_one_quota() {
    let dir = TempDir::new("sqlite-quota-processes");
    run_scenario(&sqlite::url(&dir.join("kv.db")));
}

#[test]
fn postgres_processes_share_one_quota() {
    let Some(url) = pg::server_url() else { return };
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(pg::fresh_database(&url));
    run_scenario(&db);
}
