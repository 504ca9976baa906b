//! The store: a backend, a clock, and typed tables over them.

use std::fmt;
use std::sync::Arc;

use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::files::{FileCleanupFailure, FileState, FileStore};
use crate::health::Replicas;
use crate::hooks::HookRegistry;
use crate::log::{Log, LogSchema};
use crate::quota::{Quota, QuotaSchema};
use crate::schema::KvSchema;
use crate::table::Table;

/// A handle to one storage backend holding any number of tables, logs and
/// quotas. Cheap to clone; clones share the backend.
///
/// ```
/// # async fn demo() -> kv_runtime::Result<()> {
/// let store = kv_runtime::Store::open("memory:").await?;
/// # let _ = store; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hooks: Arc<HookRegistry>,
    pub(crate) files: Arc<FileState>,
    pub(crate) replicas: Arc<Replicas>,
}

impl Store {
    /// A store in process memory (nothing persists).
    pub fn memory() -> Self {
        Store::with_backend(MemoryBackend::new())
    }

    /// A store over any backend, e.g. one of your own.
    pub fn with_backend(backend: impl Backend) -> Self {
        Store::from_arc(Arc::new(backend))
    }

    /// A store over a shared backend.
    pub fn from_arc(backend: Arc<dyn Backend>) -> Self {
        Store {
            backend,
            clock: Arc::new(SystemClock),
            hooks: Arc::default(),
            files: Arc::default(),
            replicas: Arc::default(),
        }
    }

    /// Opens a store from a URL:
    ///
    /// - `memory:`: in process memory;
    /// - `sqlite://path/to/file.db` (feature `sqlite`, on by default): an
    ///   embedded SQLite file, created when missing;
    /// - `postgres://user@host:port/db` or `postgresql://...` (feature
    ///   `postgres`): a PostgreSQL server shared by several app servers.
    ///
    /// An unknown scheme, a malformed URL, or a scheme whose feature is not
    /// compiled in is [`Error::Config`].
    pub async fn open(url: &str) -> Result<Self> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        // Messages here never echo the URL: it may hold a password.
        match scheme {
            "sqlite" => {
                #[cfg(feature = "sqlite")]
                {
                    let backend = crate::backend::sqlite::SqliteBackend::open_url(url).await?;
                    Ok(Store::with_backend(backend))
                }
                #[cfg(not(feature = "sqlite"))]
                Err(Error::Config(
                    "a `sqlite:` URL needs the `sqlite` feature of kv-runtime".to_owned(),
                ))
            }
            "postgres" | "postgresql" => {
                #[cfg(feature = "postgres")]
                {
                    let backend = crate::backend::postgres::PostgresBackend::open_url(url).await?;
                    Ok(Store::with_backend(backend))
                }
                #[cfg(not(feature = "postgres"))]
                Err(Error::Config(format!(
                    "a `{scheme}:` URL needs the `postgres` feature of kv-runtime"
                )))
            }
            "memory" => {
                let rest = &url["memory:".len()..];
                if !rest.is_empty() && rest != "//" {
                    return Err(Error::Config(
                        "a memory store takes no path or options; use `memory:`".to_owned(),
                    ));
                }
                Ok(Store::memory())
            }
            other => {
                let shown = if !other.is_empty()
                    && other.len() <= 32
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
                {
                    format!("unknown store scheme `{other}`")
                } else {
                    "not a store URL (no `scheme:` at its start)".to_owned()
                };
                Err(Error::Config(format!(
                    "{shown}; use `memory:`, `sqlite://path` or `postgres://...` (for a \
                     `key=value` PostgreSQL connection string, use \
                     `PostgresBackend::connect`)"
                )))
            }
        }
    }

    /// The same backend read through another clock (tests use
    /// [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(&self, clock: impl Clock) -> Self {
        Store {
            backend: Arc::clone(&self.backend),
            clock: Arc::new(clock),
            hooks: Arc::clone(&self.hooks),
            files: Arc::clone(&self.files),
            replicas: Arc::clone(&self.replicas),
        }
    }

    /// Sets the file store that `clean_files` tables delete unreferenced
    /// files from. Shared by every clone of this store.
    pub fn set_file_store(&self, files: impl FileStore) {
        self.files.set(Arc::new(files));
    }

    /// Takes the list of files that could not be deleted since the last
    /// call (each was also logged): the most recent
    /// [`KEPT_FAILURES`](crate::files::KEPT_FAILURES) of them, so that the
    /// list stays small whatever callers write.
    pub fn file_cleanup_failures(&self) -> Vec<FileCleanupFailure> {
        self.files.take_failures()
    }

    /// How many file deletions failed since this store was made (all of
    /// them, including those no longer in
    /// [`Store::file_cleanup_failures`]).
    pub fn file_cleanup_failure_count(&self) -> u64 {
        self.files.total_failures()
    }

    /// The typed table `S` of this store.
    pub fn table<S: KvSchema>(&self) -> Table<S> {
        Table::new(self.clone())
    }

    /// The typed log `L` of this store (`#[derive(Log)]`).
    pub fn log<L: LogSchema>(&self) -> Log<L> {
        Log::new(self.clone())
    }

    /// The quota `Q` of this store (`#[derive(Quota)]`).
    pub fn quota<Q: QuotaSchema>(&self) -> Quota<Q> {
        Quota::new(self.clone())
    }

    /// The backend, for untyped access and diagnostics.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.name())
            .field("clock", &self.clock)
            .finish()
    }
}
