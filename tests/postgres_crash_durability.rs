//! Crash durability on PostgreSQL, as `sqlite_processes.rs` tests it for
//! SQLite but with the database server killed instead of the writer: a
//! worker process (four tasks) writes new keys and removes some of them
//! while the server is crashed (`pg_ctl stop -m immediate`, with `fsync`
//! and `synchronous_commit` on) and started again, several times. Then
//! every write acknowledged before a crash is present (with its value),
//! every acknowledged removal holds, and no write that failed is there: a
//! failed `set` left no row, a failed `rm` left its row. A write whose
//! error says it may or may not have been applied (the connection was lost
//! before the reply) may be either.
//!
//! The worker is `kv-test-worker crash-writer` (`tests/worker/`), which
//! reports every call once it returned and writes until its stdin closes.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use kv_runtime::Store;
use support::pg_instance::{Binaries, Instance};
use support::process;
use support::rng::Rng;
use support::skip::loud;
use support::tables::{entry, Entry};

const TASKS: u64 = 4;
const CRASHES: usize = 4;

/// What the worker said of one key, in the order it said it.
#[derive(Debug, Default)]
struct Key {
    /// The set: `Some(true)` acknowledged, `Some(false)` failed with
    /// nothing written, `None` unknown outcome.
    set: Option<Option<bool>>,
    /// The rm, if one was tried: as `set`.
    rm: Option<Option<bool>>,
}

/// Whether a write's error leaves its outcome unknown
/// (`kv-runtime/docs/errors.md`).
fn unknown(message: &str) -> bool {
    message.contains("may or may not have been applied")
}

#[test]
fn acknowledged_writes_survive_server_crashes() {
    let Some(bins) = Binaries::from_env("the PostgreSQL crash durability test") else {
        return;
    };
    let server = Instance::start(&bins, &["fsync=on", "synchronous_commit=on"], &[]);
    let url = format!("{}?pool_size={TASKS}", server.url("postgres"));
    let mut child = process::worker("crash-writer", &[&url, &TASKS.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("the worker starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let acked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&acked);
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("the worker prints text");
            if line == "ready" {
                let _ = ready_tx.send(());
            } else if line.starts_with("ok ") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            lines.push(line);
        }
        lines
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker opens the store");

    // Before each crash and after the last restart, wait for 40 more
    // acknowledged calls: every crash then cuts into a running workload.
    let mut rng = Rng::from_time();
    let wait_for_progress = |what: &str| {
        let target = acked.load(Ordering::SeqCst) + 40;
        let deadline = Instant::now() + Duration::from_secs(120);
        while acked.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "no progress {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    for crash in 1..=CRASHES {
        wait_for_progress(&format!("before crash {crash}"));
        std::thread::sleep(Duration::from_millis(rng.range(0, 200)));
        let mut down = server.crash();
        std::thread::sleep(Duration::from_millis(rng.range(50, 400)));
        down.start();
    }
    wait_for_progress("after the last restart");
    drop(child.stdin.take());
    let status = child.wait().expect("the worker ends once stdin closes");
    assert!(status.success(), "the worker failed: {status}");
    let lines = reader.join().expect("the reader ends at EOF");

    let mut keys: BTreeMap<String, Key> = BTreeMap::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &lines {
        let words: Vec<&str> = line.splitn(5, ' ').collect();
        let (what, verdict) = match words[..] {
            ["ready"] => continue,
            ["ok", "set", key] => ((key, "set"), Some(true)),
            ["ok", "rm", key, removed] => {
                // Each key is removed once, after its set was acknowledged.
                assert_eq!(removed, "true", "rm {key} found its row");
                ((key, "rm"), Some(true))
            }
            ["error", call @ ("set" | "rm"), key, code, message] => {
                assert_eq!(code, "BACKEND", "{line}");
                ((key, call), (!unknown(message)).then_some(false))
            }
            _ => panic!("the worker printed {line:?}"),
        };
        let key = keys.entry(what.0.to_owned()).or_default();
        let slot = if what.1 == "set" {
            &mut key.set
        } else {
            &mut key.rm
        };
        assert!(slot.is_none(), "{line}: one {} per key", what.1);
        *slot = Some(verdict);
        *tally
            .entry(match (what.1, verdict) {
                ("set", Some(true)) => "set acknowledged",
                ("set", Some(false)) => "set failed",
                ("set", None) => "set unknown",
                (_, Some(true)) => "rm acknowledged",
                (_, Some(false)) => "rm failed",
                (_, None) => "rm unknown",
            })
            .or_default() += 1;
    }
    loud(&format!(
        "PostgreSQL crash durability: {CRASHES} crashes, {tally:?}"
    ));
    assert!(
        tally.get("set failed").copied().unwrap_or(0)
            + tally.get("set unknown").copied().unwrap_or(0)
            > 0,
        "some writes were cut off by the crashes: {tally:?}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let store = Store::open(&url)
            .await
            .expect("the store opens after the crashes");
        let t = store.table::<Entry>();
        for (key, said) in &keys {
            let row = t.get(key.clone()).await.expect("get succeeds");
            let (task, i) = key
                .strip_prefix('t')
                .and_then(|k| k.split_once('-'))
                .and_then(|(t, i)| Some((t.parse().ok()?, i.parse().ok()?)))
                .unwrap_or_else(|| panic!("keys are t<task>-<i>: {key}"));
            if let Some(row) = &row {
                assert_eq!(row.value, entry(task, i), "{key} holds its value");
            }
            let present = row.is_some();
            match (said.set, said.rm) {
                (Some(Some(true)), None | Some(Some(false))) => {
                    assert!(present, "acknowledged write {key} was lost ({said:?})");
                }
                (Some(Some(true)), Some(Some(true))) => {
                    assert!(!present, "acknowledged removal of {key} was undone");
                }
                (Some(Some(false)), rm) => {
                    assert_eq!(rm, None, "a key whose set failed is not removed");
                    assert!(!present, "failed write {key} was applied ({said:?})");
                }
                // An unknown set or rm: either.
                _ => {}
            }
        }
        // No row the worker did not try to write.
        let rows = store
            .backend()
            .scan("durability", None, keys.len() + 1)
            .await
            .expect("scan succeeds");
        for row in &rows {
            assert!(
                keys.contains_key(&row.key),
                "row {} was never written",
                row.key
            );
        }
    });
}
