//! Opening a database file: URL parsing, options, path checks, connection
//! set-up and the versioned schema.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::ops::{retry_busy, sqlite_code};
use crate::error::{Error, Result};

/// How much an acknowledged write survives. See the
/// [module documentation](super) for the trade-off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = FULL`: every commit is flushed to the disk (fsync)
    /// before it is acknowledged, so acknowledged writes survive a crash of
    /// the process, of the operating system, and a power loss. The default.
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL`: a commit is in the operating system's cache
    /// (the write-ahead log) when it is acknowledged, and is flushed at the
    /// next checkpoint. Acknowledged writes survive a crash (even `kill -9`)
    /// of the process, but the last ones may be lost on a power loss or an
    /// operating-system crash. Commits are much cheaper.
    ProcessCrash,
}

/// Options of [`SqliteBackend::open_with`](super::SqliteBackend::open_with).
///
/// ```
/// use std::time::Duration;
/// use kv_runtime::backend::sqlite::SqliteOptions;
///
/// let options = SqliteOptions::default()
///     .readers(2)
///     .timeout(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub(super) readers: usize,
    pub(super) timeout: Duration,
    pub(super) durability: Durability,
    pub(super) flags: OpenFlags,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            timeout: Duration::from_secs(5),
            durability: Durability::PowerLoss,
            flags: OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        }
    }
}

impl SqliteOptions {
    /// How many read connections to keep (default 4, at least 1). Reads run
    /// concurrently with each other and with the one writer.
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// The deadline of each call (default 5 s). Everything a call waits
    /// for counts against it: a free read connection, this process's
    /// earlier writes (one writer at a time), and another process holding
    /// the database's write lock. A call that reaches it fails with
    /// [`Error::Backend`] and changes nothing; so a write queued behind
    /// others fails at its deadline, however many wait before it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The flags kv opens its connections with, for an app that opens the
    /// same file with flags of its own (for instance without
    /// `SQLITE_OPEN_CREATE`, so that a missing file is an error rather than
    /// a new database). Default: `SQLITE_OPEN_READ_WRITE |
    /// SQLITE_OPEN_CREATE | SQLITE_OPEN_NO_MUTEX`. kv writes, so flags
    /// without `SQLITE_OPEN_READ_WRITE` are refused with [`Error::Config`]
    /// when the store opens; URI names (`SQLITE_OPEN_URI`) are refused too,
    /// since kv takes paths literally.
    pub fn open_flags(mut self, flags: OpenFlags) -> Self {
        self.flags = flags;
        self
    }

    /// How durable an acknowledged write is (default [`Durability::PowerLoss`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// The file path of a `sqlite:` URL: `sqlite://relative/path.db`,
/// `sqlite:///absolute/path.db` or `sqlite:path.db`. The path is taken
/// literally (no percent-decoding).
pub(super) fn path_from_url(url: &str) -> Result<PathBuf> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(Error::Config(format!(
            "`{url}` is not a SQLite URL; use `sqlite://path/to/file.db`"
        )));
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(Error::Config(format!(
            "`{url}` names no file; use `sqlite://path/to/file.db` (relative) or \
             `sqlite:///abs/path/file.db`"
        )));
    }
    if path == ":memory:" || path.starts_with("file:") {
        return Err(Error::Config(format!(
            "`{url}`: in-memory and URI SQLite databases are not supported; for a store in \
             process memory use `memory:`"
        )));
    }
    if path.contains('?') {
        return Err(Error::Config(format!(
            "`{url}`: SQLite URLs take no query parameters; set options with \
             `SqliteBackend::open_with` and `SqliteOptions`"
        )));
    }
    Ok(PathBuf::from(path))
}

/// Refuses paths that cannot be a database file we create or open.
fn check_path(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(Error::Config("the SQLite path is empty".to_owned()));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(parent) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::Config(format!(
                    "cannot create SQLite database `{shown}`: `{}` is not a directory",
                    parent.display()
                )))
            }
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot create SQLite database `{shown}`: its directory `{}` is missing or \
                     unreadable ({e}); create the directory first",
                    parent.display()
                )))
            }
        }
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(Error::Config(format!(
                "`{shown}` is a directory, not a SQLite database file"
            )));
        }
    }
    Ok(())
}

/// The schema, one step per version: step `i` takes a database from version
/// `i` to `i + 1`. Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: rows, the sliding-window log of the rate limiter, and an index for purge.
    "CREATE TABLE kv_rows (
         tbl        TEXT    NOT NULL,
         key        TEXT    NOT NULL,
         value      TEXT    NOT NULL,
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL,
         deleted_at INTEGER,
         updated_by TEXT,
         PRIMARY KEY (tbl, key)
     ) WITHOUT ROWID;
     CREATE INDEX kv_rows_deleted ON kv_rows (tbl, deleted_at) WHERE deleted_at IS NOT NULL;
     CREATE TABLE kv_rate (
         scope  TEXT    NOT NULL,
         bucket TEXT    NOT NULL,
         at     INTEGER NOT NULL
     );
     CREATE INDEX kv_rate_bucket ON kv_rate (scope, bucket, at);",
    // 2: the version floor per table (the highest updated_at of a row hard
    // deleted or purged from it), so that a re-created row never reuses a
    // version. Idempotent, like every later step should be.
    "CREATE TABLE IF NOT EXISTS kv_tables (
         tbl           TEXT    PRIMARY KEY NOT NULL,
         version_floor INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 3: the version of the table's schema that wrote each row's value;
    // rows written before are version 1.
    "ALTER TABLE kv_rows ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 1;",
    // 4: the history of tables declared with `history`: one record per
    // committed change of a row, written in the change's transaction. Keyed
    // by the change's version (unique per key); `at` indexed for trimming
    // by age. Self-contained and idempotent: it touches no other table.
    "CREATE TABLE IF NOT EXISTS kv_history (
         tbl            TEXT    NOT NULL,
         key            TEXT    NOT NULL,
         version        INTEGER NOT NULL,
         op             TEXT    NOT NULL,
         value          TEXT    NOT NULL,
         schema_version INTEGER NOT NULL,
         at             INTEGER NOT NULL,
         updated_by     TEXT,
         PRIMARY KEY (tbl, key, version)
     ) WITHOUT ROWID;
     CREATE INDEX IF NOT EXISTS kv_history_at ON kv_history (tbl, at);",
];

/// The schema version this library writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS kv_meta (
    name  TEXT    PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID";

/// Opens one connection to `path` (created when missing) without writing to
/// the file. No URI interpretation: the path is a plain file name.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
    if !flags.contains(OpenFlags::SQLITE_OPEN_READ_WRITE) {
        return Err(Error::Config(format!(
            "the SQLite flags for `{}` must include SQLITE_OPEN_READ_WRITE: kv writes to the \
             database",
            path.display()
        )));
    }
    if flags.contains(OpenFlags::SQLITE_OPEN_URI) {
        return Err(Error::Config(format!(
            "the SQLite flags for `{}` include SQLITE_OPEN_URI; kv takes the path literally, \
             leave it out",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    // Busy waits are done by `retry_busy`, with jitter, not by SQLite.
    conn.busy_timeout(Duration::ZERO)
        .map_err(|e| open_error(path, e))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Turns an error met while opening into a [`Error::Config`] saying what is
/// wrong with the file.
fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let shown = path.display();
    match sqlite_code(&e) {
        Some(C::NotADatabase) => Error::Config(format!(
            "`{shown}` is not a SQLite database (or its header is corrupt); kv leaves it \
             untouched: point the URL at a new file or at a kv database"
        )),
        Some(C::DatabaseCorrupt) => Error::Config(format!(
            "the SQLite database `{shown}` is corrupt ({e}); kv leaves it untouched: restore \
             it from a backup"
        )),
        Some(C::CannotOpen) => Error::Config(format!(
            "cannot open or create the SQLite database `{shown}` ({e}); check that the path \
             is a file in a writable directory"
        )),
        Some(C::ReadOnly) | Some(C::PermissionDenied) => Error::Config(format!(
            "the SQLite database `{shown}` is read-only ({e}); kv needs to write to it"
        )),
        Some(C::DatabaseBusy) => Error::Config(format!(
            "the SQLite database `{shown}` stayed locked by another connection while opening \
             ({e}); try again"
        )),
        _ => Error::Config(format!("cannot open the SQLite database `{shown}`: {e}")),
    }
}

/// The schema version stored in the database: 0 for a database kv has not
/// set up yet. Only reads.
fn stored_version(conn: &Connection) -> rusqlite::Result<i64> {
    // Reading the schema also reads and checks the file header.
    let has_meta: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv_meta'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_meta.is_none() {
        return Ok(0);
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(version.unwrap_or(0))
}

/// A table of a database without a kv schema version whose name kv's
/// schema would take.
fn foreign_table(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT name FROM sqlite_master WHERE name IN ('kv_rows', 'kv_rate', 'kv_rows_deleted', \
         'kv_rate_bucket', 'kv_history') ORDER BY name LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
}

fn too_new(path: &Path, version: i64) -> Error {
    Error::Config(format!(
        "the SQLite database `{}` has kv schema version {version}, newer than this version of \
         kv understands ({SCHEMA_VERSION}); it was written by a newer kv: upgrade kv-runtime \
         (the file was left untouched)",
        path.display()
    ))
}

/// Opens (creating when missing) and migrates the database at `path`,
/// returning the writer connection. Nothing is written to a file that is
/// not a SQLite database, is read-only, or has a newer schema.
pub(super) fn open_writer(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    check_path(path)?;
    let mut conn = connect(path, options.flags)?;
    // `MAIN_DB` rather than "main": it is a `DatabaseName` before rusqlite
    // 0.36 and a `&CStr` after, and `is_readonly` takes either in its version.
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| open_error(path, e))?
    {
        return Err(Error::Config(format!(
            "the SQLite database `{}` can only be opened read-only; kv needs to write to it \
             (check the file's permissions and the file system)",
            path.display()
        )));
    }
    let version = retry_busy(Instant::now() + options.timeout, || stored_version(&conn))
        .map_err(|e| open_error(path, e))?;
    if version > SCHEMA_VERSION {
        refuse_quietly(&conn);
        return Err(too_new(path, version));
    }
    if version == 0 {
        let clash = retry_busy(Instant::now() + options.timeout, || foreign_table(&conn))
            .map_err(|e| open_error(path, e))?;
        if let Some(name) = clash {
            return Err(Error::Config(format!(
                "the SQLite database `{}` already has a table `{name}` that kv did not create \
                 (no kv schema version is recorded); kv leaves it untouched: use another file",
                path.display()
            )));
        }
    }

    // From here on the file is ours to write.
    let journal: String = retry_busy(Instant::now() + options.timeout, || {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
    })
    .map_err(|e| open_error(path, e))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(Error::Config(format!(
            "the SQLite database `{}` cannot use write-ahead logging (journal mode stays \
             `{journal}`); put it on a local file system",
            path.display()
        )));
    }
    let synchronous = match options.durability {
        Durability::PowerLoss => "FULL",
        Durability::ProcessCrash => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(|e| open_error(path, e))?;
    retry_busy(Instant::now() + options.timeout, || migrate(&mut conn))
        .map_err(|e| open_error(path, e))?
        .map_err(|found| too_new(path, found))?;
    Ok(conn)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. The inner
/// error is a newer version found (another process may have upgraded the
/// file since the first look).
fn migrate(conn: &mut Connection) -> rusqlite::Result<Result<(), i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = stored_version(&tx)?;
    if version > SCHEMA_VERSION {
        return Ok(Err(version));
    }
    if version == SCHEMA_VERSION {
        return Ok(Ok(()));
    }
    tx.execute_batch(CREATE_META)?;
    for step in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
        tx.execute_batch(step)?;
    }
    tx.execute(
        "INSERT INTO kv_meta (name, value) VALUES ('schema_version', ?1)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Makes closing a connection we refuse to use leave the files as they are
/// (no checkpoint of another process's write-ahead log on close).
fn refuse_quietly(conn: &Connection) {
    // Best effort: if it fails, closing checkpoints, which changes no data.
    let _ = conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    );
}

/// Opens one read connection to a database already set up by
/// [`open_writer`]. It refuses writes (`query_only`).
pub(super) fn open_reader(path: &Path, options: &SqliteOptions) -> Result<Connection> {
    let conn = connect(path, options.flags)?;
    conn.pragma_update(None, "query_only", true)
        .map_err(|e| open_error(path, e))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn url_forms() {
        assert_eq!(
            path_from_url("sqlite://data/kv.db").unwrap(),
            PathBuf::from("data/kv.db")
        );
        assert_eq!(
            path_from_url("sqlite:///abs/kv.db").unwrap(),
            PathBuf::from("/abs/kv.db")
        );
        assert_eq!(
            path_from_url("sqlite:kv.db").unwrap(),
            PathBuf::from("kv.db")
        );
        for bad in [
            "sqlite:",
            "sqlite://",
            "sqlite://:memory:",
            "sqlite::memory:",
            "sqlite://file:x.db",
            "sqlite://x.db?mode=ro",
            "postgres://x",
        ] {
            let err = path_from_url(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Config, "{bad}");
        }
        let err = path_from_url("sqlite://:memory:").unwrap_err();
        assert!(err.to_string().contains("memory:"), "{err}");
    }

    #[test]
    fn schema_version_counts_migrations() {
        assert_eq!(SCHEMA_VERSION, 4);
    }
}
