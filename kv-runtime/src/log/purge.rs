//! Delayed cleanup of a log: removing entries soft-deleted long ago.

use std::time::Duration;

use super::{Log, LogSchema};
use crate::error::Result;
use crate::table::{check_retention, PurgeTask};
use crate::telemetry;

impl<L: LogSchema> Log<L> {
    /// Permanently removes the entries (of every parent) soft-deleted
    /// longer ago than `retention`, and forgets the rate-limit counts of
    /// callers that have gone quiet. Returns how many entries went; their
    /// numbers are not reused. A server-side operation with no caller
    /// context; a retention under one second or over 100 years is
    /// [`Error::Config`].
    pub async fn purge(&self, retention: Duration) -> Result<usize> {
        let work = async {
            check_retention(retention)?;
            let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            let cutoff = self.store.now().saturating_sub(retention_ms);
            let purged = self.store.backend.logs().purge(L::TABLE, cutoff).await?;
            if let Some(limit) = L::RATE_LIMIT {
                let window = crate::quota::limit::window(limit);
                self.store
                    .backend
                    .rate_counter()
                    .sweep(&Self::rate_scope(), window, self.store.now())
                    .await?;
            }
            Ok(usize::try_from(purged).unwrap_or(usize::MAX))
        };
        telemetry::measured(L::TABLE, "purge", None, work).await
    }

    /// Runs [`Log::purge`] every `every` in a background task until the
    /// returned handle is dropped; failures are logged and retried on the
    /// next tick. [`Error::Config`] for a retention `purge` refuses, an
    /// interval of zero, or a call outside a Tokio runtime.
    pub fn spawn_purge(&self, retention: Duration, every: Duration) -> Result<PurgeTask> {
        let log = self.clone();
        PurgeTask::spawn(L::TABLE, "log entries", retention, every, move || {
            let log = log.clone();
            async move { log.purge(retention).await }
        })
    }
}
