//! The SQLite backend across operating-system processes: no lost update
//! when two processes race on one row, and no acknowledged write lost when
//! the writing process is killed with SIGKILL.
//!
//! Child processes use the re-exec trick: the test runs this very test
//! binary again, asking it (`--exact NAME`) to run only a worker test, with
//! an environment variable that tells the worker what to do. Without that
//! variable a worker test returns at once, so a plain `cargo test` run sees
//! it pass trivially.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use support::process::worker_command;
use support::rng::Rng;
use support::sqlite::url;
use support::tempdir::TempDir;

/// One shared counter, written by server code.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "counter", keys = [hits])]
struct Counter {
    n: u64,
}

/// Rows written by the durability worker.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "durability")]
struct Entry {
    round: u64,
    i: u64,
    pad: String,
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

const COUNTER_ENV: &str = "KV_SQLITE_TEST_COUNTER_DB";
const TASKS_PER_PROCESS: u64 = 4;
const INCREMENTS_PER_TASK: u64 = 250;
const PROCESSES: u64 = 2;

/// Worker of [`two_processes_never_lose_an_update`]: 4 tasks, each making
/// 250 conflict-checked increments of the counter, retrying on CONFLICT.
/// Any other error fails the worker (and so the test).
#[test]
fn counter_worker() {
    let Ok(path) = std::env::var(COUNTER_ENV) else {
        return; // not a child process: nothing to do
    };
    multi_thread_runtime().block_on(async {
        let store = Store::open(&url(path.as_ref()))
            .await
            .expect("worker opens the store");
        let mut tasks = Vec::new();
        for _ in 0..TASKS_PER_PROCESS {
            let t = store.table::<Counter>();
            tasks.push(tokio::spawn(async move {
                let (mut successes, mut conflicts) = (0u64, 0u64);
                while successes < INCREMENTS_PER_TASK {
                    let row = t
                        .get(CounterKey::Hits)
                        .await
                        .expect("get succeeds")
                        .expect("the counter row exists");
                    let next = Counter { n: row.value.n + 1 };
                    match t
                        .set_expecting(&Ctx::internal(), CounterKey::Hits, next, row.updated_at)
                        .await
                    {
                        Ok(_) => successes += 1,
                        Err(e) if e.code() == ErrorCode::Conflict => conflicts += 1,
                        Err(e) => {
                            panic!("an increment failed with something other than CONFLICT: {e}")
                        }
                    }
                }
                (successes, conflicts)
            }));
        }
        let (mut successes, mut conflicts) = (0, 0);
        for task in tasks {
            let (s, c) = task.await.expect("worker task does not panic");
            successes += s;
            conflicts += c;
        }
        let mut out = std::io::stdout().lock();
        // libtest has printed "test counter_worker ... " without a newline.
        writeln!(out, "\nSUCCESSES {successes} CONFLICTS {conflicts}").expect("stdout works");
        out.flush().expect("stdout works");
    });
}

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
    let path_text = path.to_string_lossy().into_owned();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            worker_command("counter_worker", &[(COUNTER_ENV, &path_text)])
                .spawn()
                .expect("the worker process starts")
        })
        .collect();
    let mut successes = 0;
    let mut conflicts = 0;
    for child in children {
        let out = child
            .wait_with_output()
            .expect("the worker runs to its end");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a worker failed ({}): {stdout}",
            out.status
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SUCCESSES "))
            .unwrap_or_else(|| panic!("the worker reports its counts: {stdout}"));
        let (s, c) = line
            .split_once(" CONFLICTS ")
            .expect("counts are well formed");
        successes += s.parse::<u64>().expect("a count");
        conflicts += c.parse::<u64>().expect("a count");
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

const DURABILITY_ENV: &str = "KV_SQLITE_TEST_DURABILITY_DB";
const ROUND_ENV: &str = "KV_SQLITE_TEST_DURABILITY_ROUND";
const ROUNDS: u64 = 10;

fn entry(round: u64, i: u64) -> Entry {
    Entry {
        round,
        i,
        // Values of varied size, so that writes span pages differently.
        pad: "x".repeat(usize::try_from(i % 700).unwrap_or(0)),
    }
}

/// Worker of [`killed_writer_loses_no_acknowledged_write`]: writes rows in a
/// loop and prints each key once its `set` returned Ok, until killed (or,
/// as a safety net, after 60 s).
#[test]
fn durability_worker() {
    let Ok(path) = std::env::var(DURABILITY_ENV) else {
        return; // not a child process: nothing to do
    };
    let round: u64 = std::env::var(ROUND_ENV)
        .expect("the round is given")
        .parse()
        .expect("the round is a number");
    multi_thread_runtime().block_on(async {
        let store = Store::open(&url(path.as_ref()))
            .await
            .expect("worker opens the store");
        let t = store.table::<Entry>();
        let ctx = Ctx::internal();
        let mut out = std::io::stdout().lock();
        // libtest has printed "test durability_worker ... " without a newline.
        writeln!(out, "\nREADY").expect("stdout works");
        out.flush().expect("stdout works");
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(60) {
            let key = format!("r{round}-{i}");
            t.set(&ctx, &key, entry(round, i))
                .await
                .expect("set succeeds");
            writeln!(out, "WROTE {key}").expect("stdout works");
            // An overwrite of one row too: overwrites must survive as well.
            t.set(&ctx, "latest".to_owned(), entry(round, i))
                .await
                .expect("set succeeds");
            writeln!(out, "LATEST {i}").expect("stdout works");
            out.flush().expect("stdout works");
            i += 1;
        }
    });
}

/// A child writing in a loop is killed with SIGKILL at a random moment, ten
/// times; after each kill every write it acknowledged is in the file, with
/// its value, and the file passes SQLite's integrity check.
#[test]
fn killed_writer_loses_no_acknowledged_write() {
    let dir = TempDir::new("sqlite-durability");
    let path = dir.join("kv.db");
    let path_text = path.to_string_lossy().into_owned();
    let mut rng = Rng::from_time();
    let mut acknowledged: Vec<(String, u64, u64)> = Vec::new();
    for round in 0..ROUNDS {
        let round_text = round.to_string();
        let mut child = worker_command(
            "durability_worker",
            &[(DURABILITY_ENV, &path_text), (ROUND_ENV, &round_text)],
        )
        .spawn()
        .expect("the worker process starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut stdout = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdout.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    // A line cut short by the kill (no newline) was not
                    // printed in full: it acknowledges nothing.
                    Ok(_) if buf.last() != Some(&b'\n') => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                if line == "READY" {
                    let _ = ready_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the worker opens the store and starts writing");
        let delay = rng.range(50, 400);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL is delivered");
        let status = child.wait().expect("the killed worker is reaped");
        assert!(!status.success(), "the worker was killed, not finished");
        let lines = reader.join().expect("the reader thread ends at EOF");

        let mut latest = None;
        let mut wrote = 0;
        for line in &lines {
            if let Some(key) = line.strip_prefix("WROTE ") {
                let i = key
                    .rsplit_once('-')
                    .and_then(|(_, i)| i.parse().ok())
                    .expect("keys are r<round>-<i>");
                acknowledged.push((key.to_owned(), round, i));
                wrote += 1;
            } else if let Some(i) = line.strip_prefix("LATEST ") {
                latest = Some(i.parse::<u64>().expect("LATEST <i>"));
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
