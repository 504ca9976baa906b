//! The PostgreSQL backend (feature `postgres`): for several app servers
//! sharing one database.
//!
//! Open it with [`Store::open`](crate::Store::open) and a
//! `postgres://user:password@host:port/database` URL, or with
//! [`PostgresBackend::connect`] and [`PostgresOptions`]. The URL may carry
//! `?pool_size=N` (connections in the pool, default 10) besides the
//! parameters PostgreSQL itself knows (`connect_timeout`,
//! `application_name`, ...). TLS is not supported: `sslmode=disable` and
//! `sslmode=prefer` (the default) connect without it, and a URL asking for
//! `sslmode=require` or stricter is refused with [`Error::Config`]; connect
//! over a trusted network or a local tunnel.
//!
//! # Storage
//!
//! On open, the backend creates or migrates its tables (`kv_meta` with the
//! schema version, `kv_rows`, `kv_rate`, and `kv_tables` with each table's
//! version floor, added in schema version 2) in the first schema of the
//! connection's `search_path`, under a transaction-scoped advisory lock so
//! that processes opening the database at once do it one at a time. A
//! database migrated by a newer release of `kv` is refused with
//! [`Error::Config`].
//!
//! Rows live in `kv_rows(tbl, key COLLATE "C", value JSONB, created_at,
//! updated_at, deleted_at, updated_by)`, keyed by `(tbl, key)`; `COLLATE
//! "C"` makes key order the byte order of UTF-8. Values are JSONB, so a
//! value reads back as equal JSON, though not as identical text (key order
//! and spacing are PostgreSQL's). JSONB cannot hold the NUL character
//! (`\u0000`) in strings: such a value is refused with
//! [`Error::ValidationFailed`].
//!
//! Every operation is one prepared statement (two round trips never hold a
//! lock between them); see the statements in the source for how each one
//! locks the row it checks.
//!
//! # Change feed
//!
//! Every mutation notifies the channel `kv_changes` in its own statement, so
//! the notification is delivered on commit, in commit order, to every
//! process listening on the database. Each backend keeps one dedicated
//! listening connection; when it is lost the feed sends
//! [`FeedEvent::Resync`](crate::backend::FeedEvent::Resync), reconnects
//! with backoff, and sends `Resync` again once it listens again.
//!
//! # Failures
//!
//! A server that is down or goes away makes calls fail with
//! [`Error::Backend`], never a panic: connecting, and waiting for a free
//! pooled connection, have timeouts ([`PostgresOptions`]); the server
//! cancels statements running past `statement_timeout`; TCP keepalives and
//! a TCP user timeout notice a server that vanished without closing the
//! connection. Broken connections are replaced, so the store works again
//! once the server is back. [`PostgresOptions::op_timeout`] adds a client
//! timer around every call, for servers that may stop answering without
//! going away.

mod errors;
mod feed;
mod open;
#[doc(hidden)]
pub mod sql;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Pool, PoolError, TimeoutType, Timeouts};

use self::errors::{pg_error, pool_error, write_error};
use super::rate::SWEEP_EVERY;
use super::{
    Backend, BackendHealth, ChangeFeed, Expect, FeedHealth, Outcome, Payload, RateCounter,
    RateDecision, RawRow, ReadNow, Removed, Restored, RmMode, Stored, Window, Write,
};
use crate::error::{Error, Result};

pub use self::open::{PostgresOptions, MAX_POOL_SIZE};

/// How many times the statement of a `set` ([`sql::PUT`]) that raced with
/// a concurrent insert of the same key is run again (each run takes a fresh
/// snapshot, so one retry normally suffices).
const PUT_ATTEMPTS: usize = 8;

/// Rows in a PostgreSQL database, shared by every process that opens it.
/// See the [module documentation](self).
pub struct PostgresBackend {
    pool: Pool,
    feed: ChangeFeed,
    op_timeout: Option<Duration>,
    /// Timeouts of a pool checkout that does not wait for a busy pool.
    free_now: Timeouts,
    target: String,
    /// Rate-limit hits admitted by this process (to sweep every so often).
    rate_hits: AtomicU64,
    /// The listener task; aborted when the backend is dropped.
    _listener: feed::AbortOnDrop,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresBackend")
            .field("target", &self.target)
            .field("pool_size", &status.max_size)
            .field("connections", &status.size)
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl PostgresBackend {
    /// The schema version this release creates and understands.
    pub const SCHEMA_VERSION: i64 = sql::SCHEMA_VERSION;

    /// Runs one operation, under the call timeout when there is one.
    async fn run<T>(&self, op: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let Some(limit) = self.op_timeout else {
            return work.await;
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::backend_msg(format!(
                "PostgreSQL ({}): {op} did not finish within {limit:?}; the server may be \
                 unreachable or overloaded (a write may or may not have been applied)",
                self.target
            ))),
        }
    }

    /// A page of rows by one of two statements (from the start, or after a
    /// key), as `list` and `scan` read them.
    async fn page(
        &self,
        op: &str,
        (first, next): (&str, &str),
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawRow>> {
        self.run(op, async {
            let client = self.client(op).await?;
            let fail = |e| pg_error(&self.target, op, e);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match after {
                None => {
                    let stmt = client.prepare_cached(first).await.map_err(fail)?;
                    client.query(&stmt, &[&table, &limit]).await
                }
                Some(after) => {
                    let stmt = client.prepare_cached(next).await.map_err(fail)?;
                    client.query(&stmt, &[&table, &after, &limit]).await
                }
            }
            .map_err(fail)?;
            rows.iter()
                .map(|row| {
                    let key: String = column(row, 0, &self.target)?;
                    read_row(row, 1, key, &self.target)?.ok_or_else(|| {
                        corrupt(
                            &self.target,
                            &format!("{op} returned a row without a value"),
                        )
                    })
                })
                .collect()
        })
        .await
    }

    /// A pooled connection. A free one is taken without arming the wait
    /// timer (the common case costs no timer); only when all are busy does
    /// the call wait, up to the pool's wait timeout.
    async fn client(&self, op: &str) -> Result<deadpool_postgres::Object> {
        match self.pool.timeout_get(&self.free_now).await {
            Err(PoolError::Timeout(TimeoutType::Wait)) => self.pool.get().await,
            other => other,
        }
        .map_err(|e| pool_error(&self.target, op, e))
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
        self.run("get", async {
            let client = self.client("get").await?;
            fetch(&client, &self.target, table, key).await
        })
        .await
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        self.page(
            "list",
            (sql::LIST_FIRST, sql::LIST_AFTER),
            table,
            after,
            limit,
        )
        .await
    }

    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        self.page(
            "scan",
            (sql::SCAN_FIRST, sql::SCAN_AFTER),
            table,
            after,
            limit,
        )
        .await
    }

    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>> {
        self.run("set", async {
            let client = self.client("set").await?;
            let stmt = client
                .prepare_cached(sql::PUT)
                .await
                .map_err(|e| pg_error(&self.target, "set", e))?;
            let (version, not_live) = expect_params(write.expect);
            for _ in 0..PUT_ATTEMPTS {
                let row = client
                    .query_one(
                        &stmt,
                        &[
                            &table,
                            &write.key,
                            &value.json(),
                            &write.updated_by,
                            &write.now,
                            &version,
                            &not_live,
                        ],
                    )
                    .await
                    .map_err(|e| write_error(&self.target, "set", e))?;
                let previous = read_row(&row, 0, write.key.to_owned(), &self.target)?;
                let created_at: Option<i64> = column(&row, 5, &self.target)?;
                let updated_at: Option<i64> = column(&row, 6, &self.target)?;
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
                "PostgreSQL ({}): set of key {:?} in table `{table}` kept racing with \
                 concurrent inserts of the same key",
                self.target,
                crate::error::shorten(write.key)
            )))
        })
        .await
    }

    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>> {
        self.run("rm", async {
            let client = self.client("rm").await?;
            let fail = |e| write_error(&self.target, "rm", e);
            let (version, not_live) = expect_params(write.expect);
            let row = match mode {
                RmMode::Soft => {
                    let stmt = client
                        .prepare_cached(sql::REMOVE_SOFT)
                        .await
                        .map_err(fail)?;
                    client
                        .query_opt(
                            &stmt,
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
                RmMode::Hard => {
                    let stmt = client
                        .prepare_cached(sql::REMOVE_HARD)
                        .await
                        .map_err(fail)?;
                    client
                        .query_opt(&stmt, &[&table, &write.key, &version, &not_live])
                        .await
                }
            }
            .map_err(fail)?;
            let Some(row) = row else {
                return Ok(if write.expect.admits(None) {
                    Outcome::Done(Removed::NotLive)
                } else {
                    Outcome::Conflict {
                        current_updated_at: None,
                    }
                });
            };
            let Some(before) = read_row(&row, 0, write.key.to_owned(), &self.target)? else {
                return Err(corrupt(&self.target, "rm returned a row without a value"));
            };
            let removed: bool = column(&row, 5, &self.target)?;
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
        self.run("restore", async {
            let client = self.client("restore").await?;
            let fail = |e| write_error(&self.target, "restore", e);
            let stmt = client.prepare_cached(sql::RESTORE).await.map_err(fail)?;
            let may_revive = write.expect.admits(None);
            let Some(row) = client
                .query_opt(
                    &stmt,
                    &[
                        &table,
                        &write.key,
                        &write.now,
                        &write.updated_by,
                        &may_revive,
                    ],
                )
                .await
                .map_err(fail)?
            else {
                return Ok(if may_revive {
                    Outcome::Done(Restored::NotFound)
                } else {
                    Outcome::Conflict {
                        current_updated_at: None,
                    }
                });
            };
            let Some(before) = read_row(&row, 0, write.key.to_owned(), &self.target)? else {
                return Err(corrupt(
                    &self.target,
                    "restore returned a row without a value",
                ));
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
            let updated_at: Option<i64> = column(&row, 5, &self.target)?;
            let updated_at = updated_at.ok_or_else(|| {
                corrupt(
                    &self.target,
                    "restore locked a deleted row but did not update it",
                )
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

    async fn purge(&self, table: &str, deleted_before: i64) -> Result<Vec<RawRow>> {
        self.run("purge", async {
            let client = self.client("purge").await?;
            let fail = |e| pg_error(&self.target, "purge", e);
            let stmt = client.prepare_cached(sql::PURGE).await.map_err(fail)?;
            let rows = client
                .query(&stmt, &[&table, &deleted_before])
                .await
                .map_err(fail)?;
            rows.iter()
                .map(|row| {
                    let key: String = column(row, 0, &self.target)?;
                    read_row(row, 1, key, &self.target)?.ok_or_else(|| {
                        corrupt(&self.target, "purge returned a row without a value")
                    })
                })
                .collect()
        })
        .await
    }

    fn rate_counter(&self) -> &dyn RateCounter {
        self
    }

    fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    async fn health(&self) -> BackendHealth {
        let started = std::time::Instant::now();
        let ping = self.run("health check", async {
            let client = self.client("health check").await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| pg_error(&self.target, "health check", e))
        });
        // Until the feed verifies itself, it is only known to be listening.
        let feed = FeedHealth::Unverified {
            reason: "the change feed does not verify its notifications yet".into(),
        };
        match ping.await {
            Ok(_) => BackendHealth::reachable("postgres", started.elapsed(), feed),
            Err(e) => BackendHealth::unreachable("postgres", e.to_string(), feed),
        }
    }
}

#[async_trait]
impl RateCounter for PostgresBackend {
    async fn hit(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        now: i64,
    ) -> Result<RateDecision> {
        self.run("rate limit", async {
            let client = self.client("rate limit").await?;
            let fail = |e| pg_error(&self.target, "rate limit", e);
            let stmt = client.prepare_cached(sql::RATE_HIT).await.map_err(fail)?;
            let start = now.saturating_sub(window.window_ms);
            let row = client
                .query_one(
                    &stmt,
                    &[&scope, &bucket, &now, &i64::from(window.max), &start],
                )
                .await
                .map_err(|e| write_error(&self.target, "rate limit", e))?;
            let admitted: bool = column(&row, 0, &self.target)?;
            if admitted {
                // Every so often, forget the scope's idle callers.
                if self.rate_hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                    let stmt = client.prepare_cached(sql::RATE_SWEEP).await.map_err(fail)?;
                    client
                        .execute(&stmt, &[&scope, &start])
                        .await
                        .map_err(fail)?;
                }
                return Ok(RateDecision::Admitted);
            }
            let oldest: Option<i64> = column(&row, 1, &self.target)?;
            Ok(RateDecision::Limited {
                retry_after_ms: window.retry_after_ms(oldest.unwrap_or(now), now),
            })
        })
        .await
    }

    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64> {
        self.run("rate-limit sweep", async {
            let client = self.client("rate-limit sweep").await?;
            let fail = |e| pg_error(&self.target, "rate-limit sweep", e);
            let stmt = client.prepare_cached(sql::RATE_SWEEP).await.map_err(fail)?;
            let start = now.saturating_sub(window.window_ms);
            client.execute(&stmt, &[&scope, &start]).await.map_err(fail)
        })
        .await
    }
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

/// Reads one row by key (used by `get` and by the feed's re-reads).
async fn fetch(
    client: &deadpool_postgres::Object,
    target: &str,
    table: &str,
    key: &str,
) -> Result<Option<RawRow>> {
    let fail = |e| pg_error(target, "get", e);
    let stmt = client.prepare_cached(sql::GET).await.map_err(fail)?;
    match client
        .query_opt(&stmt, &[&table, &key])
        .await
        .map_err(fail)?
    {
        Some(row) => read_row(&row, 0, key.to_owned(), target),
        None => Ok(None),
    }
}

/// Reads the columns value, created_at, updated_at, deleted_at, updated_by
/// starting at `first`; `None` when the value is NULL (an outer join found
/// no row).
fn read_row(
    row: &tokio_postgres::Row,
    first: usize,
    key: String,
    target: &str,
) -> Result<Option<RawRow>> {
    let value: Option<String> = column(row, first, target)?;
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(Some(RawRow {
        key,
        value: Payload::from_json(value),
        created_at: column(row, first + 1, target)?,
        updated_at: column(row, first + 2, target)?,
        deleted_at: column(row, first + 3, target)?,
        updated_by: column::<Option<&str>>(row, first + 4, target)?.map(Arc::from),
    }))
}

fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
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

fn corrupt(target: &str, what: &str) -> Error {
    Error::backend_msg(format!("PostgreSQL ({target}): {what}"))
}
