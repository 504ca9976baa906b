//! A log across operating-system processes, on SQLite and PostgreSQL:
//!
//! 1. two processes, each with 4 tasks making 250 idempotent appends to one
//!    parent, get the numbers 1..=2000, each once, with no gap;
//! 2. the same appends retried with their idempotency keys (as after a
//!    lost reply) append nothing, and each gets the number it got first;
//! 3. two processes racing to make the *same* appends (first attempts
//!    with the same keys) append each once, and agree on its number.
//!
//! The processes are the `kv-test-worker` binary (`tests/worker/`), role
//! `log-append`, which checks every entry it gets back and reports the
//! number of each key.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kv_runtime::{Ctx, PageRequest, Store};
use support::tables::{line_key, Line, RACE_PARENT};
use support::tempdir::TempDir;
use support::{pg, process, sqlite};

const PROCESSES: u64 = 2;
const TASKS: u64 = 4;
const APPENDS: u64 = 250;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

/// Runs one worker per tag at once, each `tasks` x `appends`, and returns
/// every process's `key -> seq`.
fn phase(url: &str, tags: &[&str], tasks: u64, appends: u64) -> Vec<BTreeMap<String, u64>> {
    let start_at = process::start_at(Duration::from_secs(1));
    let (tasks, appends) = (tasks.to_string(), appends.to_string());
    let children: Vec<_> = tags
        .iter()
        .map(|tag| process::spawn("log-append", &[url, &tasks, &appends, &start_at, tag]))
        .collect();
    children
        .into_iter()
        .map(|child| {
            let stdout = process::finish(child);
            let seqs: BTreeMap<String, u64> = stdout
                .lines()
                .filter_map(|l| l.strip_prefix("seq "))
                .map(|l| {
                    let (key, seq) = l.split_once(' ').expect("`seq KEY SEQ`");
                    (key.to_owned(), seq.parse().expect("a number"))
                })
                .collect();
            let reported: usize = process::reported(&stdout, "appends")
                .parse()
                .expect("a count");
            assert_eq!(seqs.len(), reported, "each key reported once");
            seqs
        })
        .collect()
}

/// Every entry of the parent, in seq order, read through the typed log.
fn read_all(url: &str) -> Vec<(u64, String, u64)> {
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the store opens");
        let log = store.log::<Line>();
        let parent = RACE_PARENT.to_owned();
        let mut out = Vec::new();
        let mut request = PageRequest::first(1000);
        loop {
            let page = log
                .list(&Ctx::internal(), &parent, request)
                .await
                .expect("list");
            out.extend(
                page.entries
                    .iter()
                    .map(|e| (e.seq, e.value.writer.clone(), e.value.i)),
            );
            if page.is_done {
                return out;
            }
            request = PageRequest::after(page.continue_cursor.expect("a cursor"), 1000);
        }
    })
}

fn run_scenario(url: &str) {
    // The schema exists before the workers race to open the store.
    runtime().block_on(async {
        drop(Store::open(url).await.expect("the store opens"));
    });

    // 1. Two processes, 4 tasks each, 250 appends each: 1..=2000.
    let first = phase(url, &["p0", "p1"], TASKS, APPENDS);
    let total = PROCESSES * TASKS * APPENDS;
    let mut by_key = BTreeMap::new();
    for seqs in &first {
        by_key.extend(seqs.clone());
    }
    assert_eq!(by_key.len() as u64, total);
    let numbers: BTreeSet<u64> = by_key.values().copied().collect();
    assert_eq!(
        numbers,
        (1..=total).collect::<BTreeSet<_>>(),
        "distinct, consecutive numbers with no gap"
    );
    let stored = read_all(url);
    assert_eq!(stored.len() as u64, total, "no entry more, none missing");
    for (seq, writer, i) in &stored {
        let task: u64 = writer.rsplit('-').next().unwrap().parse().unwrap();
        let tag = writer.split('-').next().unwrap();
        assert_eq!(by_key[&line_key(tag, task, *i)], *seq, "{writer} {i}");
    }

    // 2. The same appends again, as retries after lost replies: nothing
    //    new, and every key keeps its number.
    let retried = phase(url, &["p0", "p1"], TASKS, APPENDS);
    for (before, after) in first.iter().zip(&retried) {
        assert_eq!(before, after, "a retry returns the first entry");
    }
    assert_eq!(
        read_all(url).len() as u64,
        total,
        "retries appended nothing"
    );

    // 3. Both processes make the same new appends at once.
    let raced = phase(url, &["same", "same"], TASKS, 50);
    assert_eq!(raced[0], raced[1], "both processes see one entry per key");
    let numbers: BTreeSet<u64> = raced[0].values().copied().collect();
    let more = TASKS * 50;
    assert_eq!(numbers, (total + 1..=total + more).collect::<BTreeSet<_>>());
    assert_eq!(read_all(url).len() as u64, total + more);
}

#[test]
fn sqlite_appends_from_two_processes() {
    let dir = TempDir::new("sqlite-log-processes");
    run_scenario(&sqlite::url(&dir.join("kv.db")));
}

#[test]
fn postgres_appends_from_two_processes() {
    let Some(url) = pg::server_url() else { return };
    let db = runtime().block_on(pg::fresh_database(&url));
    run_scenario(&db);
}
