//! [`LogStore`] on PostgreSQL: each operation one statement of
//! [`sql::log`](super::sql::log) on a pooled connection, within the call's
//! deadline.

use async_trait::async_trait;
use tokio_postgres::error::SqlState;

use super::errors::{pg_error, Access};
use super::ops::{column, corrupt};
use super::{PostgresBackend, PUT_ATTEMPTS};
use crate::backend::row::Authors;
use crate::backend::{
    Append, Appended, EntryRange, EntryRestored, LogStore, Payload, RawEntry, RmMode,
};
use crate::error::{Error, Result};

/// A number as PostgreSQL stores it.
fn sql_seq(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Reads the columns seq, value, created_at, author, deleted_at,
/// schema_version starting at `first`; `None` when the value is NULL.
pub(super) fn read_entry(
    row: &tokio_postgres::Row,
    first: usize,
    parent: &str,
    target: &str,
) -> Result<Option<RawEntry>> {
    read_batch_entry(row, first, parent, target, &mut Authors::default())
}

/// [`read_entry`] for one entry of a batch: the batch's entries share their
/// author text through `authors`.
fn read_batch_entry(
    row: &tokio_postgres::Row,
    first: usize,
    parent: &str,
    target: &str,
    authors: &mut Authors,
) -> Result<Option<RawEntry>> {
    let value: Option<String> = column(row, first + 1, target)?;
    let Some(value) = value else {
        return Ok(None);
    };
    let seq: i64 = column(row, first, target)?;
    let schema: i32 = column(row, first + 5, target)?;
    Ok(Some(RawEntry {
        parent: parent.to_owned(),
        seq: u64::try_from(seq).unwrap_or(0),
        value: Payload::versioned(value, u32::try_from(schema).unwrap_or(0)),
        created_at: column(row, first + 2, target)?,
        author: authors.share(column::<Option<&str>>(row, first + 3, target)?),
        deleted_at: column(row, first + 4, target)?,
    }))
}

fn entries(rows: &[tokio_postgres::Row], parent: &str, target: &str) -> Result<Vec<RawEntry>> {
    let mut authors = Authors::default();
    rows.iter()
        .map(|row| {
            read_batch_entry(row, 0, parent, target, &mut authors)?
                .ok_or_else(|| corrupt(target, "a log statement returned an entry without a value"))
        })
        .collect()
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code() == &SqlState::UNIQUE_VIOLATION)
}

#[async_trait]
impl LogStore for PostgresBackend {
    async fn append(
        &self,
        table: &str,
        append: Append<'_>,
        values: Vec<Payload>,
    ) -> Result<Appended> {
        let target = self.core.target();
        let stmts = &self.core.stmts.log;
        let schema = values
            .iter()
            .map(Payload::schema)
            .max()
            .map_or(1, |s| i32::try_from(s).unwrap_or(i32::MAX));
        let json: Vec<&str> = values.iter().map(Payload::json).collect();
        let (json, values, parent) = (&json, &values, append.parent);
        self.core
            .run(Access::Write, "log append", |c| async move {
                for _ in 0..PUT_ATTEMPTS {
                    let rows = c
                        .query(
                            &stmts.append,
                            &[
                                &table,
                                &parent,
                                json,
                                &append.author,
                                &append.now,
                                &append.key,
                                &schema,
                            ],
                        )
                        .await;
                    let rows = match rows {
                        // Another append with the same key committed after
                        // this statement's snapshot: nothing was written;
                        // a fresh snapshot sees it.
                        Err(e) if append.key.is_some() && is_unique_violation(&e) => continue,
                        other => other.map_err(|e| self.write_error("log append", e))?,
                    };
                    if !rows.is_empty() {
                        let mut new = entries(&rows, parent, target)?;
                        new.sort_by_key(|e| e.seq);
                        // What was appended is what the caller gave.
                        for (entry, value) in new.iter_mut().zip(values) {
                            entry.value = value.clone();
                        }
                        return Ok(Appended::New(new));
                    }
                    let Some(key) = append.key else {
                        return Err(corrupt(
                            target,
                            "a log append without a key appended nothing",
                        ));
                    };
                    let rows = c
                        .query(&stmts.replay, &[&table, &parent, &key])
                        .await
                        .map_err(|e| pg_error(target, "log append (replay)", e))?;
                    return Ok(Appended::Replayed(entries(&rows, parent, target)?));
                }
                Err(Error::backend_msg(format!(
                    "PostgreSQL ({target}): an append to log `{table}` kept racing with \
                     concurrent appends of the same idempotency key; nothing was written"
                )))
            })
            .await
    }

    async fn get(&self, table: &str, parent: &str, seq: u64) -> Result<Option<RawEntry>> {
        let target = self.core.target();
        let stmt = &self.core.stmts.log.get;
        self.core
            .run(Access::Read, "log get", |c| async move {
                let row = c
                    .query_opt(stmt, &[&table, &parent, &sql_seq(seq)])
                    .await
                    .map_err(|e| pg_error(target, "log get", e))?;
                match row {
                    Some(row) => read_entry(&row, 0, parent, target),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn list(
        &self,
        table: &str,
        parent: &str,
        range: EntryRange,
        limit: usize,
    ) -> Result<Vec<RawEntry>> {
        let target = self.core.target();
        let stmts = &self.core.stmts.log;
        self.core
            .run(Access::Read, "log list", |c| async move {
                let (stmt, from) = if range.backwards {
                    (&stmts.backward, range.from.map_or(i64::MAX, sql_seq))
                } else {
                    (&stmts.forward, range.from.map_or(0, sql_seq))
                };
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = c
                    .query(stmt, &[&table, &parent, &from, &limit, &range.deleted])
                    .await
                    .map_err(|e| pg_error(target, "log list", e))?;
                entries(&rows, parent, target)
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
        let target = self.core.target();
        let stmts = &self.core.stmts.log;
        let seqs: Vec<i64> = seqs.iter().map(|&s| sql_seq(s)).collect();
        self.core
            .run(Access::Write, "log rm", |c| async move {
                let rows = match mode {
                    RmMode::Soft => {
                        c.query(&stmts.rm_soft, &[&table, &parent, &seqs, &now])
                            .await
                    }
                    RmMode::Hard => c.query(&stmts.rm_hard, &[&table, &parent, &seqs]).await,
                }
                .map_err(|e| self.write_error("log rm", e))?;
                let mut removed = entries(&rows, parent, target)?;
                for e in &mut removed {
                    // As it was before the delete.
                    e.deleted_at = None;
                }
                removed.sort_by_key(|e| e.seq);
                Ok(removed)
            })
            .await
    }

    async fn restore(&self, table: &str, parent: &str, seq: u64) -> Result<EntryRestored> {
        let target = self.core.target();
        let stmt = &self.core.stmts.log.restore;
        self.core
            .run(Access::Write, "log restore", |c| async move {
                let row = c
                    .query_opt(stmt, &[&table, &parent, &sql_seq(seq)])
                    .await
                    .map_err(|e| self.write_error("log restore", e))?;
                let Some(row) = row else {
                    return Ok(EntryRestored::NotFound);
                };
                let Some(mut entry) = read_entry(&row, 0, parent, target)? else {
                    return Err(corrupt(
                        target,
                        "log restore returned an entry without a value",
                    ));
                };
                if entry.is_live() {
                    return Ok(EntryRestored::AlreadyLive(entry));
                }
                entry.deleted_at = None;
                Ok(EntryRestored::Revived(entry))
            })
            .await
    }

    async fn purge(&self, table: &str, deleted_before: i64) -> Result<u64> {
        let target = self.core.target();
        let stmt = &self.core.stmts.log.purge;
        self.core
            .run(Access::Write, "log purge", |c| async move {
                let row = c
                    .query_opt(stmt, &[&table, &deleted_before])
                    .await
                    .map_err(|e| self.write_error("log purge", e))?
                    .ok_or_else(|| corrupt(target, "the log purge returned no row"))?;
                let n: i64 = column(&row, 0, target)?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
    }
}
