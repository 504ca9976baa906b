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
    /// `window.max` hits were counted in `(now - window_ms, now]`, and then
    /// counted; refused otherwise, counting nothing. Atomic, and shared by
    /// every process using the same storage.
    async fn hit(
        &self,
        scope: &str,
        bucket: &str,
        window: Window,
        now: i64,
    ) -> Result<RateDecision>;
}

/// A [`RateCounter`] in process memory, for backends that keep everything
/// in one process (the memory backend uses it). Each bucket keeps the times
/// of its admitted hits still in the window.
#[derive(Debug, Default)]
pub struct MemoryRateCounter {
    hits: Mutex<HashMap<(String, String), VecDeque<i64>>>,
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
        let mut all = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let hits = all
            .entry((scope.to_owned(), bucket.to_owned()))
            .or_default();
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
}
