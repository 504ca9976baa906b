//! Metrics and traces; documented in the crate docs (Observability).

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::Result;

/// One operation being measured: its span, and (with `metrics`) its start.
struct Op {
    table: &'static str,
    op: &'static str,
    span: Span,
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Op {
    /// Starts measuring `op` on `table`, about `key` (recorded at DEBUG).
    fn start(table: &'static str, op: &'static str, key: Option<&str>) -> Op {
        let span = tracing::info_span!(
            target: "kv_runtime::ops",
            "kv",
            table,
            op,
            outcome = Empty,
            key = Empty
        );
        if let Some(key) = key {
            if tracing::enabled!(target: "kv_runtime::ops", tracing::Level::DEBUG) {
                span.record("key", key);
            }
        }
        Op {
            table,
            op,
            span,
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    /// The span to run the operation in.
    fn span(&self) -> Span {
        self.span.clone()
    }

    /// Records how the operation ended.
    fn finish<T>(self, result: &Result<T>) {
        let outcome = outcome(result);
        self.span.record("outcome", outcome);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(
                "kv_operations_total",
                "table" => self.table,
                "op" => self.op,
                "outcome" => outcome
            )
            .increment(1);
            metrics::histogram!(
                "kv_operation_duration_seconds",
                "table" => self.table,
                "op" => self.op
            )
            .record(self.started.elapsed().as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (self.table, self.op);
    }
}

/// Runs `work` as operation `op` on `table`: in its span, counted and
/// timed by outcome.
pub(crate) async fn measured<T>(
    table: &'static str,
    op: &'static str,
    key: Option<&str>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let measuring = Op::start(table, op, key);
    let result = work.instrument(measuring.span()).await;
    measuring.finish(&result);
    result
}

/// `ok`, or the error's code.
fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    }
}

/// Counts a `get` (not timed: it runs on every request).
#[inline]
pub(crate) fn count_get<T>(table: &'static str, result: &Result<T>) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        "kv_operations_total",
        "table" => table,
        "op" => "get",
        "outcome" => outcome(result)
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (table, result);
}

/// A replica's state after it applied a batch.
pub(crate) fn replica(table: &'static str, in_sync: bool, lag_ms: Option<i64>, resynced: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("kv_replica_in_sync", "table" => table).set(f64::from(u8::from(in_sync)));
        if let Some(ms) = lag_ms {
            metrics::gauge!("kv_replica_lag_seconds", "table" => table).set(ms as f64 / 1000.0);
        }
        if resynced {
            metrics::counter!("kv_replica_resyncs_total", "table" => table).increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (table, in_sync, lag_ms, resynced);
}

/// A change feed announced possible loss.
pub(crate) fn feed_resync() {
    #[cfg(feature = "metrics")]
    metrics::counter!("kv_feed_resyncs_total").increment(1);
}

/// A file could not be deleted.
pub(crate) fn file_cleanup_failed(table: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("kv_file_cleanup_failures_total", "table" => table).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = table;
}

/// How many event streams a router of `table` has open now.
#[cfg_attr(not(feature = "web"), allow(dead_code))]
pub(crate) fn event_streams(table: &'static str, open: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("kv_event_streams", "table" => table).set(open as f64);
    #[cfg(not(feature = "metrics"))]
    let _ = (table, open);
}

/// The connections of a PostgreSQL pool (`read` or `write`) now.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn pool(pool: &'static str, in_use: usize, idle: usize, waiting: usize) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("kv_pool_connections", "pool" => pool, "state" => "in_use")
            .set(in_use as f64);
        metrics::gauge!("kv_pool_connections", "pool" => pool, "state" => "idle").set(idle as f64);
        metrics::gauge!("kv_pool_waiting", "pool" => pool).set(waiting as f64);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (pool, in_use, idle, waiting);
}
