//! Counting writes for rate limits: a sliding window per caller, kept where
//! every process sharing the storage sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::Result;

/// A sliding window: at most `max` hits in any `window_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Hits admitted per window.
    pub max: u32,
    /// The window's length in milliseconds (at least 1).
    pub window_ms: i64,
}

impl Window {
    /// Milliseconds until a slot frees, given the oldest hit still in the
    /// window: when it leaves the window, at least 1.
    pub fn retry_after_ms(self, oldest: i64, now: i64) -> i64 {
        oldest
            .saturating_add(self.window_ms)
            .saturating_sub(now)
            .max(1)
    }
}

/// What [`RateCounter::hit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// The hit is admitted and was counted.
    Admitted,
    /// The window is full; nothing was counted.
    Limited {
        /// Milliseconds until the oldest counted hit leaves the window.
        retry_after_ms: i64,
    },
}

/// Counts hits per `(scope, bucket)` in a sliding window. A backend hands
/// out its counter with [`Backend::rate_counter`](super::Backend::rate_counter);
/// tables use `scope` = the table name and `bucket` = the caller.
#[async_trait]
pub trait RateCounter: Send + Sync {
    /// Counts one hit of `bucket` in `scope`: admitted when fewer than
    /// `window.max` hits are counted after `now - window_ms`, and then
    /// counted; refused otherwise, counting nothing. Atomic, and shared by
    /// every process using the same storage.
    ///
    /// Hits later than `now` (counted before the clock stepped back) are
    /// in the window too. A hit at or before `now - window_ms` has left it
    /// and may be forgotten (by this call or a sweep); once forgotten it
    /// does not count again if the clock steps back.
    async fn hit(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        now: i64,
    ) -> Result<RateDecision>;

    /// Forgets the buckets of `scope` with no hit left in the window ending
    /// at `now` (callers that went quiet), so that the counter does not grow
    /// with every caller ever seen. Returns how many entries it removed.
    /// Counters should also do this on their own from time to time;
    /// [`Table::purge`](crate::Table::purge) calls it for its table.
    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64>;
}

/// How many hits a counter admits between two sweeps of its own.
pub(crate) const SWEEP_EVERY: u64 = 1024;

/// A [`RateCounter`] in process memory, for backends that keep everything
/// in one process (the memory backend uses it). Each bucket keeps the times
/// of its admitted hits still in the window.
#[derive(Debug, Default)]
pub struct MemoryRateCounter {
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Per (scope, bucket): the window last used, and the admitted hits in it.
    hits: HashMap<(String, String), (i64, VecDeque<i64>)>,
    /// Hits admitted since the last sweep.
    since_sweep: u64,
}

impl MemoryRateCounter {
    /// A counter with no hits.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RateCounter for MemoryRateCounter {
    async fn hit(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        now: i64,
    ) -> Result<RateDecision> {
        let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        all.since_sweep += 1;
        if all.since_sweep >= SWEEP_EVERY {
            // Drop every bucket idle for its whole window, whatever its scope.
            all.since_sweep = 0;
            all.hits.retain(|_, (window_ms, hits)| {
                let start = now.saturating_sub(*window_ms);
                hits.iter().any(|&at| at > start)
            });
        }
        let (window_ms, hits) = all
            .hits
            .entry((scope.to_owned(), bucket.to_owned()))
            .or_default();
        *window_ms = window.window_ms;
        let start = now.saturating_sub(window.window_ms);
        // Not `pop_front` while old: after the clock steps back, the log is
        // no longer in time order. It holds at most `max` entries.
        hits.retain(|&at| at > start);
        if hits.len() >= window.max as usize {
            let oldest = hits.iter().copied().min().unwrap_or(now);
            return Ok(RateDecision::Limited {
                retry_after_ms: window.retry_after_ms(oldest, now),
            });
        }
        hits.push_back(now);
        Ok(RateDecision::Admitted)
    }

    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64> {
        let mut all = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let start = now.saturating_sub(window.window_ms);
        let before = all.hits.len();
        all.hits
            .retain(|(s, _), (_, hits)| s != scope || hits.iter().any(|&at| at > start));
        Ok((before - all.hits.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        run(async {
            let counter = MemoryRateCounter::new();
            let w = Window {
                max: 2,
                window_ms: 1_000,
            };
            for caller in 0..SWEEP_EVERY - 1 {
                let bucket = format!("caller{caller}");
                counter.hit("t", &bucket, w, 0).await.unwrap();
            }
            assert_eq!(counter.buckets.lock().unwrap().hits.len(), 1023);
            // A sweep of its own, once a window has passed: only the new
            // caller's bucket is left.
            counter.hit("t", "late", w, 5_000).await.unwrap();
            assert_eq!(counter.buckets.lock().unwrap().hits.len(), 1);
            // An explicit sweep of one scope leaves others alone.
            counter.hit("other", "x", w, 5_000).await.unwrap();
            assert_eq!(counter.sweep("t", w, 5_500).await.unwrap(), 0);
            assert_eq!(counter.sweep("t", w, 7_000).await.unwrap(), 1);
            assert_eq!(counter.buckets.lock().unwrap().hits.len(), 1);
        });
    }
}
