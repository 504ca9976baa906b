//! The quota primitive: a sliding window of counted uses per
//! `(scope, bucket)`, kept where every process sharing the storage sees it.
//! Quotas ([`Quota`](crate::Quota)) and the rate limits of tables and logs
//! all count through it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::error::Result;

/// A sliding window: at most `max` uses in any `window_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Uses admitted per window.
    pub max: u32,
    /// The window's length in milliseconds (at least 1).
    pub window_ms: i64,
}

impl Window {
    /// Milliseconds until a slot frees, given the oldest use still in the
    /// window: when it leaves the window, at least 1.
    pub fn retry_after_ms(self, oldest: i64, now: i64) -> i64 {
        oldest
            .saturating_add(self.window_ms)
            .saturating_sub(now)
            .max(1)
    }

    /// The start of the window ending at `now`: uses at or before it have
    /// left the window (the window is `(now - window_ms, now]`).
    pub fn start(self, now: i64) -> i64 {
        now.saturating_sub(self.window_ms)
    }

    /// The usage of a bucket whose uses still in the window are `hits`, in
    /// ascending order. Backends that read the uses back compute their
    /// answer with it.
    pub fn usage(self, hits: &[i64]) -> Usage {
        let used = u32::try_from(hits.len()).unwrap_or(u32::MAX);
        // Below `max` uses a slot is free now; at or above it, a slot frees
        // when the use at `used - max` (0-based, ascending) leaves.
        let full_until = (used >= self.max && self.max > 0)
            .then(|| hits.get((used - self.max) as usize).copied())
            .flatten()
            .map(|at| at.saturating_add(self.window_ms));
        Usage {
            used,
            oldest: hits.first().copied(),
            full_until,
        }
    }

    /// Whether `n` more uses fit beside `hits` (ascending, in the window),
    /// and if not, in how many milliseconds they will (`None`: never, as
    /// `n` is above `max`).
    pub fn admits(self, hits: &[i64], n: u32, now: i64) -> Result<(), Option<i64>> {
        let used = u64::try_from(hits.len()).unwrap_or(u64::MAX);
        let (n64, max) = (u64::from(n), u64::from(self.max));
        if used + n64 <= max {
            return Ok(());
        }
        if n64 > max {
            return Err(None);
        }
        // `used + n - max` uses must leave; the last of them is the one at
        // index `used + n - max - 1`.
        let index = usize::try_from(used + n64 - max - 1).unwrap_or(usize::MAX);
        let at = hits.get(index).copied().unwrap_or(now);
        Err(Some(self.retry_after_ms(at, now)))
    }
}

/// How much of a bucket's window is used, at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uses counted in the window ending now.
    pub used: u32,
    /// The oldest of them, ms since the epoch (`None` when none).
    pub oldest: Option<i64>,
    /// While the window is full (`used >= max`): when one more use will fit,
    /// ms since the epoch. `None` when one fits now.
    pub full_until: Option<i64>,
}

/// What [`RateCounter::consume`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// The uses were admitted and counted; the usage after them.
    Admitted(Usage),
    /// They do not fit; nothing was counted.
    Limited {
        /// Milliseconds until they would fit (at least 1).
        retry_after_ms: i64,
        /// The usage, unchanged.
        usage: Usage,
    },
}

/// The quota primitive: counts uses per `(scope, bucket)` in a sliding
/// window, atomically and shared by every process using the same storage.
/// A backend hands it out with
/// [`Backend::rate_counter`](super::Backend::rate_counter).
///
/// Scopes in use: a table's name for its rate limit, `log:<name>` for a
/// log's, `quota:<name>` for a [`Quota`](crate::Quota); the bucket is the
/// caller or the quota's owner.
///
/// Every method takes the time `now` from the caller's clock. A use counted
/// at `at` is in the window ending at `now` while `at > now - window_ms`;
/// so a use counted "in the future" (by a clock that has since stepped
/// back, or by another process's clock running ahead) counts until it has
/// left the window too.
#[async_trait]
pub trait RateCounter: Send + Sync {
    /// The usage of `bucket` in `scope` in the window ending at `now`,
    /// counting nothing.
    async fn peek(&self, scope: &str, bucket: &str, window: Window, now: i64) -> Result<Usage>;

    /// Counts `n` uses of `bucket` (`1 <= n <= window.max`) when they fit:
    /// admitted when at most `window.max - n` uses were counted in the
    /// window ending at `now`, and then counted at `now`; refused otherwise,
    /// counting nothing. The check and the count are one atomic step for
    /// every process using the same storage.
    ///
    /// Uses later than `now` (counted before the clock stepped back) are
    /// in the window too. A use at or before the window's start has left
    /// it and may be forgotten (by this call or a sweep); once forgotten it
    /// does not count again if the clock steps back.
    async fn consume(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<RateDecision>;

    /// Counts `n` uses of `bucket` at `now` whether or not they fit (the
    /// window may then hold more than `window.max`), and returns the usage
    /// after them.
    async fn record(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<Usage>;

    /// Forgets every use of `bucket` in `scope`. Returns whether it had any.
    async fn reset(&self, scope: &str, bucket: &str) -> Result<bool>;

    /// Forgets the buckets of `scope` with no use left in the window ending
    /// at `now` (callers that went quiet), so that the counter does not grow
    /// with every caller ever seen. Returns how many entries it removed.
    /// Counters should also do this on their own from time to time;
    /// [`Table::purge`](crate::Table::purge) calls it for its table.
    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64>;
}

/// How many uses a counter admits between two sweeps of its own.
pub(crate) const SWEEP_EVERY: u64 = 1024;

/// A [`RateCounter`] in process memory, for backends that keep everything
/// in one process (the memory backend uses it). Each bucket keeps the times
/// of its counted uses still in the window, in ascending order.
#[derive(Debug, Default)]
pub struct MemoryRateCounter {
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    /// Per (scope, bucket): the window last used, and the uses in it.
    hits: HashMap<(String, String), (i64, Vec<i64>)>,
    /// Uses counted since the last sweep.
    since_sweep: u64,
}

impl Buckets {
    /// The bucket's uses still in `window` at `now`, ascending, after
    /// dropping those that left it; sweeps every bucket from time to time.
    fn bucket(&mut self, scope: &str, bucket: &str, window: Window, now: i64) -> &mut Vec<i64> {
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            // Drop every bucket idle for its whole window, whatever its scope.
            self.since_sweep = 0;
            self.hits.retain(|_, (window_ms, hits)| {
                let start = now.saturating_sub(*window_ms);
                hits.iter().any(|&at| at > start)
            });
        }
        let (window_ms, hits) = self
            .hits
            .entry((scope.to_owned(), bucket.to_owned()))
            .or_default();
        *window_ms = window.window_ms;
        let start = window.start(now);
        // Not a prefix: after the clock steps back, uses "in the future" stay.
        hits.retain(|&at| at > start);
        hits
    }
}

impl MemoryRateCounter {
    /// A counter with no uses.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Adds `n` uses at `now` to `hits`, keeping it ascending.
pub(crate) fn add_uses(hits: &mut Vec<i64>, n: u32, now: i64) {
    let at = hits.partition_point(|&h| h <= now);
    hits.splice(at..at, std::iter::repeat_n(now, n as usize));
}

#[async_trait]
impl RateCounter for MemoryRateCounter {
    async fn peek(&self, scope: &str, bucket: &str, window: Window, now: i64) -> Result<Usage> {
        let all = self.lock();
        let start = window.start(now);
        let hits: Vec<i64> = all
            .hits
            .get(&(scope.to_owned(), bucket.to_owned()))
            .map(|(_, hits)| hits.iter().copied().filter(|&at| at > start).collect())
            .unwrap_or_default();
        Ok(window.usage(&hits))
    }

    async fn consume(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<RateDecision> {
        let mut all = self.lock();
        let hits = all.bucket(scope, bucket, window, now);
        match window.admits(hits, n, now) {
            Ok(()) => {
                add_uses(hits, n, now);
                Ok(RateDecision::Admitted(window.usage(hits)))
            }
            Err(retry) => Ok(RateDecision::Limited {
                retry_after_ms: retry.unwrap_or(i64::MAX),
                usage: window.usage(hits),
            }),
        }
    }

    async fn record(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        n: u32,
        now: i64,
    ) -> Result<Usage> {
        let mut all = self.lock();
        let hits = all.bucket(scope, bucket, window, now);
        add_uses(hits, n, now);
        Ok(window.usage(hits))
    }

    async fn reset(&self, scope: &str, bucket: &str) -> Result<bool> {
        let mut all = self.lock();
        let removed = all.hits.remove(&(scope.to_owned(), bucket.to_owned()));
        Ok(removed.is_some_and(|(_, hits)| !hits.is_empty()))
    }

    async fn sweep(&self, scope: &str, window: Window, now: i64) -> Result<u64> {
        let mut all = self.lock();
        let start = window.start(now);
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

    const W: Window = Window {
        max: 3,
        window_ms: 1_000,
    };

    #[test]
    fn usage_says_when_a_slot_frees() {
        assert_eq!(W.usage(&[]), Usage::default());
        let two = W.usage(&[10, 20]);
        assert_eq!((two.used, two.oldest, two.full_until), (2, Some(10), None));
        let full = W.usage(&[10, 20, 30]);
        assert_eq!(full.full_until, Some(1_010));
        // Over the limit (recorded uses): the window must drop below max.
        let over = W.usage(&[10, 20, 30, 40, 50]);
        assert_eq!(over.full_until, Some(1_030));
    }

    #[test]
    fn admits_counts_n_uses() {
        assert_eq!(W.admits(&[10], 2, 100), Ok(()));
        // Two must leave for 3 to fit: the second, at 20, leaves at 1020.
        assert_eq!(W.admits(&[10, 20], 3, 100), Err(Some(920)));
        assert_eq!(W.admits(&[], 4, 100), Err(None));
    }

    #[test]
    fn uses_stay_sorted_when_the_clock_steps_back() {
        let mut hits = vec![10, 30];
        add_uses(&mut hits, 2, 20);
        assert_eq!(hits, [10, 20, 20, 30]);
        add_uses(&mut hits, 1, 40);
        assert_eq!(hits, [10, 20, 20, 30, 40]);
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
                counter.consume("t", &bucket, w, 1, 0).await.unwrap();
            }
            assert_eq!(counter.lock().hits.len(), 1023);
            // A sweep of its own, once a window has passed: only the new
            // caller's bucket is left.
            counter.consume("t", "late", w, 1, 5_000).await.unwrap();
            assert_eq!(counter.lock().hits.len(), 1);
            // An explicit sweep of one scope leaves others alone.
            counter.consume("other", "x", w, 1, 5_000).await.unwrap();
            assert_eq!(counter.sweep("t", w, 5_500).await.unwrap(), 0);
            assert_eq!(counter.sweep("t", w, 7_000).await.unwrap(), 1);
            assert_eq!(counter.lock().hits.len(), 1);
        });
    }
}
