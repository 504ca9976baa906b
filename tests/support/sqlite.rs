//! Stores over fresh SQLite files.

use std::path::Path;

use kv_runtime::backend::sqlite::SqliteBackend;
use kv_runtime::Store;

use super::tempdir::TempDir;

/// The store URL of the SQLite file at `path`.
pub fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A store over a new database file in its own temporary directory, and
/// the directory (removed when dropped, after the store): a conformance
/// fixture.
pub async fn temp_store() -> (Store, TempDir) {
    let dir = TempDir::new("sqlite-conformance");
    let backend = SqliteBackend::open(dir.join("kv.db"))
        .await
        .expect("a new SQLite database opens");
    (Store::with_backend(backend), dir)
}

/// A store over a fresh SQLite file `kv.db` in `dir`, opened by URL.
pub async fn store_in(dir: &TempDir) -> Store {
    let url = url(&dir.join("kv.db"));
    Store::open(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
}

/// kv's SQLite schema exactly as storage version 1 created it (tables
/// only; the version row is the test's to insert): a fixture for the tests
/// that migrate an old file.
pub const SCHEMA_V1: &str = "PRAGMA journal_mode = WAL;
CREATE TABLE kv_meta (
    name  TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE kv_rows (
    tbl        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER,
    updated_by TEXT,
    PRIMARY KEY (tbl, key)
) WITHOUT ROWID;
CREATE INDEX kv_rows_deleted ON kv_rows (tbl, deleted_at)
    WHERE deleted_at IS NOT NULL;
CREATE TABLE kv_rate (
    scope  TEXT    NOT NULL,
    bucket TEXT    NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX kv_rate_bucket ON kv_rate (scope, bucket, at);
";

/// What storage versions 2 and 3 added to [`SCHEMA_V1`]: with it, the
/// schema exactly as version 3 left it.
pub const SCHEMA_V1_TO_V3: &str = "CREATE TABLE IF NOT EXISTS kv_tables (
    tbl           TEXT    PRIMARY KEY NOT NULL,
    version_floor INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE kv_rows ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;
";
