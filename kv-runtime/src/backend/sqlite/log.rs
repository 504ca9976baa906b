//! The log operations on SQLite: the SQL, run synchronously on one
//! connection, and [`LogStore`] on top. Each mutation is one `BEGIN
//! IMMEDIATE` transaction: the write lock is taken before the parent's last
//! number (and the idempotency key) is read, so numbering is gapless and
//! keys are checked atomically across processes too.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteBackend;
use crate::backend::row::Authors;
use crate::backend::{
    Append, Appended, EntryOp, EntryRange, EntryRestored, LogStore, Payload, RawEntry, RmMode,
};
use crate::error::Result;

#[cfg(test)]
const COLUMNS: &str = "parent, seq, value, created_at, author, deleted_at, schema_version";

const GET: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq = ?3";
const BY_KEY: &str =
    "SELECT seq, idem_count FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND idem_key = ?3";
const RANGE: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq >= ?3 AND seq < ?4 ORDER BY seq";
const FORWARD: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq > ?3 AND (?5 OR deleted_at IS NULL)
     ORDER BY seq LIMIT ?4";
const BACKWARD: &str = "SELECT parent, seq, value, created_at, author, deleted_at, schema_version
     FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq < ?3 AND (?5 OR deleted_at IS NULL)
     ORDER BY seq DESC LIMIT ?4";
const LAST: &str = "SELECT last_seq FROM kv_log_parents WHERE tbl = ?1 AND parent = ?2";
const SET_LAST: &str = "INSERT INTO kv_log_parents (tbl, parent, last_seq) VALUES (?1, ?2, ?3)
     ON CONFLICT (tbl, parent) DO UPDATE SET last_seq = excluded.last_seq";
const INSERT: &str = "INSERT INTO kv_log
         (tbl, parent, seq, value, created_at, author, deleted_at, idem_key, idem_count,
          schema_version)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8, ?9)";
const SOFT_RM: &str = "UPDATE kv_log SET deleted_at = ?4
     WHERE tbl = ?1 AND parent = ?2 AND seq = ?3 AND deleted_at IS NULL";
const HARD_RM: &str = "DELETE FROM kv_log WHERE tbl = ?1 AND parent = ?2 AND seq = ?3";
const RESTORE: &str =
    "UPDATE kv_log SET deleted_at = NULL WHERE tbl = ?1 AND parent = ?2 AND seq = ?3";
const PURGE: &str =
    "DELETE FROM kv_log WHERE tbl = ?1 AND deleted_at IS NOT NULL AND deleted_at < ?2";

/// A number as SQLite stores it.
fn sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// One entry; the entries of one batch share their author text through
/// `authors`.
fn read_entry(r: &rusqlite::Row<'_>, authors: &mut Authors) -> rusqlite::Result<RawEntry> {
    let seq: i64 = r.get(1)?;
    let value: String = r.get(2)?;
    Ok(RawEntry {
        parent: r.get(0)?,
        seq: u64::try_from(seq).unwrap_or(0),
        value: Payload::versioned(value, r.get(6)?),
        created_at: r.get(3)?,
        author: authors.share(super::ops::text(r, 4)?),
        deleted_at: r.get(5)?,
    })
}

fn get_in(
    conn: &Connection,
    table: &str,
    parent: &str,
    seq: u64,
) -> rusqlite::Result<Option<RawEntry>> {
    conn.prepare_cached(GET)?
        .query_row(params![table, parent, sql_seq(seq)], |r| {
            read_entry(r, &mut Authors::default())
        })
        .optional()
}

/// The append of [`LogStore::append`].
fn append(
    tx: &Connection,
    table: &str,
    append: &OwnedAppend,
    values: &[Payload],
) -> rusqlite::Result<Appended> {
    if let Some(key) = &append.key {
        let prior: Option<(i64, Option<i64>)> = tx
            .prepare_cached(BY_KEY)?
            .query_row(params![table, append.parent, key], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((first, count)) = prior {
            let end = first.saturating_add(count.unwrap_or(1));
            let entries = tx
                .prepare_cached(RANGE)?
                .query_map(params![table, append.parent, first, end], {
                    let mut authors = Authors::default();
                    move |r| read_entry(r, &mut authors)
                })?
                .collect::<rusqlite::Result<_>>()?;
            // Nothing was written.
            return Ok(Appended::Replayed(entries));
        }
    }
    let last: i64 = tx
        .prepare_cached(LAST)?
        .query_row(params![table, append.parent], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let count = i64::try_from(values.len()).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(values.len());
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for (i, value) in values.iter().enumerate() {
            let seq = last + 1 + i as i64;
            let first = i == 0;
            insert.execute(params![
                table,
                append.parent,
                seq,
                value.json(),
                append.now,
                append.author,
                append.key.as_deref().filter(|_| first),
                append.key.as_ref().filter(|_| first).map(|_| count),
                value.schema(),
            ])?;
            out.push(RawEntry {
                parent: append.parent.clone(),
                seq: u64::try_from(seq).unwrap_or(0),
                value: value.clone(),
                created_at: append.now,
                author: append.author.as_deref().map(Arc::from),
                deleted_at: None,
            });
        }
    }
    tx.prepare_cached(SET_LAST)?
        .execute(params![table, append.parent, last + count])?;
    Ok(Appended::New(out))
}

/// The page of [`LogStore::list`].
fn list(
    conn: &Connection,
    table: &str,
    parent: &str,
    range: EntryRange,
    limit: usize,
) -> rusqlite::Result<Vec<RawEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sql, from) = if range.backwards {
        (BACKWARD, range.from.map_or(i64::MAX, sql_seq))
    } else {
        (FORWARD, range.from.map_or(0, sql_seq))
    };
    conn.prepare_cached(sql)?
        .query_map(params![table, parent, from, limit, range.deleted], {
            let mut authors = Authors::default();
            move |r| read_entry(r, &mut authors)
        })?
        .collect()
}

/// The delete of [`LogStore::rm`].
fn rm(
    tx: &Connection,
    table: &str,
    parent: &str,
    seqs: &[u64],
    mode: RmMode,
    now: i64,
) -> rusqlite::Result<Vec<RawEntry>> {
    let mut seqs = seqs.to_vec();
    seqs.sort_unstable();
    seqs.dedup();
    let mut removed = Vec::new();
    for seq in seqs {
        let Some(entry) = get_in(tx, table, parent, seq)?.filter(RawEntry::is_live) else {
            continue;
        };
        let changed = match mode {
            RmMode::Soft => {
                tx.prepare_cached(SOFT_RM)?
                    .execute(params![table, parent, sql_seq(seq), now])?
            }
            RmMode::Hard => {
                tx.prepare_cached(HARD_RM)?
                    .execute(params![table, parent, sql_seq(seq)])?
            }
        };
        debug_assert_eq!(changed, 1, "the entry was read under the write lock");
        removed.push(entry);
    }
    Ok(removed)
}

/// The revival of [`LogStore::restore`].
fn restore(
    tx: &Connection,
    table: &str,
    parent: &str,
    seq: u64,
) -> rusqlite::Result<EntryRestored> {
    let Some(mut entry) = get_in(tx, table, parent, seq)? else {
        return Ok(EntryRestored::NotFound);
    };
    if entry.is_live() {
        return Ok(EntryRestored::AlreadyLive(entry));
    }
    tx.prepare_cached(RESTORE)?
        .execute(params![table, parent, sql_seq(seq)])?;
    entry.deleted_at = None;
    Ok(EntryRestored::Revived(entry))
}

/// The clean-up of [`LogStore::purge`].
fn purge(tx: &Connection, table: &str, deleted_before: i64) -> rusqlite::Result<u64> {
    let n = tx
        .prepare_cached(PURGE)?
        .execute(params![table, deleted_before])?;
    Ok(n as u64)
}

/// An [`Append`] that owns its text, to move onto a blocking thread.
struct OwnedAppend {
    parent: String,
    key: Option<String>,
    author: Option<String>,
    now: i64,
}

#[async_trait]
impl LogStore for SqliteBackend {
    async fn append(
        &self,
        table: &str,
        append: Append<'_>,
        values: Vec<Payload>,
    ) -> Result<Appended> {
        let owned = OwnedAppend {
            parent: append.parent.to_owned(),
            key: append.key.map(str::to_owned),
            author: append.author.map(str::to_owned),
            now: append.now,
        };
        let (tbl, publish_tbl) = (table.to_owned(), table.to_owned());
        self.write(
            "log append",
            move |conn| self::append(conn, &tbl, &owned, &values),
            move |out, feed| {
                if let Appended::New(entries) = out {
                    for e in entries {
                        feed.publish_entry(
                            &publish_tbl,
                            &e.parent,
                            e.seq,
                            EntryOp::Append,
                            Some(e),
                        );
                    }
                }
            },
        )
        .await
    }

    async fn get(&self, table: &str, parent: &str, seq: u64) -> Result<Option<RawEntry>> {
        let (table, parent) = (table.to_owned(), parent.to_owned());
        self.read("log get", move |conn| get_in(conn, &table, &parent, seq))
            .await
    }

    async fn list(
        &self,
        table: &str,
        parent: &str,
        range: EntryRange,
        limit: usize,
    ) -> Result<Vec<RawEntry>> {
        let (table, parent) = (table.to_owned(), parent.to_owned());
        self.read("log list", move |conn| {
            self::list(conn, &table, &parent, range, limit)
        })
        .await
    }

    async fn rm(
        &self,
        table: &str,
        parent: &str,
        seqs: &[u64],
        mode: RmMode,
        now: i64,
    ) -> Result<Vec<RawEntry>> {
        let (tbl, par, seqs) = (table.to_owned(), parent.to_owned(), seqs.to_vec());
        let (publish_tbl, publish_par) = (tbl.clone(), par.clone());
        self.write(
            "log rm",
            move |conn| self::rm(conn, &tbl, &par, &seqs, mode, now),
            move |removed, feed| {
                for e in removed {
                    let after = match mode {
                        RmMode::Soft => Some(RawEntry {
                            deleted_at: Some(now),
                            ..e.clone()
                        }),
                        RmMode::Hard => None,
                    };
                    feed.publish_entry(
                        &publish_tbl,
                        &publish_par,
                        e.seq,
                        EntryOp::Rm,
                        after.as_ref(),
                    );
                }
            },
        )
        .await
    }

    async fn restore(&self, table: &str, parent: &str, seq: u64) -> Result<EntryRestored> {
        let (tbl, par) = (table.to_owned(), parent.to_owned());
        let publish_tbl = tbl.clone();
        self.write(
            "log restore",
            move |conn| self::restore(conn, &tbl, &par, seq),
            move |out, feed| {
                if let EntryRestored::Revived(e) = out {
                    feed.publish_entry(&publish_tbl, &e.parent, e.seq, EntryOp::Restore, Some(e));
                }
            },
        )
        .await
    }

    async fn purge(&self, table: &str, deleted_before: i64) -> Result<u64> {
        let tbl = table.to_owned();
        // Purged entries were deleted already: nothing to publish.
        self.write(
            "log purge",
            move |conn| self::purge(conn, &tbl, deleted_before),
            |_, _| {},
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_read_the_columns_in_order() {
        for sql in [super::GET, super::RANGE, super::FORWARD, super::BACKWARD] {
            assert!(sql.contains(super::COLUMNS), "{sql}");
        }
    }
}
