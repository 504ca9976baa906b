//! Stored files referenced by rows: `#[kv(file)]` fields and `clean_files`.
//!
//! A field marked `#[kv(file)]` holds the id of a file kept in a
//! [`FileStore`]. On a table declared with `clean_files`, a file id that an
//! overwrite, a hard delete or a purge leaves unreferenced is deleted from
//! the file store: unreferenced by the row, and by every other row of the
//! table, live or soft-deleted (the table is read to check, so keep
//! `clean_files` tables small; a reference written by another call at the
//! same moment can still be missed). A soft delete keeps the files, so
//! `restore` brings the row back intact. A file that cannot be deleted is
//! logged and recorded
//! ([`Store::file_cleanup_failures`](crate::Store::file_cleanup_failures)),
//! never fatal to the write.
//!
//! # What a file store must check
//!
//! File ids come from stored values, and on a table that untrusted callers
//! may write, from those callers. [`FileStore::delete`] must delete only
//! files it owns: refuse ids that could name anything else (paths, `..`,
//! other objects of the bucket), ideally ids it did not mint itself, as
//! [`LocalDirFileStore`] does (its ids are 32 hex digits, checked on
//! delete).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::schema::BoxFuture;

/// A type that can hold stored-file ids: `String`, `Option<T>`, `Vec<T>`
/// (and [`FileId`]). Implement it for your own wrapper types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a file id, so it cannot be a `#[kv(file)]` field",
    label = "this field is marked `#[kv(file)]`",
    note = "a file field is a `String`, `kv_runtime::files::FileId`, or an `Option`/`Vec` of them"
)]
pub trait FileField {
    /// Appends the file ids held by `self` to `out`.
    fn collect_file_ids<'a>(&'a self, out: &mut Vec<&'a str>);
}

impl FileField for String {
    fn collect_file_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        if !self.is_empty() {
            out.push(self);
        }
    }
}

impl<T: FileField> FileField for Option<T> {
    fn collect_file_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        if let Some(inner) = self {
            inner.collect_file_ids(out);
        }
    }
}

impl<T: FileField> FileField for Vec<T> {
    fn collect_file_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        for item in self {
            item.collect_file_ids(out);
        }
    }
}

/// The id of a stored file, as a [`FileStore`] hands it out.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct FileId(pub String);

impl FileId {
    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FileField for FileId {
    fn collect_file_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        self.0.collect_file_ids(out);
    }
}

/// Where stored files live. Implement it over your object store; a
/// local-directory implementation ships ([`LocalDirFileStore`]). See the
/// [module documentation](self) for what it must check.
pub trait FileStore: Send + Sync + fmt::Debug + 'static {
    /// Deletes the file `id`. Deleting a file that does not exist is not an
    /// error; an id that is not one of this store's must be refused (an
    /// error), never deleted.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>>;
}

/// Files in one local directory, named by the ids the store mints (32
/// lowercase hex digits). It deletes only files named like that: another
/// name in the directory (`.env`, the database file) is never deleted,
/// whatever a row holds.
#[derive(Clone, Debug)]
pub struct LocalDirFileStore {
    dir: PathBuf,
}

impl LocalDirFileStore {
    /// A store over `dir`, created when missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(LocalDirFileStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` as a new file and returns its id (random, 32 hex
    /// digits).
    pub fn put(&self, bytes: &[u8]) -> io::Result<FileId> {
        let id = random_id();
        std::fs::write(self.dir.join(&id), bytes)?;
        Ok(FileId(id))
    }

    /// The path of file `id`, refusing ids that could leave the directory.
    pub fn path(&self, id: &str) -> io::Result<PathBuf> {
        let safe = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && id != "."
            && id != "..";
        if safe {
            Ok(self.dir.join(id))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{id:?} is not a file id of this store"),
            ))
        }
    }
}

/// Whether `id` has the form of the ids [`LocalDirFileStore::put`] mints.
fn is_minted(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl FileStore for LocalDirFileStore {
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            if !is_minted(id) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{:?} is not an id this store minted (32 hex digits); the file is left \
                         alone",
                        crate::error::shorten(id)
                    ),
                ));
            }
            let path = self.path(id)?;
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

/// A file that could not be deleted after its row stopped referencing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCleanupFailure {
    /// The table.
    pub table: &'static str,
    /// The file id.
    pub file_id: String,
    /// Why the deletion failed.
    pub reason: String,
}

fn random_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// How many recent cleanup failures a store keeps for
/// [`Store::file_cleanup_failures`](crate::Store::file_cleanup_failures);
/// older ones are only counted.
pub const KEPT_FAILURES: usize = 100;

/// The file store of a [`Store`](crate::Store), and the files it failed to
/// delete (the most recent [`KEPT_FAILURES`], and a count of all).
#[derive(Debug, Default)]
pub(crate) struct FileState {
    store: RwLock<Option<Arc<dyn FileStore>>>,
    failures: Mutex<VecDeque<FileCleanupFailure>>,
    total_failures: AtomicU64,
}

impl FileState {
    /// Sets the file store.
    pub(crate) fn set(&self, files: Arc<dyn FileStore>) {
        *self.store.write().unwrap_or_else(PoisonError::into_inner) = Some(files);
    }

    /// Takes the failures recorded since the last call (the most recent
    /// [`KEPT_FAILURES`] of them).
    pub(crate) fn take_failures(&self) -> Vec<FileCleanupFailure> {
        let mut kept = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        kept.drain(..).collect()
    }

    /// How many deletions failed since the store was made.
    pub(crate) fn total_failures(&self) -> u64 {
        self.total_failures.load(Ordering::Relaxed)
    }

    /// Deletes the files `doomed`; a file that cannot be deleted is logged
    /// and recorded, never an error.
    pub(crate) async fn delete(&self, table: &'static str, doomed: &[&str]) {
        let files = self
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for &id in doomed.iter() {
            let result = match &files {
                Some(files) => files.delete(id).await.map_err(|e| e.to_string()),
                None => Err("no file store is set on this store (Store::set_file_store)".into()),
            };
            if let Err(reason) = result {
                tracing::warn!(
                    target: "kv_runtime::files",
                    table,
                    file_id = id,
                    "could not delete an unreferenced file: {reason}"
                );
                self.total_failures.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::file_cleanup_failed(table);
                let mut kept = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.len() == KEPT_FAILURES {
                    kept.pop_front();
                }
                kept.push_back(FileCleanupFailure {
                    table,
                    file_id: crate::error::shorten(id),
                    reason,
                });
            }
        }
    }
}

/// File ids referenced by `old` but not by `new`, sorted, each once.
pub(crate) fn unreferenced<'a>(old: &[&'a str], new: &[&str]) -> Vec<&'a str> {
    let new: std::collections::HashSet<&str> = new.iter().copied().collect();
    let mut out: Vec<&'a str> = old.iter().copied().filter(|id| !new.contains(id)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_ids_from_nested_fields() {
        let v: Vec<Option<String>> = vec![Some("a".into()), None, Some(String::new())];
        let b = FileId("b".into());
        let mut out = Vec::new();
        v.collect_file_ids(&mut out);
        b.collect_file_ids(&mut out);
        assert_eq!(out, ["a", "b"]);
    }

    #[test]
    fn unreferenced_ids_are_the_difference() {
        assert_eq!(unreferenced(&["a", "b", "a", "c"], &["b"]), ["a", "c"]);
        assert!(unreferenced(&["a"], &["a"]).is_empty());
    }

    #[test]
    fn local_store_refuses_escaping_ids() {
        let dir = std::env::temp_dir().join(format!("kv-files-{}", random_id()));
        let store = LocalDirFileStore::new(&dir).unwrap();
        for bad in ["", "..", "../etc/passwd", "a/b", "a\0b"] {
            assert!(store.path(bad).is_err(), "{bad:?}");
        }
        let id = store.put(b"hello").unwrap();
        assert!(is_minted(id.as_str()));
        assert_eq!(
            std::fs::read(store.path(id.as_str()).unwrap()).unwrap(),
            b"hello"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(store.delete(id.as_str())).unwrap();
        assert!(!store.path(id.as_str()).unwrap().exists());
        rt.block_on(store.delete(id.as_str())).unwrap();
        // Names it did not mint are never deleted, even safe ones.
        for other in [".env", "kv.db", "ABCDEF0123456789abcdef0123456789"] {
            std::fs::write(dir.join(other), b"keep").unwrap();
            assert!(rt.block_on(store.delete(other)).is_err(), "{other}");
            assert!(dir.join(other).exists(), "{other}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
