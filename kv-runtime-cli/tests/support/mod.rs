//! Helpers of the `kv` binary's tests: running it, temporary directories,
//! a fresh PostgreSQL database per test (from `KV_TEST_POSTGRES_URL`, as
//! the workspace's `scripts/test.sh` sets it; without it the PostgreSQL
//! tests skip loudly, and fail in CI).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use kv_runtime::backend::RawRow;
use kv_runtime::Store;

pub const KV: &str = env!("CARGO_BIN_EXE_kv");

/// `kv ARGS...` with `KV_URL` unset.
pub fn kv(args: &[&str]) -> Output {
    Command::new(KV)
        .args(args)
        .env_remove("KV_URL")
        .stdin(Stdio::null())
        .output()
        .expect("kv runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub fn exits(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kv-cli-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn sqlite(&self, name: &str) -> String {
        format!("sqlite://{}", self.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn in_ci() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    !ci.is_empty() && ci != "false" && ci != "0"
}

/// The test server's URL, or `None` after saying loudly why the test
/// skips (a failure in CI).
pub fn pg_server() -> Option<String> {
    match std::env::var("KV_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let why = "PostgreSQL test: KV_TEST_POSTGRES_URL is not set";
            assert!(!in_ci(), "{why}, and CI is set: run scripts/test.sh");
            eprintln!("\n*** SKIPPED: {why}. Run scripts/test.sh. ***\n");
            None
        }
    }
}

/// A new empty database on the server at `server`; its URL.
pub async fn fresh_pg(server: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("the test server accepts a connection");
    tokio::spawn(connection);
    let name = format!(
        "kv_case_{}_cli{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    client
        .batch_execute(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
        ))
        .await
        .expect("a test database");
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{name}{query}", &base[..path])
}

/// One table: name, rows, deleted rows, floor, and its rows.
pub type Dumped = (String, u64, u64, Option<i64>, Vec<Row>);

/// Every row of every table of `store`, and the tables, as `(table info,
/// rows)`, values as JSON (PostgreSQL gives equal JSON, not the same text).
pub async fn dump(store: &Store) -> Vec<Dumped> {
    let backend = store.backend();
    let mut out = Vec::new();
    for t in backend.tables().await.unwrap() {
        let rows = backend.scan(&t.name, None, 1_000_000).await.unwrap();
        out.push((
            t.name.clone(),
            t.rows,
            t.deleted_rows,
            t.version_floor,
            rows.iter().map(Row::of).collect(),
        ));
    }
    out
}

/// A row with its value as JSON.
#[derive(Debug, PartialEq)]
pub struct Row {
    pub key: String,
    pub value: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub updated_by: Option<String>,
}

impl Row {
    pub fn of(r: &RawRow) -> Row {
        Row {
            key: r.key.clone(),
            value: serde_json::from_str(r.value.json()).unwrap(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
            updated_by: r.updated_by.as_deref().map(str::to_owned),
        }
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}
