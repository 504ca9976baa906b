//! A rolling deploy, with real processes: the old program (at schema
//! version one) and the new one (version two) write the same table at once,
//! on SQLite and on PostgreSQL, while `migrate_all` runs. Version 2 reads version 1's
//! rows migrated; version 1 gets UNREADABLE on version 2 rows and
//! NEWER_SCHEMA instead of overwriting them; at the end every row is
//! version 2 and nothing was lost.

mod support;

use kv_runtime::{Ctx, Store};
use support::process::{finish, lines, reported, spawn};
use support::tables::DeployNote;
use support::wait::BOUND;
use support::{pg, sqlite, tempdir::TempDir};

const ROUNDS: &str = "40";
const KEYS: u64 = 10;

fn wait_ready(rx: &std::sync::mpsc::Receiver<String>, who: &str) {
    loop {
        let line = rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("{who} never got ready"));
        if line == "ready" {
            return;
        }
    }
}

async fn rolling_deploy(url: &str) {
    let store = Store::open(url).await.expect("the test opens the store");
    let new = store.table::<DeployNote>();
    let admin = Ctx::internal();

    // The new program starts first; the old one joins once version 2 rows exist.
    let mut v2 = spawn("deploy-v2", &[url, ROUNDS]);
    let v2_lines = lines(&mut v2);
    wait_ready(&v2_lines, "the version 2 worker");
    let mut v1 = spawn("deploy-v1", &[url, ROUNDS]);
    let v1_lines = lines(&mut v1);
    wait_ready(&v1_lines, "the version 1 worker");

    // Migrate while both write.
    let mut passes = 0;
    while passes < 3 {
        new.migrate_all(&admin)
            .await
            .expect("migrate_all while both write");
        passes += 1;
    }
    // The reports come through the reader threads of `lines`: all of them
    // once the worker has exited and its thread has seen the end.
    let collect = |child: std::process::Child, rx: std::sync::mpsc::Receiver<String>| {
        finish(child);
        rx.iter().collect::<Vec<String>>().join("\n")
    };
    let v1_out = collect(v1, v1_lines);
    let v2_out = collect(v2, v2_lines);
    eprintln!("version 1 reported:\n{v1_out}\nversion 2 reported:\n{v2_out}");
    let unreadable: u64 = reported(&v1_out, "unreadable").parse().unwrap();
    assert!(unreadable > 0, "version 1 met version 2 rows: {v1_out}");
    let ok: u64 = reported(&v1_out, "ok").parse().unwrap();
    let newer: u64 = reported(&v1_out, "newer").parse().unwrap();
    assert_eq!(ok + newer, 40 * KEYS, "every old write was done or refused");
    assert!(newer > 0, "migrated rows refused the old program: {v1_out}");
    let read: u64 = reported(&v2_out, "read").parse().unwrap();
    assert!(read > 0, "version 2 read old rows: {v2_out}");

    // The old program is gone: one more pass, and every row is version 2.
    let done = new.migrate_all(&admin).await.expect("the last pass");
    assert!(done.is_complete(), "{done:?}");
    let rows = store
        .backend()
        .scan("deployNote", None, 1000)
        .await
        .expect("scan");
    assert_eq!(rows.len() as u64, 2 * KEYS, "no row lost");
    for raw in &rows {
        assert_eq!(raw.value.schema(), 2, "{}", raw.key);
        let row = new.get(raw.key.clone()).await.unwrap().expect("live");
        if raw.key.starts_with("new-") {
            // Never clobbered by the old program: its tags are there.
            assert_eq!(row.value.tags.len(), 1, "{row:?}");
        } else {
            assert!(row.value.text.starts_with(&raw.key), "{row:?}");
        }
    }
}

#[test]
fn a_rolling_deploy_on_sqlite_loses_nothing() {
    let dir = TempDir::new("rolling-deploy");
    let url = sqlite::url(&dir.join("kv.db"));
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(rolling_deploy(&url));
}

#[test]
fn a_rolling_deploy_on_postgres_loses_nothing() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let db = runtime.block_on(pg::fresh_database(&server));
    runtime.block_on(rolling_deploy(&db));
}
