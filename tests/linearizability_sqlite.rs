//! Linearizability of the SQLite backend across processes: several
//! worker processes, four tasks each, run a random mix of reads, plain and
//! conditional writes (`set_expecting` with versions read earlier,
//! `set_if_absent`), deletes and restores on a few keys of one SQLite
//! file, recording when each operation was invoked and returned; the whole
//! history must be linearizable (`support/linearizability/`). Once
//! without faults, once with writers killed by SIGKILL mid-run (their
//! operations in flight then have an unknown outcome).
//!
//! Several tasks per process write at once, so that writes of one process
//! queue behind each other as well as behind other processes.
//! `KV_LINEARIZABILITY_OPS` and `KV_LINEARIZABILITY_ROUNDS` set the
//! operations per history and the histories per scenario (see
//! `support/campaign.rs`).

mod support;

use std::path::Path;

use kv_runtime::Store;
use support::campaign::{self, Plan, Run};
use support::sqlite::url;
use support::tempdir::TempDir;

/// The default number of operations per scenario.
const OPS: u32 = 1800;

/// A plan on a new SQLite file at `path`, its schema created first (as an
/// app's first start would) so that the workers open it together.
fn plan(path: &Path) -> Plan {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a Tokio runtime")
        .block_on(async {
            drop(Store::open(&url(path)).await.expect("the store opens"));
        });
    Plan {
        url: url(path),
        processes: 3,
        tasks: 4,
        ops: campaign::scenario_ops(OPS),
        keys: 4,
    }
}

#[test]
fn concurrent_processes_see_a_linearizable_history() {
    for round in 1..=campaign::rounds() {
        let dir = TempDir::new("linearizable-sqlite");
        let history = Run::start(plan(&dir.join("kv.db"))).finish();
        let scenario = format!("SQLite, 3 processes x 4 tasks, history {round}");
        campaign::assert_exercised(&scenario, &history);
        campaign::check(&scenario, &history);
    }
}

#[test]
fn the_history_stays_linearizable_when_writers_are_killed() {
    for round in 1..=campaign::rounds() {
        let dir = TempDir::new("linearizable-sqlite-kill");
        let mut run = Run::start(plan(&dir.join("kv.db")));
        let planned = run.planned();
        // Two writers killed mid-run, each replaced by a new one.
        for (victim, at) in [(0, planned / 4), (1, planned / 2)] {
            assert!(run.wait_for(at), "the workers ended before the kill");
            run.kill(victim);
            run.add_worker();
        }
        assert_eq!(run.faults(), 2);
        let history = run.finish();
        let scenario =
            format!("SQLite, 3 processes x 4 tasks, 2 killed with SIGKILL, history {round}");
        campaign::assert_exercised(&scenario, &history);
        campaign::check(&scenario, &history);
    }
}
