//! The SQLite backend across operating-system processes: no lost update
//! when two processes race on one row, and no acknowledged write lost when
//! the writing process is killed with SIGKILL.
//!
//! The child processes are the `kv-test-worker` binary (`tests/worker/`):
//! `increment`, `durability` and `durability-concurrent`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kv_runtime::{Ctx, Store};
use support::process;
use support::rng::Rng;
use support::sqlite::url;
use support::tables::{entry, Counter, CounterKey, Entry};
use support::tempdir::TempDir;

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

const TASKS_PER_PROCESS: u64 = 4;
const INCREMENTS_PER_TASK: u64 = 250;
const PROCESSES: u64 = 2;

/// Two processes, each with 4 tasks, each making 250 conflict-checked
/// increments of one row: the final count equals the number of successful
/// writes, and every refused write was a CONFLICT.
#[test]
fn two_processes_never_lose_an_update() {
    let dir = TempDir::new("sqlite-counter");
    let path = dir.join("kv.db");
    multi_thread_runtime().block_on(async {
        let store = Store::open(&url(&path)).await.expect("store opens");
        store
            .table::<Counter>()
            .set(&Ctx::internal(), CounterKey::Hits, Counter { n: 0 })
            .await
            .expect("counter starts at 0");
    });
    let store_url = url(&path);
    let (tasks, increments) = (
        TASKS_PER_PROCESS.to_string(),
        INCREMENTS_PER_TASK.to_string(),
    );
    // The workers start their increments at the same moment, once their
    // stores are open.
    let start_at = process::start_at(Duration::from_secs(1));
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| process::spawn("increment", &[&store_url, &tasks, &increments, &start_at]))
        .collect();
    let mut successes = 0;
    let mut conflicts = 0;
    for child in children {
        let stdout = process::finish(child);
        successes += process::reported(&stdout, "successes")
            .parse::<u64>()
            .expect("a count");
        conflicts += process::reported(&stdout, "conflicts")
            .parse::<u64>()
            .expect("a count");
    }
    assert_eq!(
        successes,
        PROCESSES * TASKS_PER_PROCESS * INCREMENTS_PER_TASK
    );
    eprintln!("{successes} increments, {conflicts} conflicts retried");
    multi_thread_runtime().block_on(async {
        let store = Store::open(&url(&path)).await.expect("store reopens");
        let row = store
            .table::<Counter>()
            .get(CounterKey::Hits)
            .await
            .expect("get succeeds")
            .expect("the counter exists");
        assert_eq!(row.value.n, successes, "no increment was lost");
    });
}

const ROUNDS: u64 = 10;

/// A child writing in a loop is killed with SIGKILL at a random moment, ten
/// times; after each kill every write it acknowledged is in the file, with
/// its value, and the file passes SQLite's integrity check.
#[test]
fn killed_writer_loses_no_acknowledged_write() {
    let dir = TempDir::new("sqlite-durability");
    let path = dir.join("kv.db");
    let store_url = url(&path);
    let mut rng = Rng::from_time();
    let mut acknowledged: Vec<(String, u64, u64)> = Vec::new();
    for round in 0..ROUNDS {
        let round_text = round.to_string();
        let (lines, delay) =
            process::run_until_killed("durability", &[&store_url, &round_text], &mut rng);

        let mut latest = None;
        let mut wrote = 0;
        for line in &lines {
            if let Some(key) = line.strip_prefix("wrote ") {
                let i = key
                    .rsplit_once('-')
                    .and_then(|(_, i)| i.parse().ok())
                    .expect("keys are r<round>-<i>");
                acknowledged.push((key.to_owned(), round, i));
                wrote += 1;
            } else if let Some(i) = line.strip_prefix("latest ") {
                latest = Some(i.parse::<u64>().expect("latest <i>"));
            }
        }
        eprintln!("round {round}: killed after {delay} ms, {wrote} writes acknowledged");

        multi_thread_runtime().block_on(async {
            let store = Store::open(&url(&path))
                .await
                .expect("the file reopens after a kill");
            let t = store.table::<Entry>();
            for (key, r, i) in &acknowledged {
                let row = t
                    .get(key)
                    .await
                    .expect("get succeeds")
                    .unwrap_or_else(|| panic!("acknowledged write {key} was lost"));
                assert_eq!(row.value, entry(*r, *i), "{key} has its value");
            }
            if let Some(latest) = latest {
                let row = t
                    .get("latest".to_owned())
                    .await
                    .expect("get succeeds")
                    .expect("the overwritten row exists");
                assert_eq!(row.value.round, round);
                // The kill may land after a commit and before its report.
                assert!(
                    row.value.i >= latest,
                    "acknowledged overwrite {latest} was lost: the row holds {}",
                    row.value.i
                );
            }
        });

        let conn = rusqlite::Connection::open(&path).expect("rusqlite opens the file");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("the integrity check runs");
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(
        !acknowledged.is_empty(),
        "the workers acknowledged some writes before being killed"
    );
}

const CONCURRENT_ROUNDS: u64 = 6;
const CONCURRENT_TASKS: u64 = 8;

/// The case above with eight tasks writing at once in the child, so that
/// their writes share transactions and commits (group commit): after each
/// kill, every write any task acknowledged is in the file with its value,
/// each task's last acknowledged overwrite too, and the file passes the
/// integrity check.
#[test]
fn killed_concurrent_writers_lose_no_acknowledged_write() {
    let dir = TempDir::new("sqlite-durability-concurrent");
    let path = dir.join("kv.db");
    let store_url = url(&path);
    let tasks = CONCURRENT_TASKS.to_string();
    let mut rng = Rng::from_time();
    let mut acknowledged: Vec<(String, u64, u64)> = Vec::new();
    for round in 0..CONCURRENT_ROUNDS {
        let round_text = round.to_string();
        let (lines, delay) = process::run_until_killed(
            "durability-concurrent",
            &[&store_url, &round_text, &tasks],
            &mut rng,
        );

        let mut latest: BTreeMap<String, u64> = BTreeMap::new();
        let mut wrote = 0;
        for line in &lines {
            if let Some(key) = line.strip_prefix("wrote ") {
                let i = key
                    .rsplit_once('-')
                    .and_then(|(_, i)| i.parse().ok())
                    .expect("keys are r<round>-t<task>-<i>");
                acknowledged.push((key.to_owned(), round, i));
                wrote += 1;
            } else if let Some(rest) = line.strip_prefix("latest ") {
                let (task, i) = rest.split_once(' ').expect("latest t<task> <i>");
                let i: u64 = i.parse().expect("latest t<task> <i>");
                let top = latest.entry(format!("latest-{task}")).or_insert(i);
                *top = (*top).max(i);
            }
        }
        eprintln!(
            "round {round}: killed after {delay} ms, {wrote} writes of {} tasks acknowledged",
            latest.len()
        );

        multi_thread_runtime().block_on(async {
            let store = Store::open(&url(&path))
                .await
                .expect("the file reopens after a kill");
            let t = store.table::<Entry>();
            for (key, r, i) in &acknowledged {
                let row = t
                    .get(key)
                    .await
                    .expect("get succeeds")
                    .unwrap_or_else(|| panic!("acknowledged write {key} was lost"));
                assert_eq!(row.value, entry(*r, *i), "{key} has its value");
            }
            for (key, latest) in &latest {
                let row = t
                    .get(key)
                    .await
                    .expect("get succeeds")
                    .expect("the overwritten row exists");
                assert_eq!(row.value.round, round);
                // The kill may land after a commit and before its report.
                assert!(
                    row.value.i >= *latest,
                    "acknowledged overwrite {latest} of {key} was lost: the row holds {}",
                    row.value.i
                );
            }
        });

        let conn = rusqlite::Connection::open(&path).expect("rusqlite opens the file");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("the integrity check runs");
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(
        !acknowledged.is_empty(),
        "the workers acknowledged some writes before being killed"
    );
}
