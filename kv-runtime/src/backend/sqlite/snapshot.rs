//! A consistent read view: one reader connection held in one read
//! transaction. In WAL mode the transaction sees the database as of its
//! first read, whatever the writer commits meanwhile.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::OwnedSemaphorePermit;

use super::{ops, run_blocking, Shared};
use crate::backend::{OtherData, RawRow, Snapshot, TableInfo};
use crate::error::{Error, Result};

/// Starts the read transaction and reads once, which fixes its view.
pub(super) fn begin(conn: &Connection) -> rusqlite::Result<()> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    conn.execute_batch("BEGIN")?;
    ops::ping(conn)
}

/// Ends the read transaction and hands the connection back to the pool
/// (or drops it, when the transaction cannot be ended).
pub(super) fn end(shared: &Shared, conn: Connection) {
    if conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok() {
        shared.give_back_reader(conn);
    }
}

/// The snapshot of [`SqliteBackend::snapshot`](super::SqliteBackend).
pub(super) struct SqliteSnapshot {
    shared: Arc<Shared>,
    /// `None` while a read runs on a blocking thread, or after one was lost.
    conn: Option<Connection>,
    /// The reader's slot in the pool, held until the snapshot is dropped.
    _permit: OwnedSemaphorePermit,
}

impl SqliteSnapshot {
    pub(super) fn new(shared: Arc<Shared>, conn: Connection, permit: OwnedSemaphorePermit) -> Self {
        SqliteSnapshot {
            shared,
            conn: Some(conn),
            _permit: permit,
        }
    }

    /// Runs `f` on the snapshot's connection, off the runtime's threads.
    async fn read<T, F>(&mut self, op: &'static str, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.take().ok_or_else(|| {
            Error::backend_msg(format!(
                "SQLite {op} on `{}`: the snapshot lost its connection to an earlier failure; \
                 take a new snapshot",
                self.shared.path.display()
            ))
        })?;
        let deadline = Instant::now() + self.shared.options.timeout;
        let shared = Arc::clone(&self.shared);
        let (conn, out) = run_blocking(move || {
            let out = ops::retry_busy(deadline, || f(&conn)).map_err(|e| shared.error(op, e));
            Ok((conn, out))
        })
        .await?;
        self.conn = Some(conn);
        out
    }
}

#[async_trait]
impl Snapshot for SqliteSnapshot {
    async fn tables(&mut self) -> Result<Vec<TableInfo>> {
        self.read("snapshot tables", ops::tables).await
    }

    async fn scan(
        &mut self,
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawRow>> {
        let (table, after) = (table.to_owned(), after.map(str::to_owned));
        self.read("snapshot scan", move |conn| {
            ops::scan(conn, &table, after.as_deref(), limit)
        })
        .await
    }

    async fn other_data(&mut self) -> Result<OtherData> {
        self.read("snapshot other data", ops::other_data).await
    }
}

impl Drop for SqliteSnapshot {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            end(&self.shared, conn);
        }
    }
}
