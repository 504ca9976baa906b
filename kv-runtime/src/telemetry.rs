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
    match result {
        Ok(_) => get_ok::count(table),
        Err(e) => metrics::counter!(
            "kv_operations_total",
            "table" => table,
            "op" => "get",
            "outcome" => e.code().as_str()
        )
        .increment(1),
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (table, result);
}

/// The counter of successful gets, registered once per table and thread
/// instead of on every call: `counter!` builds the key's labels and looks
/// them up in the recorder's registry each time, which more than doubled
/// the cost of an in-memory `get` under the Prometheus recorder
/// (`benches/metrics.rs`).
///
/// Only handles of the global recorder are kept. It never moves once
/// installed, so its address identifies it; a local recorder (as tests
/// use) may be followed by another at the same address, and a handle kept
/// from the first would count into a registry nobody reads. A recorder is
/// known to be the global one when a fresh thread, which has no local
/// recorder, sees the same address: asked once per new address.
#[cfg(feature = "metrics")]
mod get_ok {
    use std::cell::RefCell;
    use std::sync::Mutex;

    use metrics::{Counter, Key, Label, Level, Metadata, Recorder};

    /// What this thread knows.
    #[derive(Default)]
    struct Cache {
        /// Registered counters: the recorder's address and the table's
        /// name (a `&'static str`, by address).
        counters: Vec<(usize, usize, usize, Counter)>,
        /// Addresses found not to be the global recorder's: counted
        /// without a handle, and not asked about again.
        local: Vec<usize>,
    }

    /// More than an app has tables; past it the cache starts over.
    const CAPACITY: usize = 64;

    /// Addresses a fresh thread has seen: the global recorder's, or the
    /// no-op recorder's before one is installed. Both are static.
    static GLOBAL: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    }

    pub(super) fn count(table: &'static str) {
        metrics::with_recorder(|recorder| {
            let address = address_of(recorder);
            let counted = CACHE.try_with(|cache| {
                // A recorder that counts a get from inside its own
                // `register_counter` finds the cache borrowed: that get is
                // counted without it.
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return false;
                };
                let (name, len) = (table.as_ptr() as usize, table.len());
                if let Some((.., counter)) = cache
                    .counters
                    .iter()
                    .find(|c| c.0 == address && c.1 == name && c.2 == len)
                {
                    counter.increment(1);
                    return true;
                }
                if cache.local.contains(&address) || !is_global(address) {
                    if cache.local.len() == CAPACITY {
                        cache.local.clear();
                    }
                    cache.local.push(address);
                    return false;
                }
                let counter = register(recorder, table);
                counter.increment(1);
                if cache.counters.len() == CAPACITY {
                    cache.counters.clear();
                }
                cache.counters.push((address, name, len, counter));
                true
            });
            if counted != Ok(true) {
                register(recorder, table).increment(1);
            }
        })
    }

    fn address_of(recorder: &dyn Recorder) -> usize {
        recorder as *const dyn Recorder as *const () as usize
    }

    /// Whether `address` is the global (or no-op) recorder's.
    fn is_global(address: usize) -> bool {
        let mut global = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        if global.contains(&address) {
            return true;
        }
        let seen = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("kv-metrics-probe".into())
                .spawn_scoped(s, || metrics::with_recorder(address_of))
                .ok()
                .and_then(|probe| probe.join().ok())
        });
        match seen {
            Some(seen) => {
                if !global.contains(&seen) {
                    global.push(seen);
                }
                seen == address
            }
            None => false,
        }
    }

    fn register(recorder: &dyn Recorder, table: &'static str) -> Counter {
        static METADATA: Metadata<'static> =
            Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        let key = Key::from_parts(
            "kv_operations_total",
            vec![
                Label::new("table", table),
                Label::from_static_parts("op", "get"),
                Label::from_static_parts("outcome", "ok"),
            ],
        );
        recorder.register_counter(&key, &METADATA)
    }
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
