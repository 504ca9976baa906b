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
