//! The operations: each one statement on a connection of the read or the
//! write pool, within the call's deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::errors::{pg_error, write_error, Access};
use super::pool::{Checkout, Core};
use super::{sql, PostgresBackend, PUT_ATTEMPTS};
use crate::backend::rate::SWEEP_EVERY;
use crate::backend::row::Authors;
use crate::backend::{
    Backend, BackendHealth, ChangeFeed, Check, CheckState, Expect, FeedHealth, HistoryOp,
    HistoryPolicy, HistoryRecord, ImportMode, ImportOptions, Imported, LogStore, Outcome, Payload,
    Purge, RateCounter, RateDecision, RawRow, ReadNow, Removed, Restored, RmMode, RowImport,
    Snapshot, Stored, TableInfo, Usage, Window, Write,
};
use crate::error::{Error, Result};

impl PostgresBackend {
    fn target(&self) -> &str {
        self.core.target()
    }

    pub(super) fn write_error(&self, op: &str, e: tokio_postgres::Error) -> Error {
        write_error(self.target(), op, self.core.lock_timeout, e)
    }

    /// A page of rows by one of two statements (from the start, or after a
    /// key), as `list` and `scan` read them.
    async fn page(
        &self,
        op: &str,
        (first, next): (&sql::Stmt, &sql::Stmt),
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawRow>> {
        let target = self.target();
        self.core
            .run(Access::Read, op, |c| async move {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = match after {
                    None => c.query(first, &[&table, &limit]).await,
                    Some(after) => c.query(next, &[&table, &after, &limit]).await,
                }
                .map_err(|e| pg_error(target, op, e))?;
                let mut authors = Authors::default();
                // Sized once: collecting into a `Result` loses the length,
                // and the vector would grow (and move its rows) six times.
                let mut page = Vec::with_capacity(rows.len());
                for row in &rows {
                    let key: String = column(row, 0, target)?;
                    page.push(
                        read_batch_row(row, 1, key, target, &mut authors)?.ok_or_else(|| {
                            corrupt(target, &format!("{op} returned a row without a value"))
                        })?,
                    );
                }
                Ok(page)
            })
            .await
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn get_now(&self, _table: &str, _key: &str, _read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow {
        ReadNow::NeedsIo
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        let core = &self.core;
        core.run(Access::Read, "get", |c| fetch(c, core, table, key))
            .await
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        let s = &self.core.stmts;
        self.page("list", (&s.list_first, &s.list_after), table, after, limit)
            .await
    }

    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        let s = &self.core.stmts;
        self.page("scan", (&s.scan_first, &s.scan_after), table, after, limit)
            .await
    }

    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Write, "set", |c| async move {
                let (version, not_live) = expect_params(write.expect);
                let schema = i32::try_from(value.schema()).unwrap_or(i32::MAX);
                let json = value.json();
                let (keep, cutoff) = history_params(write.history, write.now);
                // The history statement takes two more parameters.
                let params: [&(dyn ToSql + Sync); 10] = [
                    &table,
                    &write.key,
                    &json,
                    &write.updated_by,
                    &write.now,
                    &version,
                    &not_live,
                    &schema,
                    &keep,
                    &cutoff,
                ];
                let (stmt, params) = match write.history {
                    None => (&stmts.put, &params[..8]),
                    Some(_) => (&stmts.put_history, &params[..]),
                };
                for _ in 0..PUT_ATTEMPTS {
                    let row = c
                        .query_opt(stmt, params)
                        .await
                        .map_err(|e| self.write_error("set", e))?
                        .ok_or_else(|| corrupt(target, "set returned no row"))?;
                    let previous = read_row(&row, 0, write.key.to_owned(), target)?;
                    let created_at: Option<i64> = column(&row, 6, target)?;
                    let updated_at: Option<i64> = column(&row, 7, target)?;
                    if let (Some(created_at), Some(updated_at)) = (created_at, updated_at) {
                        let row = RawRow {
                            key: write.key.to_owned(),
                            value: value.clone(),
                            created_at,
                            updated_at,
                            deleted_at: None,
                            updated_by: write.updated_by.map(Arc::from),
                        };
                        return Ok(Outcome::Done(Stored { row, previous }));
                    }
                    if let Some(stored) = previous
                        .as_ref()
                        .map(|r| r.value.schema())
                        .filter(|&s| s > value.schema())
                    {
                        return Ok(Outcome::NewerSchema { stored });
                    }
                    let live = previous
                        .as_ref()
                        .filter(|r| r.is_live())
                        .map(|r| r.updated_at);
                    match write.expect {
                        // The row `old` locked is the latest: its version is current.
                        Expect::Version(_) => {
                            return Ok(Outcome::Conflict {
                                current_updated_at: live,
                            })
                        }
                        Expect::NotLive if live.is_some() => {
                            return Ok(Outcome::Conflict {
                                current_updated_at: live,
                            })
                        }
                        // `old` saw no row, yet the insert met one: another
                        // session inserted the key after this statement's
                        // snapshot was taken. Run again with a fresh snapshot,
                        // which locks that row and checks against it.
                        Expect::Any | Expect::NotLive => {}
                    }
                }
                Err(Error::backend_msg(format!(
                    "PostgreSQL ({target}): set of key {:?} in table `{table}` kept racing with \
                     concurrent inserts of the same key; nothing was written",
                    crate::error::shorten(write.key)
                )))
            })
            .await
    }

    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Write, "rm", |c| async move {
                let (version, not_live) = expect_params(write.expect);
                let (keep, cutoff) = history_params(write.history, write.now);
                let row = match (mode, write.history) {
                    (RmMode::Soft, None) => {
                        c.query_opt(
                            &stmts.remove_soft,
                            &[
                                &table,
                                &write.key,
                                &write.now,
                                &write.updated_by,
                                &version,
                                &not_live,
                            ],
                        )
                        .await
                    }
                    (RmMode::Soft, Some(_)) => {
                        c.query_opt(
                            &stmts.remove_soft_history,
                            &[
                                &table,
                                &write.key,
                                &write.now,
                                &write.updated_by,
                                &version,
                                &not_live,
                                &keep,
                                &cutoff,
                            ],
                        )
                        .await
                    }
                    (RmMode::Hard, None) => {
                        c.query_opt(
                            &stmts.remove_hard,
                            &[&table, &write.key, &version, &not_live],
                        )
                        .await
                    }
                    (RmMode::Hard, Some(_)) => {
                        c.query_opt(
                            &stmts.remove_hard_history,
                            &[
                                &table,
                                &write.key,
                                &version,
                                &not_live,
                                &write.now,
                                &write.updated_by,
                                &keep,
                                &cutoff,
                            ],
                        )
                        .await
                    }
                }
                .map_err(|e| self.write_error("rm", e))?;
                let Some(row) = row else {
                    return Ok(if write.expect.admits(None) {
                        Outcome::Done(Removed::NotLive)
                    } else {
                        Outcome::Conflict {
                            current_updated_at: None,
                        }
                    });
                };
                let Some(before) = read_row(&row, 0, write.key.to_owned(), target)? else {
                    return Err(corrupt(target, "rm returned a row without a value"));
                };
                let removed: bool = column(&row, 6, target)?;
                if removed {
                    Ok(Outcome::Done(Removed::Row(before)))
                } else {
                    Ok(Outcome::Conflict {
                        current_updated_at: Some(before.updated_at),
                    })
                }
            })
            .await
    }

    async fn restore(&self, table: &str, write: Write<'_>) -> Result<Outcome<Restored>> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Write, "restore", |c| async move {
                let may_revive = write.expect.admits(None);
                let (keep, cutoff) = history_params(write.history, write.now);
                // The history statement takes two more parameters.
                let params: [&(dyn ToSql + Sync); 7] = [
                    &table,
                    &write.key,
                    &write.now,
                    &write.updated_by,
                    &may_revive,
                    &keep,
                    &cutoff,
                ];
                let (stmt, params) = match write.history {
                    None => (&stmts.restore, &params[..5]),
                    Some(_) => (&stmts.restore_history, &params[..]),
                };
                let Some(row) = c
                    .query_opt(stmt, params)
                    .await
                    .map_err(|e| self.write_error("restore", e))?
                else {
                    return Ok(if may_revive {
                        Outcome::Done(Restored::NotFound)
                    } else {
                        Outcome::Conflict {
                            current_updated_at: None,
                        }
                    });
                };
                let Some(before) = read_row(&row, 0, write.key.to_owned(), target)? else {
                    return Err(corrupt(target, "restore returned a row without a value"));
                };
                if before.is_live() {
                    return Ok(if write.expect.admits(Some(before.updated_at)) {
                        Outcome::Done(Restored::AlreadyLive(before))
                    } else {
                        Outcome::Conflict {
                            current_updated_at: Some(before.updated_at),
                        }
                    });
                }
                if !may_revive {
                    return Ok(Outcome::Conflict {
                        current_updated_at: None,
                    });
                }
                let updated_at: Option<i64> = column(&row, 6, target)?;
                let updated_at = updated_at.ok_or_else(|| {
                    corrupt(target, "restore locked a deleted row but did not update it")
                })?;
                Ok(Outcome::Done(Restored::Revived(RawRow {
                    deleted_at: None,
                    updated_at,
                    updated_by: write.updated_by.map(Arc::from),
                    ..before
                })))
            })
            .await
    }

    async fn purge(&self, table: &str, purge: Purge<'_>) -> Result<Vec<RawRow>> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Write, "purge", |c| async move {
                let (keep, cutoff) = history_params(purge.history, purge.now);
                let rows = match purge.history {
                    None => {
                        c.query(&stmts.purge, &[&table, &purge.deleted_before])
                            .await
                    }
                    Some(_) => {
                        c.query(
                            &stmts.purge_history,
                            &[
                                &table,
                                &purge.deleted_before,
                                &purge.now,
                                &purge.updated_by,
                                &keep,
                                &cutoff,
                            ],
                        )
                        .await
                    }
                }
                .map_err(|e| self.write_error("purge", e))?;
                let mut authors = Authors::default();
                rows.iter()
                    .map(|row| {
                        let key: String = column(row, 0, target)?;
                        read_batch_row(row, 1, key, target, &mut authors)?
                            .ok_or_else(|| corrupt(target, "purge returned a row without a value"))
                    })
                    .collect()
            })
            .await
    }

    async fn history(
        &self,
        table: &str,
        key: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Read, "history", |c| async move {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = match before {
                    None => c.query(&stmts.history_first, &[&table, &key, &limit]).await,
                    Some(before) => {
                        c.query(&stmts.history_before, &[&table, &key, &before, &limit])
                            .await
                    }
                }
                .map_err(|e| pg_error(target, "history", e))?;
                let mut authors = Authors::default();
                rows.iter()
                    .map(|row| read_record(row, key, target, &mut authors))
                    .collect()
            })
            .await
    }

    async fn tables(&self) -> Result<Vec<TableInfo>> {
        let core = &self.core;
        core.run(Access::Read, "tables", |c| async move {
            let rows = c
                .query(&core.stmts.tables, &[])
                .await
                .map_err(|e| pg_error(core.target(), "tables", e))?;
            table_infos(&rows, core.target())
        })
        .await
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        let snapshot = super::snapshot::PgSnapshot::begin(Arc::clone(&self.core)).await?;
        Ok(Box::new(snapshot))
    }

    async fn import(
        &self,
        table: &str,
        rows: Vec<RawRow>,
        options: ImportOptions,
    ) -> Result<Imported> {
        let target = self.target();
        let stmt = &self.core.stmts.import;
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        let values: Vec<&str> = rows.iter().map(|r| r.value.json()).collect();
        let created: Vec<i64> = rows.iter().map(|r| r.created_at).collect();
        let updated: Vec<i64> = rows.iter().map(|r| r.updated_at).collect();
        let deleted: Vec<Option<i64>> = rows.iter().map(|r| r.deleted_at).collect();
        let by: Vec<Option<&str>> = rows.iter().map(|r| r.updated_by.as_deref()).collect();
        let schemas: Vec<i32> = rows
            .iter()
            .map(|r| i32::try_from(r.value.schema()).unwrap_or(i32::MAX))
            .collect();
        let overwrite = options.mode == ImportMode::Overwrite;
        let imported = self
            .core
            .run(Access::Write, "import", |c| async move {
                for _ in 0..PUT_ATTEMPTS {
                    c.simple("BEGIN")
                        .await
                        .map_err(|e| self.write_error("import", e))?;
                    let answer = c
                        .query(
                            stmt,
                            &[
                                &table,
                                &keys,
                                &values,
                                &created,
                                &updated,
                                &deleted,
                                &by,
                                &overwrite,
                                &options.version_floor,
                                &schemas,
                            ],
                        )
                        .await;
                    let answer = match answer {
                        Ok(answer) => answer,
                        Err(e) => {
                            let _ = c.simple("ROLLBACK").await;
                            return Err(self.write_error("import", e));
                        }
                    };
                    let (outcomes, raced) = match import_outcomes(&answer, keys.len(), target) {
                        Ok(found) => found,
                        Err(e) => {
                            let _ = c.simple("ROLLBACK").await;
                            return Err(e);
                        }
                    };
                    if raced {
                        // Another session inserted one of the keys after
                        // this statement's snapshot: start again, seeing it.
                        c.simple("ROLLBACK")
                            .await
                            .map_err(|e| self.write_error("import", e))?;
                        continue;
                    }
                    c.simple("COMMIT")
                        .await
                        .map_err(|e| self.write_error("import", e))?;
                    return Ok(Imported { rows: outcomes });
                }
                Err(Error::backend_msg(format!(
                    "PostgreSQL ({target}): import into table `{table}` kept racing with \
                     concurrent inserts of the same keys; nothing was written"
                )))
            })
            .await?;
        Ok(imported)
    }

    async fn diagnose(&self) -> Vec<Check> {
        let core = &self.core;
        let found = core
            .run(Access::Read, "diagnose", |c| async move {
                let fail = |e| pg_error(core.target(), "diagnose", e);
                let version = c
                    .query_opt(&core.stmts.read_version, &[])
                    .await
                    .map_err(fail)?
                    .map(|row| column::<i64>(&row, 0, core.target()))
                    .transpose()?
                    .unwrap_or(0);
                let size = c
                    .query_opt(&core.stmts.rate_size, &[])
                    .await
                    .map_err(fail)?
                    .ok_or_else(|| corrupt(core.target(), "the rate limiter's size is missing"))?;
                let buckets: i64 = column(&size, 0, core.target())?;
                let hits: i64 = column(&size, 1, core.target())?;
                Ok((version, buckets, hits))
            })
            .await;
        let (version, buckets, hits) = match found {
            Ok(found) => found,
            Err(e) => return vec![Check::failed("database", e.to_string())],
        };
        let supported = super::sql::SCHEMA_VERSION;
        vec![
            if version == supported {
                Check::ok(
                    "schema version",
                    format!("{version} (this release writes {supported})"),
                )
            } else {
                Check::new(
                    "schema version",
                    CheckState::Warning,
                    format!(
                        "{version}, but this release writes {supported}; opening the store \
                         with it migrates the schema"
                    ),
                )
            },
            Check::ok(
                "rate limiter",
                format!("{buckets} buckets, {hits} hits in them"),
            ),
        ]
    }

    fn rate_counter(&self) -> &dyn RateCounter {
        self
    }

    fn logs(&self) -> &dyn LogStore {
        self
    }

    fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    /// A `SELECT 1` through the read pool (within `op_timeout`), and the
    /// change feed's state: verified, unverified (with why), or
    /// disconnected (since when).
    async fn health(&self) -> BackendHealth {
        let started = std::time::Instant::now();
        let target = self.target();
        let ping = self
            .core
            .run(Access::Read, "health check", |c| async move {
                c.simple("SELECT 1")
                    .await
                    .map_err(|e| pg_error(target, "health check", e))
            })
            .await;
        let feed: FeedHealth = self.feed_state.get();
        match ping {
            Ok(()) => BackendHealth::reachable("postgres", started.elapsed(), feed),
            Err(e) => BackendHealth::unreachable("postgres", e.to_string(), feed),
        }
    }
}

#[async_trait]
impl RateCounter for PostgresBackend {
    async fn peek(&self, scope: &str, bucket: &str, window: Window, now: i64) -> Result<Usage> {
        let target = self.target();
        let stmt = &self.core.stmts.rate_peek;
        self.core
            .run(Access::Read, "quota check", |c| async move {
                let row = c
                    .query_opt(stmt, &[&scope, &bucket])
                    .await
                    .map_err(|e| pg_error(target, "quota check", e))?;
                let hits: Vec<i64> = match row {
                    Some(row) => column(&row, 0, target)?,
                    None => Vec::new(),
                };
                Ok(window.usage(&in_window(hits, window, now)))
            })
            .await
    }

    async fn consume(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<RateDecision> {
        self.rate_use("rate limit", scope, bucket, window, n, false, now)
            .await
    }

    async fn record(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<Usage> {
        match self
            .rate_use("quota record", scope, bucket, window, n, true, now)
            .await?
        {
            RateDecision::Admitted(usage) | RateDecision::Limited { usage, .. } => Ok(usage),
        }
    }

    async fn reset(&self, scope: &str, bucket: &str) -> Result<bool> {
        let target = self.target();
        let stmt = &self.core.stmts.rate_reset;
        self.core
            .run(Access::Write, "quota reset", |c| async move {
                let row = c
                    .query_opt(stmt, &[&scope, &bucket])
                    .await
                    .map_err(|e| self.write_error("quota reset", e))?
                    .ok_or_else(|| corrupt(target, "the quota reset returned no row"))?;
                column(&row, 0, target)
            })
            .await
    }

    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64> {
        let target = self.target();
        let stmt = &self.core.stmts.rate_sweep;
        self.core
            .run(Access::Write, "rate-limit sweep", |c| async move {
                let start = now.saturating_sub(window.window_ms);
                let row = c
                    .query_opt(stmt, &[&scope, &start])
                    .await
                    .map_err(|e| pg_error(target, "rate-limit sweep", e))?
                    .ok_or_else(|| corrupt(target, "the sweep returned no row"))?;
                let deleted: i64 = column(&row, 0, target)?;
                Ok(u64::try_from(deleted).unwrap_or(0))
            })
            .await
    }
}

impl PostgresBackend {
    /// Counts `n` uses when they fit (or always, with `force`), in one
    /// statement ([`sql::RATE_USE`]); every so often, also forgets the
    /// scope's idle buckets.
    #[allow(clippy::too_many_arguments)]
    async fn rate_use(
        &self,
        op: &'static str,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        force: bool,
        now: i64,
    ) -> Result<RateDecision> {
        let target = self.target();
        let stmts = &self.core.stmts;
        self.core
            .run(Access::Write, op, |c| async move {
                let start = window.start(now);
                let n_param = i32::try_from(n).unwrap_or(i32::MAX);
                let row = c
                    .query_opt(
                        &stmts.rate_use,
                        &[
                            &scope,
                            &bucket,
                            &now,
                            &i64::from(window.max),
                            &start,
                            &n_param,
                            &force,
                        ],
                    )
                    .await
                    .map_err(|e| self.write_error(op, e))?
                    .ok_or_else(|| corrupt(target, "the rate limit returned no row"))?;
                let admitted: bool = column(&row, 0, target)?;
                let hits = in_window(column(&row, 1, target)?, window, now);
                if !admitted {
                    let retry = window.admits(&hits, n, now).err().flatten();
                    return Ok(RateDecision::Limited {
                        retry_after_ms: retry.unwrap_or(i64::MAX),
                        usage: window.usage(&hits),
                    });
                }
                // Every so often, forget the scope's idle callers.
                if self.rate_hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                    c.query(&stmts.rate_sweep, &[&scope, &start])
                        .await
                        .map_err(|e| pg_error(target, "rate-limit sweep", e))?;
                }
                Ok(RateDecision::Admitted(window.usage(&hits)))
            })
            .await
    }
}

/// The uses of `hits` still in the window ending at `now`, ascending.
fn in_window(mut hits: Vec<i64>, window: Window, now: i64) -> Vec<i64> {
    let start = window.start(now);
    hits.retain(|&at| at > start);
    hits.sort_unstable();
    hits
}

/// The tables of a [`sql::TABLES`] answer.
pub(super) fn table_infos(rows: &[tokio_postgres::Row], target: &str) -> Result<Vec<TableInfo>> {
    rows.iter()
        .map(|row| {
            let rows: i64 = column(row, 1, target)?;
            let deleted: i64 = column(row, 2, target)?;
            Ok(TableInfo::new(
                column::<String>(row, 0, target)?,
                u64::try_from(rows).unwrap_or(0),
                u64::try_from(deleted).unwrap_or(0),
                column(row, 3, target)?,
            ))
        })
        .collect()
}

/// The outcomes of an [`sql::IMPORT`] answer, and whether it raced with a
/// concurrent insert (fewer rows written than decided).
fn import_outcomes(
    answer: &[tokio_postgres::Row],
    given: usize,
    target: &str,
) -> Result<(Vec<RowImport>, bool)> {
    if answer.len() != given {
        return Err(corrupt(
            target,
            &format!("import answered {} rows for {given}", answer.len()),
        ));
    }
    let mut outcomes = Vec::with_capacity(given);
    let mut decided_writes = 0i64;
    let mut written = 0i64;
    for row in answer {
        let verdict: &str = column(row, 0, target)?;
        let stored: Option<i64> = column(row, 1, target)?;
        written = column(row, 2, target)?;
        outcomes.push(match (verdict, stored) {
            ("w", _) => {
                decided_writes += 1;
                RowImport::Written
            }
            ("u", _) => RowImport::Unchanged,
            ("k", Some(stored_updated_at)) => RowImport::KeptNewer { stored_updated_at },
            _ => return Err(corrupt(target, "import answered an unknown verdict")),
        });
    }
    Ok((outcomes, written != decided_writes))
}

/// An expectation as the statements take it: the expected version (NULL:
/// any) and whether no live row is expected.
fn expect_params(expect: Expect) -> (Option<i64>, bool) {
    match expect {
        Expect::Any => (None, false),
        Expect::Version(v) => (Some(v), false),
        Expect::NotLive => (None, true),
    }
}

/// A history policy as the statements take it: the records kept per key
/// and the time before which records are dropped (NULL for none).
fn history_params(policy: Option<HistoryPolicy>, now: i64) -> (Option<i64>, Option<i64>) {
    match policy {
        None => (None, None),
        Some(p) => (p.keep.map(i64::from), p.cutoff(now)),
    }
}

/// Reads a history record (the columns of [`sql::HISTORY_FIRST`]); the
/// records of one batch share their author text through `authors`.
fn read_record(
    row: &tokio_postgres::Row,
    key: &str,
    target: &str,
    authors: &mut Authors,
) -> Result<HistoryRecord> {
    let op: &str = column(row, 1, target)?;
    let op = HistoryOp::parse(op)
        .ok_or_else(|| corrupt(target, &format!("unknown history operation {op:?}")))?;
    let value: String = column(row, 2, target)?;
    let schema: i32 = column(row, 3, target)?;
    Ok(HistoryRecord {
        key: key.to_owned(),
        version: column(row, 0, target)?,
        op,
        value: Payload::versioned(value, u32::try_from(schema).unwrap_or(0)),
        at: column(row, 4, target)?,
        updated_by: authors.share(column::<Option<&str>>(row, 5, target)?),
    })
}

/// Reads one row by key.
async fn fetch(c: Checkout, core: &Core, table: &str, key: &str) -> Result<Option<RawRow>> {
    let target = core.target();
    match c
        .query_opt(&core.stmts.get, &[&table, &key])
        .await
        .map_err(|e| pg_error(target, "get", e))?
    {
        Some(row) => read_row(&row, 0, key.to_owned(), target),
        None => Ok(None),
    }
}

/// Reads the columns value, created_at, updated_at, deleted_at, updated_by
/// starting at `first`; `None` when the value is NULL (an outer join found
/// no row).
pub(super) fn read_row(
    row: &tokio_postgres::Row,
    first: usize,
    key: String,
    target: &str,
) -> Result<Option<RawRow>> {
    read_batch_row(row, first, key, target, &mut Authors::default())
}

/// [`read_row`] for one row of a batch: the batch's rows share their author
/// text through `authors`.
pub(super) fn read_batch_row(
    row: &tokio_postgres::Row,
    first: usize,
    key: String,
    target: &str,
    authors: &mut Authors,
) -> Result<Option<RawRow>> {
    let value: Option<String> = column(row, first, target)?;
    let Some(value) = value else {
        return Ok(None);
    };
    let schema: i32 = column(row, first + 5, target)?;
    Ok(Some(RawRow {
        key,
        value: Payload::versioned(value, u32::try_from(schema).unwrap_or(0)),
        created_at: column(row, first + 1, target)?,
        updated_at: column(row, first + 2, target)?,
        deleted_at: column(row, first + 3, target)?,
        updated_by: authors.share(column::<Option<&str>>(row, first + 4, target)?),
    }))
}

pub(super) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
    target: &str,
) -> Result<T> {
    row.try_get(index).map_err(|e| {
        Error::backend(
            format!("PostgreSQL ({target}): column {index} of a result is not as expected"),
            e,
        )
    })
}

pub(super) fn corrupt(target: &str, what: &str) -> Error {
    Error::backend_msg(format!("PostgreSQL ({target}): {what}"))
}
