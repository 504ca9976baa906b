//! The test PostgreSQL server, and a database of its own for each test.
//!
//! The server comes from `KV_TEST_POSTGRES_URL` (scripts/test.sh starts a
//! private one and sets it). Without it the tests skip loudly, except in
//! CI, where they fail (see `skip`).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use kv_runtime::Store;
use tokio_postgres::NoTls;

/// The test server's URL, or `None` (after printing why) when the tests
/// should skip. Panics in CI, where skipping would hide missing coverage.
pub fn server_url() -> Option<String> {
    match std::env::var("KV_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            super::skip::skip(
                "PostgreSQL test: KV_TEST_POSTGRES_URL is not set",
                "Run scripts/test.sh, which starts a private PostgreSQL server and sets it.",
            );
            None
        }
    }
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// An admin connection to the server at `url`, driven on the current runtime.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Creates an empty database on the server at `url` and returns its URL.
///
/// Each test gets its own database, so tests running in parallel never see
/// each other's rows, change notifications (LISTEN/NOTIFY is per database)
/// or schema locks. Databases left by test processes that have exited are
/// dropped on first use.
pub async fn fresh_database(url: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    static SWEPT: AtomicBool = AtomicBool::new(false);
    let client = admin(url).await;
    if !SWEPT.swap(true, Ordering::SeqCst) {
        drop_stale_databases(&client).await;
    }
    let name = format!(
        "kv_case_{}_{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    );
    // The name is made here from digits, not from input: no injection.
    let create = format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'");
    // A loaded server has refused a CREATE DATABASE once in many runs:
    // retry a few times before failing, and say why.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match client.batch_execute(&create).await {
            Ok(()) => break,
            Err(e) if attempt < 5 => {
                eprintln!("creating test database {name} failed (attempt {attempt}): {e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => panic!("cannot create test database {name}: {e:?}"),
        }
    }
    with_database(url, &name)
}

/// Drops `kv_case_<pid>_<n>` databases whose process is gone.
async fn drop_stale_databases(client: &tokio_postgres::Client) {
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'kv\\_case\\_%'",
            &[],
        )
        .await
        .unwrap_or_default();
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Best effort: a database in use elsewhere stays.
        let _ = client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .await;
    }
}

/// A store over a fresh, empty database of the server at `url`.
pub async fn fresh_store(url: &str) -> Store {
    let db = fresh_database(url).await;
    Store::open(&db)
        .await
        .unwrap_or_else(|e| panic!("cannot open a store on {db}: {e}"))
}
