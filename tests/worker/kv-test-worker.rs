//! `kv-test-worker`: the child processes of the integration tests. A test
//! that needs a second operating-system process (two processes racing on
//! one row, a writer killed with SIGKILL, a write made elsewhere) runs this
//! binary, whose path cargo gives the tests as
//! `env!("CARGO_BIN_EXE_kv-test-worker")` (see `tests/support/process.rs`).
//!
//! One subcommand per role. Each reports on stdout, one line per fact
//! (`word value...`), and exits non-zero when anything it checks fails, so
//! the parent test sees the failure; its stderr goes to the test's output.
//!
//! ```text
//! kv-test-worker increment    URL TASKS INCREMENTS START_AT_MS
//! kv-test-worker durability   URL ROUND
//! kv-test-worker durability-concurrent URL ROUND TASKS
//! kv-test-worker rate-limit   URL NOW_MS TRIES
//! kv-test-worker watch-writer URL
//! kv-test-worker deploy-v1    URL ROUNDS
//! kv-test-worker deploy-v2    URL ROUNDS
//! kv-test-worker history-race URL TASKS WRITES START_AT_MS
//! kv-test-worker history-kill URL ROUND
//! ```

#[allow(dead_code)] // the tests use tables the worker does not
#[path = "../support/tables.rs"]
mod tables;

use std::io::Write;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kv_runtime::{Ctx, ErrorCode, ManualClock, Store};
use tables::*;

const USAGE: &str = "usage:
  kv-test-worker increment    URL TASKS INCREMENTS START_AT_MS
  kv-test-worker durability   URL ROUND
  kv-test-worker durability-concurrent URL ROUND TASKS
  kv-test-worker rate-limit   URL NOW_MS TRIES
  kv-test-worker watch-writer URL
  kv-test-worker deploy-v1    URL ROUNDS
  kv-test-worker deploy-v2    URL ROUNDS
  kv-test-worker history-race URL TASKS WRITES START_AT_MS
  kv-test-worker history-kill URL ROUND";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["increment", url, tasks, increments, start_at] => {
            increment(url, number(tasks), number(increments), number(start_at))
        }
        ["durability", url, round] => durability(url, number(round)),
        ["durability-concurrent", url, round, tasks] => {
            durability_concurrent(url, number(round), number(tasks))
        }
        ["rate-limit", url, now, tries] => rate_limit(url, number(now), number(tries)),
        ["watch-writer", url] => watch_writer(url),
        ["deploy-v1", url, rounds] => deploy_v1(url, number(rounds)),
        ["deploy-v2", url, rounds] => deploy_v2(url, number(rounds)),
        ["history-race", url, tasks, writes, start_at] => {
            history_race(url, number(tasks), number(writes), number(start_at))
        }
        ["history-kill", url, round] => history_kill(url, number(round)),
        _ => {
            eprintln!("kv-test-worker: unknown arguments {args:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn number<T: FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| panic!("kv-test-worker: {text:?} is not a number\n{USAGE}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Prints one report line and flushes it: once printed, the parent may act
/// on it (kill this process, say).
fn report(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout works");
    out.flush().expect("stdout works");
}

/// `tasks` tasks, each making `increments` conflict-checked increments of
/// the [`Counter`] row (read, `set_expecting` with the row's `updated_at`,
/// retry on CONFLICT), all starting at the wall-clock instant `start_at`
/// (ms since the epoch) so that several processes race. Any error other
/// than CONFLICT fails the worker. Reports `successes N` and `conflicts M`.
fn increment(url: &str, tasks: u64, increments: u64, start_at: u64) {
    let (successes, conflicts) = runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let wait = start_at.saturating_sub(now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let tasks: Vec<_> = (0..tasks)
            .map(|_| {
                let t = store.table::<Counter>();
                tokio::spawn(async move {
                    let ctx = Ctx::internal();
                    let (mut ok, mut conflicts) = (0u64, 0u64);
                    while ok < increments {
                        let row = t
                            .get(CounterKey::Hits)
                            .await
                            .expect("get succeeds")
                            .expect("the counter row exists");
                        let next = Counter { n: row.value.n + 1 };
                        match t
                            .set_expecting(&ctx, CounterKey::Hits, next, row.updated_at)
                            .await
                        {
                            Ok(_) => ok += 1,
                            Err(e) => {
                                assert_eq!(e.code(), ErrorCode::Conflict, "{e}");
                                conflicts += 1;
                            }
                        }
                    }
                    (ok, conflicts)
                })
            })
            .collect();
        let mut totals = (0, 0);
        for task in tasks {
            let (ok, c) = task.await.expect("a worker task does not panic");
            totals.0 += ok;
            totals.1 += c;
        }
        totals
    });
    report(format_args!("successes {successes}"));
    report(format_args!("conflicts {conflicts}"));
}

/// Writes [`Entry`] rows `r<round>-<i>` in a loop, reporting `wrote KEY`
/// once each `set` returned Ok, then overwrites the row `latest` and
/// reports `latest I`; until killed (or, as a safety net, for 60 s).
/// Reports `ready` once the store is open.
fn durability(url: &str, round: u64) {
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let t = store.table::<Entry>();
        let ctx = Ctx::internal();
        report(format_args!("ready"));
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(60) {
            let key = format!("r{round}-{i}");
            t.set(&ctx, &key, entry(round, i))
                .await
                .expect("set succeeds");
            report(format_args!("wrote {key}"));
            // An overwrite of one row too: overwrites must survive as well.
            t.set(&ctx, "latest".to_owned(), entry(round, i))
                .await
                .expect("set succeeds");
            report(format_args!("latest {i}"));
            i += 1;
        }
    });
}

/// Like [`durability`] with `tasks` tasks writing at once (their writes
/// share transactions and commits): task `t` writes rows
/// `r<round>-t<t>-<i>`, reporting `wrote KEY` once each `set` returned
/// Ok, then overwrites the row `latest-t<t>` and reports `latest t<t> I`;
/// until killed (or, as a safety net, for 60 s). Reports `ready` once the
/// store is open.
fn durability_concurrent(url: &str, round: u64, tasks: u64) {
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        report(format_args!("ready"));
        let started = Instant::now();
        let writers: Vec<_> = (0..tasks)
            .map(|task| {
                let t = store.table::<Entry>();
                tokio::spawn(async move {
                    let ctx = Ctx::internal();
                    let mut i = 0;
                    while started.elapsed() < Duration::from_secs(60) {
                        let key = format!("r{round}-t{task}-{i}");
                        t.set(&ctx, &key, entry(round, i))
                            .await
                            .expect("set succeeds");
                        report(format_args!("wrote {key}"));
                        t.set(&ctx, format!("latest-t{task}"), entry(round, i))
                            .await
                            .expect("set succeeds");
                        report(format_args!("latest t{task} {i}"));
                        i += 1;
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("a writer task does not panic");
        }
    });
}

/// At the instant `now` (ms since the epoch, on a [`ManualClock`]), tries
/// `tries` concurrent [`Limited`] writes as the user `shared`; every
/// refusal must be RATE_LIMITED. Reports `admitted N`.
fn rate_limit(url: &str, now: i64, tries: u32) {
    let admitted = runtime().block_on(async {
        let store = Store::open(url)
            .await
            .expect("the worker opens the store")
            .with_clock(ManualClock::new(now));
        let table = store.table::<Limited>();
        let ctx = Ctx::user("shared");
        let tasks: Vec<_> = (0..tries)
            .map(|n| {
                let table = table.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move { table.set(&ctx, format!("k{n}"), Limited { n }).await })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            match task.await.expect("a worker task does not panic") {
                Ok(_) => admitted += 1,
                Err(e) => assert_eq!(e.code(), ErrorCode::RateLimited, "{e}"),
            }
        }
        admitted
    });
    report(format_args!("admitted {admitted}"));
}

/// On the [`Banner`] row `banner`: set, set, soft rm, restore, set, each
/// reported with the `updated_at` it produced (`set V`, `rm`), after
/// `pid P`; then `done`.
fn watch_writer(url: &str) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built")
        .block_on(async {
            let store = Store::open(url).await.expect("the worker opens the store");
            let t = store.table::<Banner>();
            report(format_args!("pid {}", std::process::id()));
            let one = t
                .set(&admin(), BannerKey::Banner, banner("one", 1))
                .await
                .unwrap();
            report(format_args!("set {}", one.updated_at));
            let two = t
                .set(&admin(), BannerKey::Banner, banner("two", 2))
                .await
                .unwrap();
            report(format_args!("set {}", two.updated_at));
            assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
            report(format_args!("rm"));
            let back = t.restore(&admin(), BannerKey::Banner).await.unwrap();
            report(format_args!("set {}", back.updated_at));
            let three = t
                .set(&admin(), BannerKey::Banner, banner("three", 3))
                .await
                .unwrap();
            report(format_args!("set {}", three.updated_at));
            report(format_args!("done"));
        });
}

/// Keys each deploy worker writes, per round.
const DEPLOY_KEYS: u64 = 10;

/// The old program of a rolling deploy: `rounds` times, writes its notes
/// `old-0..` (schema version 1) and reads the new program's `new-0..`.
/// Every write either succeeds or is refused with NEWER_SCHEMA (the row
/// was migrated or written by version 2); every read of a version 2 row is
/// UNREADABLE. Anything else fails the worker. Reports `ready` after its
/// first round and waits until the test has migrated its rows, then
/// reports `ok N`, `newer N`, `unreadable N`.
fn deploy_v1(url: &str, rounds: u64) {
    let (mut ok, mut newer, mut unreadable) = (0u64, 0u64, 0u64);
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let t = store.table::<deploy_v1::Note>();
        let ctx = Ctx::internal();
        for round in 0..rounds {
            for i in 0..DEPLOY_KEYS {
                let note = deploy_v1::Note {
                    text: format!("old-{i} round {round}"),
                };
                match t.set(&ctx, format!("old-{i}"), note).await {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::NewerSchema, "{e}");
                        newer += 1;
                    }
                }
                match t.get(format!("new-{i}")).await {
                    Ok(None) => {}
                    Ok(Some(row)) => panic!("version 1 read a version 2 row: {row:?}"),
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::Unreadable, "{e}");
                        unreadable += 1;
                    }
                }
            }
            if round == 0 {
                report(format_args!("ready"));
                // The test migrates once it reads `ready`: wait until this
                // program's own rows are version 2, so that the rounds
                // after this one meet migrated rows however the processes
                // are scheduled.
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    match t.get("old-0".to_owned()).await {
                        Err(e) if e.code() == ErrorCode::Unreadable => break,
                        Ok(_) => {}
                        Err(e) => panic!("version 1 reads its row: {e}"),
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the test never migrated the rows of version 1"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    report(format_args!("ok {ok}"));
    report(format_args!("newer {newer}"));
    report(format_args!("unreadable {unreadable}"));
}

/// The new program of a rolling deploy: `rounds` times, writes its notes
/// `new-0..` (version 2, with tags) and reads the old program's `old-0..`,
/// which must read (migrated from version 1 or written by version 2).
/// Reports `ready` after its first round and waits for the old program's
/// first row, then reports `read N`.
fn deploy_v2(url: &str, rounds: u64) {
    let mut read = 0u64;
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let t = store.table::<DeployNote>();
        let ctx = Ctx::internal();
        for round in 0..rounds {
            for i in 0..DEPLOY_KEYS {
                let note = DeployNote {
                    text: format!("new-{i} round {round}"),
                    tags: vec![format!("round-{round}")],
                };
                t.set(&ctx, format!("new-{i}"), note)
                    .await
                    .expect("version 2 writes its rows");
                if let Some(row) = t
                    .get(format!("old-{i}"))
                    .await
                    .expect("version 2 reads version 1 rows")
                {
                    assert!(row.value.text.starts_with(&format!("old-{i}")), "{row:?}");
                    read += 1;
                }
            }
            if round == 0 {
                report(format_args!("ready"));
                // The old program starts once it reads `ready`: wait for
                // its first row, so that the rounds after this one read
                // old rows however the processes are scheduled.
                let deadline = Instant::now() + Duration::from_secs(120);
                while t
                    .get("old-0".to_owned())
                    .await
                    .expect("version 2 reads version 1 rows")
                    .is_none()
                {
                    assert!(
                        Instant::now() < deadline,
                        "the old program never wrote its first row"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    });
    report(format_args!("read {read}"));
}

/// `tasks` tasks, each trying `writes` changes of the [`Recorded`] row
/// `shared`, all starting at the wall-clock instant `start_at`: mostly
/// conflict-checked sets over the version just read (refused with CONFLICT
/// when another writer got in between), and every fifth try a write that
/// cannot commit (a set over a version that was never the row's). Each
/// acknowledged set is reported as `ok VERSION BY I`; any error other than
/// CONFLICT fails the worker. Then `done`.
fn history_race(url: &str, tasks: u64, writes: u64, start_at: u64) {
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let wait = start_at.saturating_sub(now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let tasks: Vec<_> = (0..tasks)
            .map(|task| {
                let t = store.table::<Recorded>();
                tokio::spawn(async move {
                    let ctx = Ctx::internal();
                    let by = format!("p{}-t{task}", std::process::id());
                    for i in 0..writes {
                        let row = t
                            .get("shared".to_owned())
                            .await
                            .expect("get succeeds")
                            .expect("the shared row exists");
                        let expected = if i % 5 == 4 {
                            -1 // never a version: must not commit
                        } else {
                            row.updated_at
                        };
                        match t
                            .set_expecting(&ctx, "shared".to_owned(), recorded(&by, i), expected)
                            .await
                        {
                            Ok(done) => {
                                assert!(expected != -1, "a write over version -1 committed");
                                report(format_args!("ok {} {by} {i}", done.updated_at));
                            }
                            Err(e) => assert_eq!(e.code(), ErrorCode::Conflict, "{e}"),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a worker task does not panic");
        }
    });
    report(format_args!("done"));
}

/// Writes [`Recorded`] rows in a loop, until killed (or, as a safety net,
/// for 60 s): a new row `r<round>-<i>`, reported as `wrote KEY` once its
/// `set` returned; an overwrite of the row `latest`, reported as `latest
/// I`; and every third time a soft rm and a restore of `latest`, reported
/// as `rm` and `restore`. Reports `ready` once the store is open.
fn history_kill(url: &str, round: u64) {
    runtime().block_on(async {
        let store = Store::open(url).await.expect("the worker opens the store");
        let t = store.table::<Recorded>();
        let ctx = Ctx::internal();
        let by = format!("r{round}");
        report(format_args!("ready"));
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(60) {
            let key = format!("r{round}-{i}");
            t.set(&ctx, &key, recorded(&by, i))
                .await
                .expect("set succeeds");
            report(format_args!("wrote {key}"));
            t.set(&ctx, "latest".to_owned(), recorded(&by, i))
                .await
                .expect("set succeeds");
            report(format_args!("latest {i}"));
            if i % 3 == 2 {
                assert!(t.rm(&ctx, "latest".to_owned()).await.expect("rm succeeds"));
                report(format_args!("rm"));
                t.restore(&ctx, "latest".to_owned())
                    .await
                    .expect("restore succeeds");
                report(format_args!("restore"));
            }
            i += 1;
        }
    });
}
