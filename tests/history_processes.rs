//! History across operating-system processes, on SQLite and PostgreSQL:
//!
//! - several processes racing on one row record exactly the writes that
//!   were acknowledged, and nothing of those refused;
//! - a writer killed with SIGKILL at a random moment never leaves a change
//!   without its history record, nor a record without its change (SQLite:
//!   the record is in the change's transaction; PostgreSQL: in its
//!   statement, and here the killed process is the client).
//!
//! The child processes are the `kv-test-worker` binary (`tests/worker/`):
//! `history-race` and `history-kill`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use kv_runtime::backend::{HistoryOp, HistoryRecord};
use kv_runtime::{Ctx, KvSchema, Store};
use serde_json::Value;
use support::process;
use support::rng::Rng;
use support::tables::{recorded, Recorded};
use support::tempdir::TempDir;
use support::{pg, sqlite};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

/// Every record of `key`, newest first.
async fn records(store: &Store, key: &str) -> Vec<HistoryRecord> {
    store
        .backend()
        .history(Recorded::TABLE, key, None, 1_000_000)
        .await
        .expect("history reads")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("stored values are JSON")
}

// --- racing processes -------------------------------------------------------

const PROCESSES: usize = 2;
const TASKS: usize = 3;
const WRITES: u64 = 60;

/// Runs the race against the store at `url` (opened by the parent first,
/// with the shared row created) and checks the history of the row.
fn race(url: &str, worker_url: &str) {
    let first = runtime().block_on(async {
        let store = Store::open(url).await.expect("store opens");
        store
            .table::<Recorded>()
            .set(&Ctx::internal(), "shared".to_owned(), recorded("parent", 0))
            .await
            .expect("the shared row is created")
    });
    let (tasks, writes) = (TASKS.to_string(), WRITES.to_string());
    let start_at = process::start_at(Duration::from_secs(2));
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| process::spawn("history-race", &[worker_url, &tasks, &writes, &start_at]))
        .collect();
    let mut acknowledged: BTreeSet<(i64, String, u64)> = BTreeSet::new();
    acknowledged.insert((first.updated_at, "parent".to_owned(), 0));
    for child in children {
        let stdout = process::finish(child);
        assert!(stdout.lines().any(|l| l == "done"), "{stdout}");
        for line in stdout.lines().filter_map(|l| l.strip_prefix("ok ")) {
            let mut parts = line.split(' ');
            let (Some(v), Some(by), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("a malformed report: {line}")
            };
            acknowledged.insert((
                v.parse().expect("a version"),
                by.to_owned(),
                i.parse().expect("a number"),
            ));
        }
    }
    let tries = (PROCESSES * TASKS) as u64 * WRITES;
    eprintln!(
        "{} writes acknowledged of {tries} tried",
        acknowledged.len() - 1
    );
    runtime().block_on(async {
        let store = Store::open(url).await.expect("store reopens");
        let history = records(&store, "shared").await;
        let mut seen = BTreeSet::new();
        for record in &history {
            assert_eq!(record.op, HistoryOp::Set);
            let value = json(record.value.json());
            let by = value["by"].as_str().expect("by").to_owned();
            let i = value["i"].as_u64().expect("i");
            assert!(
                seen.insert((record.version, by, i)),
                "a version recorded twice"
            );
        }
        let missing: Vec<_> = acknowledged.difference(&seen).collect();
        let extra: Vec<_> = seen.difference(&acknowledged).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "acknowledged writes without a record: {missing:?}; records of writes never \
             acknowledged: {extra:?}"
        );
        let row = store
            .table::<Recorded>()
            .get("shared".to_owned())
            .await
            .expect("get")
            .expect("the row");
        assert_eq!(
            row.updated_at, history[0].version,
            "the newest record is the row"
        );
    });
}

#[test]
fn sqlite_processes_record_exactly_the_acknowledged_writes() {
    let dir = TempDir::new("history-race");
    let url = sqlite::url(&dir.join("kv.db"));
    race(&url, &url);
}

#[test]
fn postgres_processes_record_exactly_the_acknowledged_writes() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let db = runtime().block_on(pg::fresh_database(&server));
    // A connection per task, so that the tasks really run side by side.
    let worker_url = format!("{db}?pool_size={TASKS}");
    race(&db, &worker_url);
}

// --- a killed writer --------------------------------------------------------

/// What a killed worker acknowledged: the new rows' keys, and the last
/// overwrite of `latest`.
struct Acknowledged {
    keys: Vec<(String, u64)>,
    latest: Option<u64>,
}

/// Starts `history-kill` for `round`, kills it with SIGKILL after a random
/// delay, and returns what it acknowledged.
fn kill_a_writer(url: &str, round: u64, rng: &mut Rng) -> Acknowledged {
    let round_text = round.to_string();
    let (lines, delay) = process::run_until_killed("history-kill", &[url, &round_text], rng);
    let mut acknowledged = Acknowledged {
        keys: Vec::new(),
        latest: None,
    };
    for line in &lines {
        if let Some(key) = line.strip_prefix("wrote ") {
            let i = key
                .rsplit_once('-')
                .and_then(|(_, i)| i.parse().ok())
                .expect("keys are r<round>-<i>");
            acknowledged.keys.push((key.to_owned(), i));
        } else if let Some(i) = line.strip_prefix("latest ") {
            acknowledged.latest = Some(i.parse().expect("latest <i>"));
        }
    }
    eprintln!(
        "round {round}: killed after {delay} ms, {} new rows acknowledged",
        acknowledged.keys.len()
    );
    acknowledged
}

/// Checks, after a kill, that every row's newest record is its current
/// version with its value (no change without its record, no record ahead
/// of its change), that every acknowledged write is there, and that the
/// keys the worker may have been writing have a record exactly when they
/// have a row.
async fn check_after_kill(store: &Store, round: u64, acknowledged: &Acknowledged) {
    let backend = store.backend();
    let mut after = None;
    let mut rows = Vec::new();
    loop {
        let page = backend
            .scan(Recorded::TABLE, after.as_deref(), 500)
            .await
            .expect("scan");
        after = page.last().map(|r| r.key.clone());
        let done = page.len() < 500;
        rows.extend(page);
        if done {
            break;
        }
    }
    for row in &rows {
        let history = records(store, &row.key).await;
        let newest = history
            .first()
            .unwrap_or_else(|| panic!("row {} changed without a record", row.key));
        assert_eq!(
            newest.version, row.updated_at,
            "row {}: the newest record is not its current version",
            row.key
        );
        assert_eq!(
            json(newest.value.json()),
            json(row.value.json()),
            "row {}: the newest record holds another value",
            row.key
        );
        let allowed: &[HistoryOp] = if row.is_live() {
            &[HistoryOp::Set, HistoryOp::Restore]
        } else {
            &[HistoryOp::Rm]
        };
        assert!(allowed.contains(&newest.op), "{} {newest:?}", row.key);
        assert!(
            history.windows(2).all(|w| w[0].version > w[1].version),
            "{}: versions decrease, newest first",
            row.key
        );
        if row.key != "latest" {
            assert_eq!(history.len(), 1, "{}: written once", row.key);
        }
    }
    // Every acknowledged write has its row and its record.
    let t = store.table::<Recorded>();
    for (key, i) in &acknowledged.keys {
        let row = t
            .get(key)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("acknowledged write {key} was lost"));
        assert_eq!(row.value, recorded(&format!("r{round}"), *i));
    }
    if let Some(latest) = acknowledged.latest {
        let history = records(store, "latest").await;
        let by = format!("r{round}");
        let written: Vec<u64> = history
            .iter()
            .rev()
            .filter(|r| r.op == HistoryOp::Set)
            .map(|r| json(r.value.json()))
            .filter(|v| v["by"] == by.as_str())
            .map(|v| v["i"].as_u64().expect("i"))
            .collect();
        // Every overwrite of this round, in order; the kill may land after
        // a commit and before its report.
        let expected: Vec<u64> = (0..written.len() as u64).collect();
        assert_eq!(written, expected, "the overwrites of round {round}");
        assert!(*written.last().expect("some") >= latest);
    }
    // The keys the worker may have been writing when killed: a record
    // exactly when there is a row.
    let next = acknowledged.keys.last().map_or(0, |(_, i)| i + 1);
    for i in next..next + 2 {
        let key = format!("r{round}-{i}");
        let row = backend.get(Recorded::TABLE, &key).await.expect("get");
        let history = records(store, &key).await;
        assert_eq!(
            row.is_some(),
            !history.is_empty(),
            "{key}: a row without its record, or a record without its row"
        );
    }
}

const SQLITE_ROUNDS: u64 = 10;

/// Ten times: a writer killed at a random moment; after each kill the
/// file reopens, rows and records agree, and SQLite's integrity check
/// passes.
#[test]
fn sqlite_killed_writer_leaves_no_change_without_its_record() {
    let dir = TempDir::new("history-kill");
    let path = dir.join("kv.db");
    let url = sqlite::url(&path);
    let mut rng = Rng::from_time();
    for round in 0..SQLITE_ROUNDS {
        let acknowledged = kill_a_writer(&url, round, &mut rng);
        runtime().block_on(async {
            let store = Store::open(&url)
                .await
                .expect("the file reopens after a kill");
            check_after_kill(&store, round, &acknowledged).await;
        });
        let conn = rusqlite::Connection::open(&path).expect("rusqlite opens the file");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("the integrity check runs");
        assert_eq!(check, "ok", "round {round}");
        let orphans: i64 = conn
            .query_row(
                "SELECT count(*) FROM kv_history AS h WHERE NOT EXISTS \
                 (SELECT 1 FROM kv_rows AS r WHERE r.tbl = h.tbl AND r.key = h.key)",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(orphans, 0, "records without their row");
    }
}

const POSTGRES_ROUNDS: u64 = 5;

/// Five times: a client process killed at a random moment, its statements
/// possibly in flight; rows and records agree afterwards.
#[test]
fn postgres_killed_client_leaves_no_change_without_its_record() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let db = runtime().block_on(pg::fresh_database(&server));
    let mut rng = Rng::from_time();
    for round in 0..POSTGRES_ROUNDS {
        let acknowledged = kill_a_writer(&db, round, &mut rng);
        runtime().block_on(async {
            let store = Store::open(&db).await.expect("the store opens");
            // The server ends the killed client's session; a statement it
            // was running is rolled back or committed whole. Wait until the
            // server has noticed, so that nothing is still in flight.
            let admin = pg::admin(&db).await;
            for _ in 0..100 {
                let busy: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                         AND pid <> pg_backend_pid() AND state = 'active' \
                         AND query LIKE '%kv_rows%'",
                        &[],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                if busy == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            check_after_kill(&store, round, &acknowledged).await;
            let orphans: i64 = admin
                .query_one(
                    "SELECT count(*) FROM kv_history AS h WHERE NOT EXISTS \
                     (SELECT 1 FROM kv_rows AS r WHERE r.tbl = h.tbl AND r.key = h.key)",
                    &[],
                )
                .await
                .expect("count")
                .get(0);
            assert_eq!(orphans, 0, "records without their row");
        });
    }
}
