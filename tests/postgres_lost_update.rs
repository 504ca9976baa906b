//! No lost update across processes: two OS processes, four tasks each, each
//! task doing 250 conflict-checked increments of one counter row on one
//! PostgreSQL database (read, `set_expecting` with the row's `updated_at`,
//! retry on CONFLICT). The counter must end at exactly the number of
//! successful sets, and every failed set must be a CONFLICT.
//!
//! The processes are the `kv-test-worker` binary (`tests/worker/`), role
//! `increment`, which fails on any error other than CONFLICT.

mod support;

use std::time::Duration;

use kv_runtime::{Ctx, Store};
use support::pg;
use support::process;
use support::tables::{Counter, CounterKey};

const PROCESSES: usize = 2;
const TASKS: usize = 4;
const INCREMENTS: u64 = 250;

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

    // A connection per task, so that the tasks really run side by side.
    let worker_url = format!("{db}?pool_size={TASKS}");
    let (tasks, increments) = (TASKS.to_string(), INCREMENTS.to_string());
    // Both workers start their increments at the same moment, once their
    // stores are open.
    let start_at = process::start_at(Duration::from_secs(2));
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| process::spawn("increment", &[&worker_url, &tasks, &increments, &start_at]))
        .collect();

    let mut successes = 0u64;
    let mut conflicts = 0u64;
    for child in children {
        let stdout = process::finish(child);
        successes += process::reported(&stdout, "successes")
            .parse::<u64>()
            .unwrap();
        conflicts += process::reported(&stdout, "conflicts")
            .parse::<u64>()
            .unwrap();
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
