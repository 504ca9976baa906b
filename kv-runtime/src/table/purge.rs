//! Delayed cleanup: removing rows soft-deleted long ago.

use std::time::Duration;

use super::Table;
use crate::backend::Purge;
use crate::error::{Error, Result};
use crate::schema::KvSchema;
use crate::telemetry;

impl<S: KvSchema> Table<S> {
    /// Permanently removes rows soft-deleted longer ago than `retention`
    /// (and, with `clean_files`, their files), and forgets the rate-limit
    /// counts of callers that have gone quiet. Live rows and rows deleted
    /// more recently are untouched. Returns how many rows were purged.
    ///
    /// On a table with `history`, each purged row gets a `purge` record,
    /// and records older than `history(keep_for = ...)` are dropped for
    /// every key of the table (keys still written are trimmed at each
    /// change too), in the same atomic step.
    ///
    /// This is a server-side operation with no caller context; run it from
    /// a job, or let [`Table::spawn_purge`] run it on an interval. A
    /// retention under one second or over 100 years is [`Error::Config`].
    pub async fn purge(&self, retention: Duration) -> Result<usize> {
        telemetry::measured(S::TABLE, "purge", None, self.purge_now(retention)).await
    }

    async fn purge_now(&self, retention: Duration) -> Result<usize> {
        check_retention(retention)?;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let now = self.store.now();
        let purge = Purge {
            deleted_before: now.saturating_sub(retention_ms),
            now,
            // A server-side operation: what `Ctx::internal()` writes as.
            updated_by: Some("internal"),
            history: S::HISTORY,
        };
        let purged = self.store.backend.purge(S::TABLE, purge).await?;
        if S::CLEAN_FILES && !purged.is_empty() {
            self.clean_files(&purged, &[]).await;
        }
        if let Some(limit) = S::RATE_LIMIT {
            // Forget callers that have gone quiet.
            let window = crate::backend::Window {
                max: limit.max,
                window_ms: i64::try_from(limit.window_ms).unwrap_or(i64::MAX),
            };
            let counter = self.store.backend.rate_counter();
            counter.sweep(S::TABLE, window, self.store.now()).await?;
        }
        Ok(purged.len())
    }

    /// Runs [`Table::purge`] every `every` in a background task ("delayed
    /// cleanup") until the returned handle is dropped. Failures are logged
    /// and retried on the next tick.
    ///
    /// Fails with [`Error::Config`] for a retention [`Table::purge`]
    /// refuses, an interval of zero, or a call outside a Tokio runtime
    /// (which runs the task).
    pub fn spawn_purge(&self, retention: Duration, every: Duration) -> Result<PurgeTask> {
        let table = self.clone();
        PurgeTask::spawn(S::TABLE, "rows", retention, every, move || {
            let table = table.clone();
            async move { table.purge(retention).await }
        })
    }
}

/// A background purge started by [`Table::spawn_purge`]; dropping it stops
/// the task.
#[derive(Debug)]
pub struct PurgeTask {
    handle: tokio::task::JoinHandle<()>,
}

impl PurgeTask {
    /// Runs `purge` (of `table`'s soft-deleted `what`) every `every` in a
    /// background task, logging failures and retrying on the next tick:
    /// the task behind [`Table::spawn_purge`] and
    /// [`Log::spawn_purge`](crate::Log::spawn_purge). [`Error::Config`] for
    /// a retention the purge refuses, an interval of zero, or a call
    /// outside a Tokio runtime.
    pub(crate) fn spawn<F, Fut>(
        table: &'static str,
        what: &'static str,
        retention: Duration,
        every: Duration,
        purge: F,
    ) -> Result<PurgeTask>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<usize>> + Send,
    {
        check_retention(retention)?;
        if every.is_zero() {
            return Err(Error::Config(
                "a purge interval of zero would spin; use at least one millisecond".into(),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("spawn_purge needs a Tokio runtime to run its task".into())
        })?;
        let handle = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match purge().await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(
                        target: "kv_runtime::purge",
                        table,
                        "purged {n} soft-deleted {what}"
                    ),
                    Err(e) => tracing::warn!(
                        target: "kv_runtime::purge",
                        table,
                        "purge of {what} failed, retrying next tick: {e}"
                    ),
                }
            }
        });
        Ok(PurgeTask { handle })
    }
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub(crate) fn check_retention(retention: Duration) -> Result<()> {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    if retention < Duration::from_secs(1) || retention > CENTURY {
        return Err(Error::Config(format!(
            "a purge retention of {retention:?} is refused: keep deleted rows between one second \
             and 100 years"
        )));
    }
    Ok(())
}
