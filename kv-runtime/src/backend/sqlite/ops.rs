//! The SQL of each backend operation, run synchronously on one connection.
//!
//! Every mutation runs inside a `BEGIN IMMEDIATE` transaction opened by the
//! writer (`writer.rs`, which may put several mutations in one transaction,
//! each in a savepoint): the write lock is taken before the row is read, so
//! the conflict check, the version bump and the write see no other writer
//! in between, in this process or another.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use crate::backend::row::Authors;
use crate::backend::{
    first_version, import_floor, import_verdict, next_version, removal_version, HistoryOp,
    HistoryPolicy, HistoryRecord, ImportOptions, Imported, OtherData, Outcome, Payload, Purge,
    RateDecision, RawRow, Removed, Restored, RmMode, RowImport, Stored, TableInfo, Usage, Window,
    Write,
};

const GET: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND key = ?2";
/// [`GET`] for a read on the calling thread: the value only when it is at
/// most `?3` bytes (`octet_length` reads the stored length, not the text).
const GET_INLINE: &str = "SELECT key,
         CASE WHEN octet_length(value) <= ?3 THEN value END,
         created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const LIST_FIRST: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND deleted_at IS NULL ORDER BY key LIMIT ?2";
const LIST_AFTER: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND key > ?2 AND deleted_at IS NULL ORDER BY key LIMIT ?3";
const SCAN_FIRST: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 ORDER BY key LIMIT ?2";
const SCAN_AFTER: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND key > ?2 ORDER BY key LIMIT ?3";
const UPSERT: &str = "INSERT INTO kv_rows
         (tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version)
     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,
         updated_at = excluded.updated_at, deleted_at = NULL, updated_by = excluded.updated_by,
         schema_version = excluded.schema_version";
const SOFT_DELETE: &str = "UPDATE kv_rows SET deleted_at = ?3, updated_at = ?4, updated_by = ?5
     WHERE tbl = ?1 AND key = ?2";
const HARD_DELETE: &str = "DELETE FROM kv_rows WHERE tbl = ?1 AND key = ?2";
const RESTORE: &str = "UPDATE kv_rows SET deleted_at = NULL, updated_at = ?3, updated_by = ?4
     WHERE tbl = ?1 AND key = ?2";
const PURGEABLE: &str =
    "SELECT key, value, created_at, updated_at, deleted_at, updated_by, schema_version
     FROM kv_rows WHERE tbl = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2 ORDER BY key";
const PURGE: &str =
    "DELETE FROM kv_rows WHERE tbl = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2";
const FLOOR: &str = "SELECT version_floor FROM kv_tables WHERE tbl = ?1";
const RAISE_FLOOR: &str = "INSERT INTO kv_tables (tbl, version_floor) VALUES (?1, ?2)
     ON CONFLICT (tbl) DO UPDATE SET version_floor = max(version_floor, excluded.version_floor)";
const RECORD: &str = "INSERT INTO kv_history
         (tbl, key, version, op, value, schema_version, at, updated_by)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (tbl, key, version) DO UPDATE SET op = excluded.op, value = excluded.value,
         schema_version = excluded.schema_version, at = excluded.at,
         updated_by = excluded.updated_by";
/// Drops the key's records beyond the newest `?3`.
const TRIM_KEEP: &str = "DELETE FROM kv_history WHERE tbl = ?1 AND key = ?2 AND version <= (
         SELECT version FROM kv_history WHERE tbl = ?1 AND key = ?2
         ORDER BY version DESC LIMIT 1 OFFSET ?3)";
const TRIM_KEY_AGE: &str = "DELETE FROM kv_history WHERE tbl = ?1 AND key = ?2 AND at < ?3";
const TRIM_TABLE_AGE: &str = "DELETE FROM kv_history WHERE tbl = ?1 AND at < ?2";
const HISTORY_FIRST: &str = "SELECT version, op, value, schema_version, at, updated_by
     FROM kv_history WHERE tbl = ?1 AND key = ?2 ORDER BY version DESC LIMIT ?3";
const HISTORY_BEFORE: &str = "SELECT version, op, value, schema_version, at, updated_by
     FROM kv_history WHERE tbl = ?1 AND key = ?2 AND version < ?3 ORDER BY version DESC LIMIT ?4";
const TABLES: &str = "SELECT t.tbl, coalesce(c.n, 0), coalesce(c.d, 0), f.version_floor
     FROM (SELECT tbl FROM kv_rows UNION SELECT tbl FROM kv_tables) AS t
     LEFT JOIN (SELECT tbl, count(*) AS n, count(deleted_at) AS d FROM kv_rows GROUP BY tbl) AS c
         ON c.tbl = t.tbl
     LEFT JOIN kv_tables AS f ON f.tbl = t.tbl
     ORDER BY t.tbl";
/// History records per table, then entries per log (`kind` 'h' or 'l').
const OTHER_DATA: &str = "SELECT 'h', tbl, count(*) FROM kv_history GROUP BY tbl
     UNION ALL SELECT 'l', tbl, count(*) FROM kv_log GROUP BY tbl
     ORDER BY 1, 2";
const IMPORT_ROW: &str = "INSERT INTO kv_rows
         (tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
     ON CONFLICT (tbl, key) DO UPDATE SET value = excluded.value,
         created_at = excluded.created_at, updated_at = excluded.updated_at,
         deleted_at = excluded.deleted_at, updated_by = excluded.updated_by,
         schema_version = excluded.schema_version";
const RATE_BUCKETS: &str =
    "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM kv_rate GROUP BY scope, bucket)";
const RATE_HITS: &str = "SELECT at FROM kv_rate
     WHERE scope = ?1 AND bucket = ?2 AND at > ?3 ORDER BY at";
const RATE_RESET: &str = "DELETE FROM kv_rate WHERE scope = ?1 AND bucket = ?2";
const RATE_EXPIRE_BUCKET: &str =
    "DELETE FROM kv_rate WHERE scope = ?1 AND bucket = ?2 AND at <= ?3";
const RATE_EXPIRE_SCOPE: &str = "DELETE FROM kv_rate WHERE scope = ?1 AND at <= ?2";
const RATE_INSERT: &str = "INSERT INTO kv_rate (scope, bucket, at) VALUES (?1, ?2, ?3)";

/// The SQLite error code of `e`, if it came from SQLite.
pub(super) fn sqlite_code(e: &rusqlite::Error) -> Option<rusqlite::ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(err, _) => Some(err.code),
        _ => None,
    }
}

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    sqlite_code(e) == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// The error of a call that found the database locked until its deadline.
pub(super) fn busy_error() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None)
}

/// A short random pause before trying a busy lock again (so that processes
/// polling for the lock do not fall into step).
pub(super) fn busy_pause() -> Duration {
    Duration::from_micros(200 + jitter() % 1_800)
}

/// Runs `f` again while another connection holds the lock it needs, until
/// `deadline`, sleeping a short random time between tries (so that
/// processes polling for the lock do not fall into step).
pub(super) fn retry_busy<T>(
    deadline: Instant,
    mut f: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    loop {
        match f() {
            Err(e) if is_busy(&e) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(e);
                }
                std::thread::sleep(busy_pause().min(left));
            }
            other => return other,
        }
    }
}

/// A cheap per-thread pseudo-random number (xorshift), seeded from the clock.
fn jitter() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
                | 1,
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Text of column `i`, borrowed from SQLite (no intermediate `String`).
pub(super) fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        // Not `Error::Utf8Error`: it gained the column index in rusqlite
        // 0.39, and kv accepts versions on both sides of that change.
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            format!("column {i}"),
            other.data_type(),
        )),
    }
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    read_batch_row(r, &mut Authors::default())
}

/// [`read_row`] for one row of a batch: the batch's rows share their author
/// text through `authors`.
fn read_batch_row(r: &rusqlite::Row<'_>, authors: &mut Authors) -> rusqlite::Result<RawRow> {
    let value = text(r, 1)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(1, "value".to_owned(), rusqlite::types::Type::Null)
    })?;
    Ok(RawRow {
        key: r.get(0)?,
        value: Payload::versioned(value, r.get(6)?),
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        deleted_at: r.get(4)?,
        updated_by: authors.share(text(r, 5)?),
    })
}

/// The table's version floor (`None`: nothing was ever hard-deleted or
/// purged from it).
fn floor_in(conn: &Connection, table: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(FLOOR)?
        .query_row(params![table], |r| r.get(0))
        .optional()
}

/// Raises the table's version floor to at least `version`.
fn raise_floor(conn: &Connection, table: &str, version: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(RAISE_FLOOR)?
        .execute(params![table, version])?;
    Ok(())
}

fn get_in(conn: &Connection, table: &str, key: &str) -> rusqlite::Result<Option<RawRow>> {
    conn.prepare_cached(GET)?
        .query_row(params![table, key], read_row)
        .optional()
}

/// What a history record holds besides its key and version.
struct Change<'a> {
    op: HistoryOp,
    value: &'a Payload,
    now: i64,
    updated_by: Option<&'a str>,
}

/// Records a change of `key` as `version` and trims the key's records to
/// `policy`, in the caller's transaction.
fn record(
    tx: &Connection,
    table: &str,
    key: &str,
    version: i64,
    change: Change<'_>,
    policy: HistoryPolicy,
) -> rusqlite::Result<()> {
    tx.prepare_cached(RECORD)?.execute(params![
        table,
        key,
        version,
        change.op.as_str(),
        change.value.json(),
        change.value.schema(),
        change.now,
        change.updated_by
    ])?;
    if let Some(keep) = policy.keep {
        tx.prepare_cached(TRIM_KEEP)?
            .execute(params![table, key, i64::from(keep)])?;
    }
    if let Some(cutoff) = policy.cutoff(change.now) {
        tx.prepare_cached(TRIM_KEY_AGE)?
            .execute(params![table, key, cutoff])?;
    }
    Ok(())
}

/// One history record; the records of one batch share their author text
/// through `authors`.
fn read_record(
    key: &str,
    r: &rusqlite::Row<'_>,
    authors: &mut Authors,
) -> rusqlite::Result<HistoryRecord> {
    let op = text(r, 1)?.unwrap_or_default();
    let op = HistoryOp::parse(op).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown history operation {op:?}").into(),
        )
    })?;
    let value = text(r, 2)?.ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(2, "value".to_owned(), rusqlite::types::Type::Null)
    })?;
    Ok(HistoryRecord {
        key: key.to_owned(),
        version: r.get(0)?,
        op,
        value: Payload::versioned(value, r.get(3)?),
        at: r.get(4)?,
        updated_by: authors.share(text(r, 5)?),
    })
}

/// Up to `limit` records of `key` below version `before`, newest first.
pub(super) fn history(
    conn: &Connection,
    table: &str,
    key: &str,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<HistoryRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut authors = Authors::default();
    let read = |r: &rusqlite::Row<'_>| read_record(key, r, &mut authors);
    match before {
        None => conn
            .prepare_cached(HISTORY_FIRST)?
            .query_map(params![table, key, limit], read)?
            .collect(),
        Some(before) => conn
            .prepare_cached(HISTORY_BEFORE)?
            .query_map(params![table, key, before, limit], read)?
            .collect(),
    }
}

/// Starts a write transaction, taking the database's write lock now.
pub(super) fn begin(conn: &mut Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        // A transaction left open by an earlier failure (its rollback
        // failed too): end it, so that this connection stays usable.
        conn.execute_batch("ROLLBACK")?;
    }
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    Ok(())
}

/// Commits the write transaction.
pub(super) fn commit(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// Rolls the write transaction back, if one is open.
pub(super) fn rollback(conn: &Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        conn.prepare_cached("ROLLBACK")?.execute([])?;
    }
    Ok(())
}

/// Marks where one write of a group starts.
pub(super) fn savepoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("SAVEPOINT kv_write")?.execute([])?;
    Ok(())
}

/// Keeps one write of a group.
pub(super) fn release(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("RELEASE kv_write")?.execute([])?;
    Ok(())
}

/// Undoes one write of a group, keeping the others.
pub(super) fn rollback_to(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("ROLLBACK TO kv_write")?.execute([])?;
    release(conn)
}

/// A trivial read that touches the schema: the health check.
pub(super) fn ping(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("SELECT count(*) FROM kv_meta")?
        .query_row([], |_| Ok(()))
}

/// The row with `key`, live or soft-deleted.
pub(super) fn get(conn: &Connection, table: &str, key: &str) -> rusqlite::Result<Option<RawRow>> {
    get_in(conn, table, key)
}

/// What [`get_inline`] found.
pub(super) enum Inline {
    /// The row (live or soft-deleted), or `None`.
    Row(Option<RawRow>),
    /// The row's value is larger than asked for: read it with [`get`].
    TooLarge,
}

/// The row with `key`, unless its value is over `max_value` bytes.
pub(super) fn get_inline(
    conn: &Connection,
    table: &str,
    key: &str,
    max_value: i64,
) -> rusqlite::Result<Inline> {
    let found = conn
        .prepare_cached(GET_INLINE)?
        .query_row(params![table, key, max_value], |r| match r.get_ref(1)? {
            ValueRef::Null => Ok(None),
            _ => read_row(r).map(Some),
        })
        .optional()?;
    Ok(match found {
        None => Inline::Row(None),
        Some(None) => Inline::TooLarge,
        Some(Some(row)) => Inline::Row(Some(row)),
    })
}

/// Up to `limit` live rows after `after`, in key order (SQLite's BINARY
/// collation compares UTF-8 bytes).
pub(super) fn list(
    conn: &Connection,
    table: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<RawRow>> {
    page(conn, (LIST_FIRST, LIST_AFTER), table, after, limit)
}

/// Up to `limit` rows, live or soft-deleted, after `after`, in key order.
pub(super) fn scan(
    conn: &Connection,
    table: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<RawRow>> {
    page(conn, (SCAN_FIRST, SCAN_AFTER), table, after, limit)
}

/// A page of rows by one of two statements: from the start, or after a key.
fn page(
    conn: &Connection,
    (first, next): (&str, &str),
    table: &str,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<RawRow>> {
    // Sized once for a page of the usual size (up to 256 rows: the limit
    // may be a scan's 1 000 and the last page short), instead of growing
    // from empty and moving its rows at each doubling.
    let mut page = Vec::with_capacity(limit.min(256));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut authors = Authors::default();
    let read = |r: &rusqlite::Row<'_>| read_batch_row(r, &mut authors);
    let mut statement = match after {
        None => conn.prepare_cached(first)?,
        Some(_) => conn.prepare_cached(next)?,
    };
    let rows = match after {
        None => statement.query_map(params![table, limit], read)?,
        Some(after) => statement.query_map(params![table, after, limit], read)?,
    };
    for row in rows {
        page.push(row?);
    }
    Ok(page)
}

/// The upsert of [`Backend::set`](crate::backend::Backend::set).
pub(super) fn set(
    tx: &Connection,
    table: &str,
    write: &Write<'_>,
    value: &Payload,
) -> rusqlite::Result<Outcome<Stored>> {
    let existing = get_in(tx, table, write.key)?;
    let live = existing
        .as_ref()
        .filter(|r| r.is_live())
        .map(|r| r.updated_at);
    if !write.expect.admits(live) {
        // Nothing was written.
        return Ok(Outcome::Conflict {
            current_updated_at: live,
        });
    }
    if let Some(stored) = existing
        .as_ref()
        .map(|r| r.value.schema())
        .filter(|&s| s > value.schema())
    {
        return Ok(Outcome::NewerSchema { stored });
    }
    let row = RawRow {
        key: write.key.to_owned(),
        value: value.clone(),
        created_at: existing.as_ref().map_or(write.now, |r| r.created_at),
        updated_at: match &existing {
            Some(r) => next_version(Some(r.updated_at), write.now),
            None => first_version(floor_in(tx, table)?, write.now),
        },
        deleted_at: None,
        updated_by: write.updated_by.map(Into::into),
    };
    tx.prepare_cached(UPSERT)?.execute(params![
        table,
        row.key,
        row.value.json(),
        row.created_at,
        row.updated_at,
        write.updated_by,
        row.value.schema()
    ])?;
    if let Some(policy) = write.history {
        let change = Change {
            op: HistoryOp::Set,
            value,
            now: write.now,
            updated_by: write.updated_by,
        };
        record(tx, table, write.key, row.updated_at, change, policy)?;
    }
    Ok(Outcome::Done(Stored {
        row,
        previous: existing,
    }))
}

/// The delete of [`Backend::rm`](crate::backend::Backend::rm).
pub(super) fn rm(
    tx: &Connection,
    table: &str,
    write: &Write<'_>,
    mode: RmMode,
) -> rusqlite::Result<Outcome<Removed>> {
    let live = get_in(tx, table, write.key)?.filter(|r| r.is_live());
    let live_version = live.as_ref().map(|r| r.updated_at);
    if !write.expect.admits(live_version) {
        // Nothing was written.
        return Ok(Outcome::Conflict {
            current_updated_at: live_version,
        });
    }
    let Some(before) = live else {
        return Ok(Outcome::Done(Removed::NotLive));
    };
    let version = match mode {
        RmMode::Soft => {
            let version = next_version(Some(before.updated_at), write.now);
            tx.prepare_cached(SOFT_DELETE)?.execute(params![
                table,
                write.key,
                write.now,
                version,
                write.updated_by
            ])?;
            version
        }
        RmMode::Hard => {
            tx.prepare_cached(HARD_DELETE)?
                .execute(params![table, write.key])?;
            // With history, the floor covers the removal's record too.
            let version = removal_version(before.updated_at, write.now);
            let floor = match write.history {
                Some(_) => version,
                None => before.updated_at,
            };
            raise_floor(tx, table, floor)?;
            version
        }
    };
    if let Some(policy) = write.history {
        let change = Change {
            op: HistoryOp::Rm,
            value: &before.value,
            now: write.now,
            updated_by: write.updated_by,
        };
        record(tx, table, write.key, version, change, policy)?;
    }
    Ok(Outcome::Done(Removed::Row(before)))
}

/// The revival of [`Backend::restore`](crate::backend::Backend::restore).
pub(super) fn restore(
    tx: &Connection,
    table: &str,
    write: &Write<'_>,
) -> rusqlite::Result<Outcome<Restored>> {
    let Some(mut row) = get_in(tx, table, write.key)? else {
        return Ok(if write.expect.admits(None) {
            Outcome::Done(Restored::NotFound)
        } else {
            Outcome::Conflict {
                current_updated_at: None,
            }
        });
    };
    let live = row.is_live().then_some(row.updated_at);
    if !write.expect.admits(live) {
        return Ok(Outcome::Conflict {
            current_updated_at: live,
        });
    }
    if row.is_live() {
        return Ok(Outcome::Done(Restored::AlreadyLive(row)));
    }
    row.deleted_at = None;
    row.updated_at = next_version(Some(row.updated_at), write.now);
    row.updated_by = write.updated_by.map(Into::into);
    tx.prepare_cached(RESTORE)?.execute(params![
        table,
        write.key,
        row.updated_at,
        write.updated_by
    ])?;
    if let Some(policy) = write.history {
        let change = Change {
            op: HistoryOp::Restore,
            value: &row.value,
            now: write.now,
            updated_by: write.updated_by,
        };
        record(tx, table, write.key, row.updated_at, change, policy)?;
    }
    Ok(Outcome::Done(Restored::Revived(row)))
}

/// Every table with a row or a version floor, in name order
/// ([`Backend::tables`](crate::backend::Backend::tables)).
pub(super) fn tables(conn: &Connection) -> rusqlite::Result<Vec<TableInfo>> {
    conn.prepare_cached(TABLES)?
        .query_map([], |r| {
            let rows: i64 = r.get(1)?;
            let deleted: i64 = r.get(2)?;
            Ok(TableInfo::new(
                r.get::<_, String>(0)?,
                u64::try_from(rows).unwrap_or(0),
                u64::try_from(deleted).unwrap_or(0),
                r.get(3)?,
            ))
        })?
        .collect()
}

/// The counts of [`Snapshot::other_data`](crate::backend::Snapshot::other_data).
pub(super) fn other_data(conn: &Connection) -> rusqlite::Result<OtherData> {
    let (mut history, mut logs) = (Vec::new(), Vec::new());
    let mut stmt = conn.prepare_cached(OTHER_DATA)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let n = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
        let into = if r.get::<_, String>(0)? == "h" {
            &mut history
        } else {
            &mut logs
        };
        into.push((r.get::<_, String>(1)?, n));
    }
    Ok(OtherData::new(history, logs))
}

/// The exact restore of [`Backend::import`](crate::backend::Backend::import),
/// inside the writer's transaction (its own savepoint in a group): all of
/// it is committed, or none.
pub(super) fn import(
    tx: &Connection,
    table: &str,
    rows: &[RawRow],
    options: ImportOptions,
) -> rusqlite::Result<Imported> {
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut replaced_newer = Vec::new();
    {
        let mut write = tx.prepare_cached(IMPORT_ROW)?;
        for row in rows {
            let stored = get_in(tx, table, &row.key)?;
            let same = stored
                .as_ref()
                .is_some_and(|s| s.value.json() == row.value.json());
            let verdict = import_verdict(stored.as_ref(), row, same, options.mode);
            if verdict == RowImport::Written {
                if let Some(s) = stored.filter(|s| s.updated_at >= row.updated_at) {
                    replaced_newer.push(s.updated_at);
                }
                write.execute(params![
                    table,
                    row.key,
                    row.value.json(),
                    row.created_at,
                    row.updated_at,
                    row.deleted_at,
                    row.updated_by.as_deref(),
                    row.value.schema()
                ])?;
            }
            outcomes.push(verdict);
        }
    }
    if let Some(floor) = import_floor(options, replaced_newer) {
        raise_floor(tx, table, floor)?;
    }
    Ok(Imported { rows: outcomes })
}

/// The schema version, the result of `PRAGMA integrity_check` (`ok`, or
/// the problems found), and the rate limiter's buckets and entries.
pub(super) fn diagnose(conn: &Connection) -> rusqlite::Result<(i64, Vec<String>, i64, i64)> {
    let version: i64 = conn
        .query_row(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let integrity = conn
        .prepare("PRAGMA integrity_check(20)")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (buckets, entries) = conn
        .prepare_cached(RATE_BUCKETS)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((version, integrity, buckets, entries))
}

/// The clean-up of [`Backend::purge`](crate::backend::Backend::purge).
pub(super) fn purge(
    tx: &Connection,
    table: &str,
    purge: &Purge<'_>,
) -> rusqlite::Result<Vec<RawRow>> {
    let doomed: Vec<RawRow> = tx
        .prepare_cached(PURGEABLE)?
        .query_map(params![table, purge.deleted_before], {
            let mut authors = Authors::default();
            move |r| read_batch_row(r, &mut authors)
        })?
        .collect::<rusqlite::Result<_>>()?;
    let cutoff = purge.history.and_then(|p| p.cutoff(purge.now));
    if doomed.is_empty() && cutoff.is_none() {
        return Ok(doomed);
    }
    if !doomed.is_empty() {
        tx.prepare_cached(PURGE)?
            .execute(params![table, purge.deleted_before])?;
    }
    match purge.history {
        None => {
            if let Some(top) = doomed.iter().map(|r| r.updated_at).max() {
                raise_floor(tx, table, top)?;
            }
        }
        Some(policy) => {
            for row in &doomed {
                let version = removal_version(row.updated_at, purge.now);
                raise_floor(tx, table, version)?;
                let change = Change {
                    op: HistoryOp::Purge,
                    value: &row.value,
                    now: purge.now,
                    updated_by: purge.updated_by,
                };
                record(tx, table, &row.key, version, change, policy)?;
            }
            // Keys no longer written are trimmed here.
            if let Some(cutoff) = cutoff {
                tx.prepare_cached(TRIM_TABLE_AGE)?
                    .execute(params![table, cutoff])?;
            }
        }
    }
    Ok(doomed)
}

/// Drops the expired entries of `scope`, returning how many.
pub(super) fn rate_sweep(
    conn: &Connection,
    scope: &str,
    window: Window,
    now: i64,
) -> rusqlite::Result<u64> {
    let start = now.saturating_sub(window.window_ms);
    let n = conn
        .prepare_cached(RATE_EXPIRE_SCOPE)?
        .execute(params![scope, start])?;
    Ok(n as u64)
}

/// The uses of `bucket` in the window ending at `now`, ascending.
fn rate_hits(
    conn: &Connection,
    scope: &str,
    bucket: &str,
    window: Window,
    now: i64,
) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(RATE_HITS)?
        .query_map(params![scope, bucket, window.start(now)], |r| r.get(0))?
        .collect()
}

/// The usage of [`RateCounter::peek`](crate::backend::RateCounter::peek).
pub(super) fn rate_peek(
    conn: &Connection,
    scope: &str,
    bucket: &str,
    window: Window,
    now: i64,
) -> rusqlite::Result<Usage> {
    Ok(window.usage(&rate_hits(conn, scope, bucket, window, now)?))
}

/// The sliding-window count of
/// [`RateCounter::consume`](crate::backend::RateCounter::consume) (and,
/// with `force`, of [`RateCounter::record`](crate::backend::RateCounter::record)):
/// reads the bucket's uses in the window and counts `n` more when they fit
/// (or always, with `force`), in one transaction holding the write lock.
/// With `expire_scope`, an admitted use also drops every expired entry of
/// the scope (other callers' old entries), which keeps the log from growing.
#[allow(clippy::too_many_arguments)]
pub(super) fn rate_use(
    tx: &Connection,
    scope: &str,
    bucket: &str,
    window: Window,
    n: u32,
    force: bool,
    now: i64,
    expire_scope: bool,
) -> rusqlite::Result<RateDecision> {
    let start = window.start(now);
    let mut hits = rate_hits(tx, scope, bucket, window, now)?;
    if !force {
        if let Err(retry) = window.admits(&hits, n, now) {
            // Nothing is counted.
            return Ok(RateDecision::Limited {
                retry_after_ms: retry.unwrap_or(i64::MAX),
                usage: window.usage(&hits),
            });
        }
    }
    if expire_scope {
        tx.prepare_cached(RATE_EXPIRE_SCOPE)?
            .execute(params![scope, start])?;
    } else {
        tx.prepare_cached(RATE_EXPIRE_BUCKET)?
            .execute(params![scope, bucket, start])?;
    }
    {
        let mut insert = tx.prepare_cached(RATE_INSERT)?;
        for _ in 0..n {
            insert.execute(params![scope, bucket, now])?;
        }
    }
    crate::backend::rate::add_uses(&mut hits, n, now);
    Ok(RateDecision::Admitted(window.usage(&hits)))
}

/// The reset of [`RateCounter::reset`](crate::backend::RateCounter::reset).
pub(super) fn rate_reset(tx: &Connection, scope: &str, bucket: &str) -> rusqlite::Result<bool> {
    let n = tx
        .prepare_cached(RATE_RESET)?
        .execute(params![scope, bucket])?;
    Ok(n > 0)
}
