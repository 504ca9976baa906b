//! Linearizability of the PostgreSQL backend across processes, clean and
//! under faults: several worker processes, four tasks each, run a random
//! mix of reads, plain and conditional writes (`set_expecting` with
//! versions read earlier, `set_if_absent`), deletes and restores on a few
//! keys of one database, recording when each operation was invoked and
//! returned; the whole history must be linearizable
//! (`support/linearizability/`). Faults: the sessions of the workers
//! terminated from a side connection (`pg_terminate_backend`), the server
//! crashed (`pg_ctl stop -m immediate`, with `fsync` and
//! `synchronous_commit` on) and started again, writers killed with
//! SIGKILL. An operation cut short by a fault has an unknown outcome when
//! its error says the write may or may not have been applied (or it never
//! returned); any other error must mean that nothing was written.
//!
//! The crash scenario runs on a private server (support/pg_instance.rs);
//! the others on a database of their own on the shared test server.
//! `KV_LINEARIZABILITY_OPS` and `KV_LINEARIZABILITY_ROUNDS` set the
//! operations per history and the histories per scenario (see
//! `support/campaign.rs`).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::campaign::{self, Plan, Run};
use support::pg;
use support::pg_instance::{Binaries, Instance};
use support::rng::Rng;

/// The default number of operations per scenario.
const OPS: u32 = 1800;
const TASKS: u32 = 4;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A plan on the database at `db`: a connection per task.
fn plan(db: &str) -> Plan {
    Plan {
        url: format!("{db}?pool_size={TASKS}"),
        processes: 3,
        tasks: TASKS,
        ops: campaign::scenario_ops(OPS),
        keys: 4,
    }
}

/// A fresh database on the shared test server, or `None` (skipped).
fn fresh_database() -> Option<(String, String)> {
    let server = pg::server_url()?;
    let db = runtime().block_on(pg::fresh_database(&server));
    Some((server, db))
}

/// One history of [`concurrent_processes_see_a_linearizable_history`].
fn concurrent_processes_see_a_linearizable_history_once(round: u32) {
    let Some((_, db)) = fresh_database() else {
        return;
    };
    let history = Run::start(plan(&db)).finish();
    let scenario = format!("PostgreSQL, 3 processes x 4 tasks, history {round}");
    campaign::assert_exercised(&scenario, &history);
    campaign::check(&scenario, &history);
}

/// One history of [`the_history_stays_linearizable_while_sessions_are_terminated`].
fn the_history_stays_linearizable_while_sessions_are_terminated_once(round: u32) {
    let Some((server, db)) = fresh_database() else {
        return;
    };
    let name = db.rsplit('/').next().expect("a database name").to_owned();
    let mut run = Run::start(plan(&db));
    // A side connection terminates every session of the workers' database
    // every 20 to 250 ms until the run ends.
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let terminator = std::thread::spawn(move || {
        runtime().block_on(async {
            let admin = pg::admin(&server).await;
            let mut rng = Rng::from_time();
            let (mut rounds, mut sessions) = (0u64, 0i64);
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.range(20, 250))).await;
                let row = admin
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                        &[&name],
                    )
                    .await
                    .expect("the side connection terminates sessions");
                rounds += 1;
                sessions += row.get::<_, i64>(0);
            }
            (rounds, sessions)
        })
    });
    let planned = run.planned();
    let ended_early = !run.wait_for(planned * 9 / 10);
    done.store(true, Ordering::SeqCst);
    let (rounds, sessions) = terminator.join().expect("the terminator thread ends");
    run.note(format!(
        "{sessions} sessions terminated in {rounds} rounds from a side connection"
    ));
    assert!(
        !ended_early,
        "the workers ended before 90% of their operations"
    );
    assert!(
        sessions > 0,
        "sessions were terminated while the workers ran"
    );
    let history = run.finish();
    let scenario =
        format!("PostgreSQL, 3 processes x 4 tasks, sessions terminated, history {round}");
    campaign::assert_exercised(&scenario, &history);
    campaign::check(&scenario, &history);
}

/// One history of [`the_history_stays_linearizable_across_server_crashes`].
fn the_history_stays_linearizable_across_server_crashes_once(round: u32) {
    let Some(bins) = Binaries::from_env("the crash-restart linearizability test") else {
        return;
    };
    // Durable commits: what this test is about.
    let server = Instance::start(&bins, &["fsync=on", "synchronous_commit=on"], &[]);
    let url = server.url("postgres");
    runtime().block_on(async {
        let admin = pg::admin(&url).await;
        for setting in ["fsync", "synchronous_commit"] {
            let row = admin
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .expect("SHOW works");
            assert_eq!(row.get::<_, String>(0), "on", "{setting} is on");
        }
    });
    let mut run = Run::start(plan(&url));
    let planned = run.planned();
    let mut rng = Rng::from_time();
    for k in 1..=3 {
        assert!(
            run.wait_for(planned * k / 4),
            "the workers ended before crash {k}"
        );
        let mut down = server.crash();
        run.note(format!(
            "server crashed (pg_ctl stop -m immediate), crash {k}"
        ));
        std::thread::sleep(Duration::from_millis(rng.range(50, 400)));
        down.start();
        run.note(format!("server started again after crash {k}"));
    }
    let history = run.finish();
    let scenario = format!("PostgreSQL, 3 processes x 4 tasks, 3 server crashes, history {round}");
    campaign::assert_exercised(&scenario, &history);
    campaign::check(&scenario, &history);
}

/// One history of [`the_history_stays_linearizable_when_writers_are_killed`].
fn the_history_stays_linearizable_when_writers_are_killed_once(round: u32) {
    let Some((_, db)) = fresh_database() else {
        return;
    };
    let mut run = Run::start(plan(&db));
    let planned = run.planned();
    for (victim, at) in [(0, planned / 4), (1, planned / 2)] {
        assert!(run.wait_for(at), "the workers ended before the kill");
        run.kill(victim);
        run.add_worker();
    }
    let history = run.finish();
    let scenario =
        format!("PostgreSQL, 3 processes x 4 tasks, 2 killed with SIGKILL, history {round}");
    campaign::assert_exercised(&scenario, &history);
    campaign::check(&scenario, &history);
}

#[test]
fn concurrent_processes_see_a_linearizable_history() {
    for round in 1..=campaign::rounds() {
        concurrent_processes_see_a_linearizable_history_once(round);
    }
}

#[test]
fn the_history_stays_linearizable_while_sessions_are_terminated() {
    for round in 1..=campaign::rounds() {
        the_history_stays_linearizable_while_sessions_are_terminated_once(round);
    }
}

#[test]
fn the_history_stays_linearizable_across_server_crashes() {
    for round in 1..=campaign::rounds() {
        the_history_stays_linearizable_across_server_crashes_once(round);
    }
}

#[test]
fn the_history_stays_linearizable_when_writers_are_killed() {
    for round in 1..=campaign::rounds() {
        the_history_stays_linearizable_when_writers_are_killed_once(round);
    }
}
