//! The SQLite backend (feature `sqlite`, on by default): the embedded
//! default for a single server. Open it with
//! [`Store::open("sqlite://path/to/kv.db")`](crate::Store::open),
//! [`SqliteBackend::open`] or [`SqliteBackend::open_with`].
//!
//! # Storage
//!
//! One database file (created when missing; its directory must exist) in
//! write-ahead-log (WAL) mode, beside which SQLite keeps `-wal` and `-shm`
//! files while it is open. Rows of every table live in one table
//! `kv_rows (tbl, key, value, created_at, updated_at, deleted_at,
//! updated_by)` keyed by `(tbl, key)`, values as JSON text; keys compare
//! with SQLite's BINARY collation, which is the byte order of their UTF-8
//! text. The rate limiter keeps a log of admitted writes per
//! `(scope, bucket)` in `kv_rate`. `kv_tables` holds each table's version
//! floor (the highest `updated_at` of a row hard-deleted or purged from it;
//! schema version 2), which keeps a re-created row from reusing a version.
//! `kv_history` (schema version 4) holds the history records of tables
//! declared with `history`, keyed by `(tbl, key, version)`, each written
//! in the transaction of its change. `kv_meta` holds the schema version:
//! the
//! schema is created and migrated on open, in one transaction, and a file
//! whose version is newer than this library knows is refused with
//! [`Error::Config`], as are a file that is not a SQLite database, one whose
//! header or schema is corrupt, a read-only one and a path that cannot be
//! created; such files are not written to. (Damage deeper in a file is not
//! looked for at open, which would read the whole file: it surfaces as
//! [`Error::Backend`] when the damaged rows are read.) Every statement is
//! parameterised and prepared once per connection (`prepare_cached`).
//!
//! # Durability
//!
//! Each mutation (`set`, `rm`, `restore`, `purge`, a rate-limit hit) runs
//! inside a `BEGIN IMMEDIATE` transaction doing the conflict check, the
//! version bump and the write; it is acknowledged only after the `COMMIT`
//! that holds it returned. Writes that wait for the writer connection at
//! the same time share one transaction and one commit (group commit): each
//! runs in a savepoint of its own, so that one that fails is undone alone;
//! each one's check sees the writes before it in the group; and if the
//! commit fails, every write of the group fails with nothing changed. By
//! default ([`Durability::PowerLoss`]) the connection runs with
//! `synchronous = FULL`: the commit is flushed to the disk before it is
//! acknowledged, so acknowledged writes survive `kill -9` of the process and
//! also an operating-system crash or a power loss. kv's state is written
//! rarely (by admins, by cron jobs) and is visible to every user when wrong,
//! so the cost of one flush per commit is the right default; concurrent
//! writers share that flush.
//! [`Durability::ProcessCrash`] (`synchronous = NORMAL`) is the cheaper
//! choice where losing the last writes on a power loss is acceptable: in WAL
//! mode a committed transaction is already in the log file (in the operating
//! system's cache) when it is acknowledged, so it still survives a crash of
//! the process, which cannot take the kernel's cache with it.
//!
//! # Threads and processes
//!
//! SQLite calls block, so the async runtime's threads run only the ones
//! that cannot wait: a `get` is answered on the calling thread when a
//! reader connection is idle at that moment and the stored value is at
//! most 16 KiB (a lookup by primary key in pages the operating system has
//! cached: microseconds, and with a busy timeout of zero it never waits
//! for a lock). Everything else runs on [`tokio::task::spawn_blocking`]:
//! reads use a small pool of reader connections (4 by default), which in
//! WAL mode run concurrently with each other and with the writer; writes go
//! through one writer connection, queued (waiting writers hold no thread)
//! and committed in groups by one blocking thread at a time. Several
//! processes may share the file: `BEGIN IMMEDIATE` takes the database's
//! write lock before the row is read, so a conflict-checked write is atomic
//! across processes too. A call that finds the lock held by another
//! process retries with short random pauses. Every call has one deadline
//! ([`SqliteOptions::timeout`], 5 s by default) covering all it waits for
//! (a free reader, this process's earlier writes, another process's lock):
//! at the deadline it fails with [`Error::Backend`] and changes nothing, as
//! does any other SQLite failure; nothing here panics on a storage error. Dropping the
//! last handle closes the connections on the dropping thread, where SQLite
//! may checkpoint the log into the file: drop stores at shutdown, not per
//! request.
//!
//! # Change feed
//!
//! [`Backend::feed`] reports the writes made through this
//! `SqliteBackend` (every store sharing it), each published after the
//! commit that holds it and before the next group starts, in commit order. Writes made by other processes sharing the file are not
//! reported: use the PostgreSQL backend when several servers must see each
//! other's changes.

mod open;
mod ops;
mod snapshot;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::Semaphore;

pub use open::{Durability, SqliteOptions, SCHEMA_VERSION};
/// rusqlite's open flags, for [`SqliteOptions::open_flags`].
pub use rusqlite::OpenFlags;
use writer::{Pending, Writer};

use super::rate::SWEEP_EVERY;
use super::{
    Backend, BackendHealth, ChangeFeed, Check, CheckState, FeedHealth, HistoryPolicy,
    HistoryRecord, ImportOptions, Imported, Outcome, Payload, Purge, RateCounter, RateDecision,
    RawRow, ReadNow, Removed, Restored, RmMode, RowImport, Snapshot, Stored, TableInfo, Window,
    Write,
};
use crate::error::{Error, Result};

/// A kv store in one SQLite file. See the [module documentation](self).
///
/// Cheap to share behind an `Arc` (as [`Store`](crate::Store) does); the
/// connections close when the last handle is dropped.
pub struct SqliteBackend {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    options: SqliteOptions,
    /// The one connection that writes, and the writes queued for it
    /// (group commit, `writer.rs`).
    writer: Writer,
    /// Idle reader connections; `reader_slots` has one permit per reader.
    readers: Mutex<Vec<Connection>>,
    reader_slots: Arc<Semaphore>,
    feed: ChangeFeed,
    rate_hits: AtomicU64,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.shared.path)
            .field("options", &self.shared.options)
            .finish()
    }
}

/// Waits for `fut` until `deadline`: `None` when the deadline came first.
/// Outside a Tokio runtime (no timer) it simply waits.
async fn within<T>(deadline: Instant, fut: impl std::future::Future<Output = T>) -> Option<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Some(fut.await);
    }
    tokio::time::timeout_at(deadline.into(), fut).await.ok()
}

/// Runs blocking work off the async runtime's threads (inline when called
/// outside a Tokio runtime, where there is no such thread to protect).
async fn run_blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|e| Error::backend("the SQLite worker task failed", e))?,
        Err(_) => f(),
    }
}

impl SqliteBackend {
    /// Opens the database named by a URL: `sqlite://relative/path.db`,
    /// `sqlite:///absolute/path.db` or `sqlite:path.db`, with default
    /// [`SqliteOptions`]. The file is created when missing; its directory
    /// must exist. Anything wrong with the URL or the file is
    /// [`Error::Config`].
    pub async fn open_url(url: &str) -> Result<Self> {
        let path = open::path_from_url(url)?;
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating when missing) the database file at `path` with
    /// default [`SqliteOptions`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (creating when missing) the database file at `path`.
    ///
    /// Fails with [`Error::Config`], leaving the file untouched, when the
    /// directory is missing, the path is a directory or not writable, the
    /// file is not a SQLite database or is corrupt, or its schema is newer
    /// than this library knows.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        run_blocking(move || Self::open_blocking(path, options)).await
    }

    fn open_blocking(path: PathBuf, options: SqliteOptions) -> Result<Self> {
        let writer = open::open_writer(&path, &options)?;
        let readers = (0..options.readers)
            .map(|_| open::open_reader(&path, &options))
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteBackend {
            shared: Arc::new(Shared {
                reader_slots: Arc::new(Semaphore::new(readers.len())),
                readers: Mutex::new(readers),
                writer: Writer::new(writer),
                feed: ChangeFeed::new(),
                rate_hits: AtomicU64::new(0),
                path,
                options,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs a read on a pooled reader connection, off the runtime's threads,
    /// within the call's deadline.
    async fn read<T, F>(&self, op: &'static str, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let deadline = Instant::now() + self.shared.options.timeout;
        let slots = Arc::clone(&self.shared.reader_slots);
        let permit = within(deadline, slots.acquire_owned())
            .await
            .ok_or_else(|| self.shared.late(op, "a free read connection"))?
            .map_err(|e| Error::backend("the SQLite reader pool is closed", e))?;
        let shared = Arc::clone(&self.shared);
        run_blocking(move || {
            let _permit = permit;
            let conn = shared.take_reader()?;
            let out = ops::retry_busy(deadline, || f(&conn));
            shared.give_back_reader(conn);
            out.map_err(|e| shared.error(op, e))
        })
        .await
    }

    /// Runs a mutation on the writer connection, off the runtime's threads,
    /// in a group commit with the other writes waiting (`writer.rs`), and
    /// publishes the change it made after the commit, in commit order.
    /// Once queued, the write completes even if the caller stops waiting,
    /// unless it was still queued at its deadline.
    async fn write<T, F, P>(&self, op: &'static str, f: F, publish: P) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
        P: FnOnce(&T, &ChangeFeed) + Send + 'static,
    {
        let deadline = Instant::now() + self.shared.options.timeout;
        let (job, mut ticket) = Pending::new(op, deadline, f, publish);
        Writer::submit(&self.shared, Box::new(job));
        let answer = match within(deadline, &mut ticket.answer).await {
            Some(answer) => answer,
            None if ticket.cancel() => {
                return Err(self.shared.late(op, "this process's earlier writes"))
            }
            // It started before the deadline: it ends soon, or fails at
            // the deadline if another process holds the lock.
            None => (&mut ticket.answer).await,
        };
        answer.map_err(|e| Error::backend("the SQLite writer failed before answering", e))?
    }

    /// Answers a `get` on the calling thread when that is quick and cannot
    /// wait: a reader connection is idle right now and the stored value is
    /// small. Anything else (all readers busy, a large value, another
    /// connection's lock, any error) is left to [`SqliteBackend::get`].
    fn get_inline(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow {
        let shared = &self.shared;
        let Ok(_permit) = shared.reader_slots.try_acquire() else {
            return ReadNow::NeedsIo;
        };
        let Some(conn) = shared
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        else {
            return ReadNow::NeedsIo;
        };
        let found = ops::get_inline(&conn, table, key, INLINE_MAX_VALUE_BYTES);
        shared.give_back_reader(conn);
        match found {
            Ok(ops::Inline::Row(row)) => {
                read(row.as_ref());
                ReadNow::Answered
            }
            Ok(ops::Inline::TooLarge) | Err(_) => ReadNow::NeedsIo,
        }
    }
}

/// The largest value [`SqliteBackend::get_inline`] reads on the calling
/// thread: a few pages, read in microseconds from the page cache. Larger
/// ones are read on the blocking pool.
const INLINE_MAX_VALUE_BYTES: i64 = 16 * 1024;

impl Shared {
    fn take_reader(&self) -> Result<Connection> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            // A reader was lost (its task panicked): open a replacement.
            None => open::open_reader(&self.path, &self.options)
                .map_err(|e| Error::backend("cannot open a SQLite read connection", e)),
        }
    }

    fn give_back_reader(&self, conn: Connection) {
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
    }

    /// The error of a call that reached its deadline waiting for `what`.
    fn late(&self, op: &str, what: &str) -> Error {
        Error::backend_msg(format!(
            "SQLite {op} on `{}` gave up after {:?} waiting for {what}; nothing was changed",
            self.path.display(),
            self.options.timeout
        ))
    }

    fn error(&self, op: &str, e: rusqlite::Error) -> Error {
        let path = self.path.display();
        if ops::sqlite_code(&e) == Some(rusqlite::ErrorCode::DatabaseBusy) {
            Error::backend(
                format!(
                    "SQLite {op} on `{path}` gave up after {:?}: another connection held the \
                     database lock; nothing was changed",
                    self.options.timeout
                ),
                e,
            )
        } else {
            Error::backend(format!("SQLite {op} on `{path}` failed"), e)
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow {
        self.get_inline(table, key, read)
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        let (table, key) = (table.to_owned(), key.to_owned());
        self.read("get", move |conn| ops::get(conn, &table, &key))
            .await
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        let (table, after) = (table.to_owned(), after.map(str::to_owned));
        self.read("list", move |conn| {
            ops::list(conn, &table, after.as_deref(), limit)
        })
        .await
    }

    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        let (table, after) = (table.to_owned(), after.map(str::to_owned));
        self.read("scan", move |conn| {
            ops::scan(conn, &table, after.as_deref(), limit)
        })
        .await
    }

    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>> {
        let owned = OwnedWrite::new(table, &write);
        let tbl = owned.table.clone();
        self.write(
            "set",
            move |conn| ops::set(conn, &owned.table, &owned.write(), &value),
            move |out, feed| {
                if let Outcome::Done(stored) = out {
                    feed.publish(&tbl, &stored.row.key, Some(&stored.row));
                }
            },
        )
        .await
    }

    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>> {
        let owned = OwnedWrite::new(table, &write);
        let (tbl, key) = (owned.table.clone(), owned.key.clone());
        self.write(
            "rm",
            move |conn| ops::rm(conn, &owned.table, &owned.write(), mode),
            move |out, feed| {
                if let Outcome::Done(Removed::Row(_)) = out {
                    feed.publish(&tbl, &key, None);
                }
            },
        )
        .await
    }

    async fn restore(&self, table: &str, write: Write<'_>) -> Result<Outcome<Restored>> {
        let owned = OwnedWrite::new(table, &write);
        let tbl = owned.table.clone();
        self.write(
            "restore",
            move |conn| ops::restore(conn, &owned.table, &owned.write()),
            move |out, feed| {
                if let Outcome::Done(Restored::Revived(row)) = out {
                    feed.publish(&tbl, &row.key, Some(row));
                }
            },
        )
        .await
    }

    async fn purge(&self, table: &str, purge: Purge<'_>) -> Result<Vec<RawRow>> {
        let tbl = table.to_owned();
        let by = purge.updated_by.map(str::to_owned);
        let (deleted_before, now, history) = (purge.deleted_before, purge.now, purge.history);
        // Purged rows were already invisible: no change to publish.
        self.write(
            "purge",
            move |conn| {
                let purge = Purge {
                    deleted_before,
                    now,
                    updated_by: by.as_deref(),
                    history,
                };
                ops::purge(conn, &tbl, &purge)
            },
            |_, _| {},
        )
        .await
    }

    async fn history(
        &self,
        table: &str,
        key: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let (table, key) = (table.to_owned(), key.to_owned());
        self.read("history", move |conn| {
            ops::history(conn, &table, &key, before, limit)
        })
        .await
    }

    async fn tables(&self) -> Result<Vec<TableInfo>> {
        self.read("tables", ops::tables).await
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        let deadline = Instant::now() + self.shared.options.timeout;
        let slots = Arc::clone(&self.shared.reader_slots);
        let permit = within(deadline, slots.acquire_owned())
            .await
            .ok_or_else(|| self.shared.late("snapshot", "a free read connection"))?
            .map_err(|e| Error::backend("the SQLite reader pool is closed", e))?;
        let shared = Arc::clone(&self.shared);
        let conn = run_blocking(move || {
            let conn = shared.take_reader()?;
            match ops::retry_busy(deadline, || snapshot::begin(&conn)) {
                Ok(()) => Ok(conn),
                Err(e) => {
                    let error = shared.error("snapshot", e);
                    snapshot::end(&shared, conn);
                    Err(error)
                }
            }
        })
        .await?;
        Ok(Box::new(snapshot::SqliteSnapshot::new(
            Arc::clone(&self.shared),
            conn,
            permit,
        )))
    }

    async fn import(
        &self,
        table: &str,
        rows: Vec<RawRow>,
        options: ImportOptions,
    ) -> Result<Imported> {
        let (tbl, published) = (table.to_owned(), table.to_owned());
        let rows = Arc::new(rows);
        let written = Arc::clone(&rows);
        self.write(
            "import",
            move |conn| ops::import(conn, &tbl, &rows, options),
            move |out: &Imported, feed| {
                for (row, outcome) in written.iter().zip(&out.rows) {
                    if *outcome == RowImport::Written {
                        feed.publish(&published, &row.key, Some(row));
                    }
                }
            },
        )
        .await
    }

    async fn diagnose(&self) -> Vec<Check> {
        let found = self.read("diagnose", ops::diagnose).await;
        let (version, integrity, buckets, entries) = match found {
            Ok(found) => found,
            Err(e) => return vec![Check::failed("database", e.to_string())],
        };
        let mut checks = Vec::new();
        checks.push(if version == SCHEMA_VERSION {
            Check::ok(
                "schema version",
                format!("{version} (this release writes {SCHEMA_VERSION})"),
            )
        } else {
            Check::new(
                "schema version",
                CheckState::Warning,
                format!(
                    "{version}, but this release writes {SCHEMA_VERSION}; opening the file with \
                     it migrates the schema"
                ),
            )
        });
        checks.push(if integrity == ["ok"] {
            Check::ok("integrity", "PRAGMA integrity_check: ok")
        } else {
            Check::failed(
                "integrity",
                format!(
                    "PRAGMA integrity_check found: {}; restore the file from a backup (or \
                     `kv export` what still reads and import it into a new file)",
                    integrity.join("; ")
                ),
            )
        });
        checks.push(Check::ok(
            "rate limiter",
            format!("{buckets} buckets, {entries} entries"),
        ));
        checks
    }

    fn rate_counter(&self) -> &dyn RateCounter {
        self
    }

    fn feed(&self) -> &ChangeFeed {
        &self.shared.feed
    }

    async fn health(&self) -> BackendHealth {
        let started = Instant::now();
        match self.read("health check", ops::ping).await {
            Ok(()) => BackendHealth::reachable("sqlite", started.elapsed(), FeedHealth::InProcess),
            Err(e) => BackendHealth::unreachable("sqlite", e.to_string(), FeedHealth::InProcess),
        }
    }
}

#[async_trait]
impl RateCounter for SqliteBackend {
    async fn hit(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        now: i64,
    ) -> Result<RateDecision> {
        let (scope, bucket) = (scope.to_owned(), bucket.to_owned());
        // Each hit drops its own bucket's expired entries; every so often a
        // hit drops the whole scope's.
        let sweep =
            self.shared.rate_hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1;
        self.write(
            "rate limit",
            move |conn| ops::rate_hit(conn, &scope, &bucket, window, now, sweep),
            |_, _| {},
        )
        .await
    }

    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64> {
        let scope = scope.to_owned();
        self.write(
            "rate-limit sweep",
            move |conn| ops::rate_sweep(conn, &scope, window, now),
            |_, _| {},
        )
        .await
    }
}

/// A [`Write`] that owns its text, to move onto a blocking thread.
struct OwnedWrite {
    table: String,
    key: String,
    updated_by: Option<String>,
    expect: super::Expect,
    now: i64,
    history: Option<HistoryPolicy>,
}

impl OwnedWrite {
    fn new(table: &str, write: &Write<'_>) -> Self {
        OwnedWrite {
            table: table.to_owned(),
            key: write.key.to_owned(),
            updated_by: write.updated_by.map(str::to_owned),
            expect: write.expect,
            now: write.now,
            history: write.history,
        }
    }

    fn write(&self) -> Write<'_> {
        Write {
            key: &self.key,
            expect: self.expect,
            updated_by: self.updated_by.as_deref(),
            now: self.now,
            history: self.history,
        }
    }
}
