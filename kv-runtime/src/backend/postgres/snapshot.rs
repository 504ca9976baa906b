//! A consistent read view: one connection of the read pool held in one
//! `REPEATABLE READ READ ONLY` transaction, whose every statement sees the
//! database as of its first one. The connection is closed, not returned to
//! the pool, when the snapshot is dropped, so that no other call inherits
//! the open transaction.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::errors::{deadline_error, pg_error, pool_error, Access};
use super::ops::{column, read_batch_row, table_infos};
use super::pool::Core;
use super::sql::{self, Stmt};
use crate::backend::row::Authors;
use crate::backend::{OtherData, RawRow, Snapshot, TableInfo};
use crate::error::{Error, Result};

/// The snapshot of [`PostgresBackend::snapshot`](super::PostgresBackend).
pub(super) struct PgSnapshot {
    core: Arc<Core>,
    /// `None` once a call failed mid-statement (the connection was closed).
    client: Option<deadpool_postgres::Object>,
}

impl PgSnapshot {
    /// Takes a connection of the read pool and starts the transaction.
    pub(super) async fn begin(core: Arc<Core>) -> Result<PgSnapshot> {
        let limit = core.op_timeout;
        let object = tokio::time::timeout(limit, core.read.get())
            .await
            .map_err(|_| deadline_error(core.target(), "snapshot", Access::Read, false, limit))?
            .map_err(|e| pool_error(&core.endpoint, "snapshot", e))?;
        let mut snapshot = PgSnapshot {
            core,
            client: Some(object),
        };
        snapshot.simple(sql::BEGIN_SNAPSHOT).await?;
        // The first statement fixes the transaction's view.
        snapshot.simple("SELECT 1").await?;
        Ok(snapshot)
    }

    fn client(&self) -> Result<&deadpool_postgres::Object> {
        self.client.as_ref().ok_or_else(|| {
            Error::backend_msg(format!(
                "PostgreSQL ({}): the snapshot lost its connection to an earlier failure; take \
                 a new snapshot",
                self.core.target()
            ))
        })
    }

    /// The answer of a call given `op_timeout`; a call cut short closes
    /// the connection (its statement may still be running).
    fn settle<T>(
        &mut self,
        op: &str,
        outcome: std::result::Result<
            std::result::Result<T, tokio_postgres::Error>,
            tokio::time::error::Elapsed,
        >,
    ) -> Result<T> {
        match outcome {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(pg_error(self.core.target(), op, e)),
            Err(_) => {
                self.close();
                let limit = self.core.op_timeout;
                Err(deadline_error(
                    self.core.target(),
                    op,
                    Access::Read,
                    true,
                    limit,
                ))
            }
        }
    }

    async fn simple(&mut self, sql: &str) -> Result<()> {
        let limit = self.core.op_timeout;
        let outcome = {
            let client = self.client()?;
            tokio::time::timeout(limit, client.batch_execute(sql)).await
        };
        self.settle("snapshot", outcome)
    }

    async fn query(
        &mut self,
        op: &str,
        stmt: &Stmt,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let (limit, prepared) = (self.core.op_timeout, self.core.prepared);
        let outcome = {
            let client = self.client()?;
            tokio::time::timeout(limit, async move {
                if prepared {
                    let statement = client.prepare_cached(&stmt.text).await?;
                    client.query(&statement, params).await
                } else {
                    let typed: Vec<(&(dyn ToSql + Sync), tokio_postgres::types::Type)> = params
                        .iter()
                        .zip(stmt.types)
                        .map(|(p, t)| (*p, t.clone()))
                        .collect();
                    client.query_typed(&stmt.text, &typed).await
                }
            })
            .await
        };
        self.settle(op, outcome)
    }

    /// Closes the connection (ending the transaction on the server).
    fn close(&mut self) {
        if let Some(object) = self.client.take() {
            drop(deadpool_postgres::Object::take(object));
        }
    }
}

#[async_trait]
impl Snapshot for PgSnapshot {
    async fn tables(&mut self) -> Result<Vec<TableInfo>> {
        let core = Arc::clone(&self.core);
        let rows = self
            .query("snapshot tables", &core.stmts.tables, &[])
            .await?;
        table_infos(&rows, core.target())
    }

    async fn scan(
        &mut self,
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawRow>> {
        let core = Arc::clone(&self.core);
        let target = core.target();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            None => {
                self.query("snapshot scan", &core.stmts.scan_first, &[&table, &limit])
                    .await?
            }
            Some(after) => {
                self.query(
                    "snapshot scan",
                    &core.stmts.scan_after,
                    &[&table, &after, &limit],
                )
                .await?
            }
        };
        let mut authors = Authors::default();
        rows.iter()
            .map(|row| {
                let key: String = column(row, 0, target)?;
                read_batch_row(row, 1, key, target, &mut authors)?.ok_or_else(|| {
                    Error::backend_msg(format!(
                        "PostgreSQL ({target}): a snapshot scan returned a row without a value"
                    ))
                })
            })
            .collect()
    }

    async fn other_data(&mut self) -> Result<OtherData> {
        let core = Arc::clone(&self.core);
        let target = core.target();
        let rows = self
            .query("snapshot other data", &core.stmts.other_data, &[])
            .await?;
        let (mut history, mut logs) = (Vec::new(), Vec::new());
        for row in &rows {
            let kind: String = column(row, 0, target)?;
            let n: i64 = column(row, 2, target)?;
            let into = if kind == "h" { &mut history } else { &mut logs };
            into.push((
                column::<String>(row, 1, target)?,
                u64::try_from(n).unwrap_or(0),
            ));
        }
        Ok(OtherData::new(history, logs))
    }
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        self.close();
    }
}
