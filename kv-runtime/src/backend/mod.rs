//! The storage backend trait, and the backends that ship with `kv`.
//!
//! A backend stores untyped rows (key text, JSON value, bookkeeping times)
//! per table; [`Table`](crate::Table) does everything typed on top: access
//! checks, validation, (de)serialization. To add a backend, implement
//! [`Backend`] and run the conformance suite (`kv_runtime::conformance_suite!`,
//! feature `testing`) against it unchanged.
//!
//! # What every backend must guarantee
//!
//! - Keys are unique per table; tables are independent.
//! - Key order is the byte order of the UTF-8 key text.
//! - [`Backend::put`], [`Backend::remove`] and [`Backend::restore`] are each
//!   one atomic step: the conflict check, the `updated_at` bump and the write
//!   happen together, with no other write to the same row in between.
//! - [`Backend::put`] honours [`Put::expect`] in that same step:
//!   [`Expect::Any`] always writes; [`Expect::Version`] writes only over a
//!   live row with exactly that `updated_at`; [`Expect::NotLive`] writes
//!   only when there is no live row (missing or soft-deleted). When the
//!   expectation fails nothing is written and the outcome is
//!   [`PutOutcome::Conflict`] with the live row's `updated_at` (`None` when
//!   there is none). Of many concurrent puts expecting the same state,
//!   exactly one is written.
//! - [`Backend::remove`] honours [`Remove::expected_updated_at`] in its
//!   atomic step: with a version, it deletes only a live row with exactly
//!   that `updated_at`, and reports [`RemoveOutcome::Conflict`] (changing
//!   nothing) when the live row has another one. With no live row it
//!   reports [`RemoveOutcome::NotLive`], with or without a version.
//! - `updated_at` of a mutated row becomes `max(now, previous + 1)`, so it
//!   strictly increases per row even within one millisecond or when the
//!   clock steps back.
//! - A version is never reused for a key, even across a hard delete or a
//!   purge: each table keeps a version floor, which a hard
//!   [`Backend::remove`] and [`Backend::purge`] raise (in the same atomic
//!   step) to at least the removed rows' `updated_at`, and a put that
//!   creates a row (no row under the key, live or soft-deleted) gives it
//!   `updated_at = max(now, floor + 1)` ([`first_version`]). So a stale
//!   expected version never matches a re-created row.
//! - Once a write has returned `Ok`, it is never lost (for persistent
//!   backends: it survives a crash of the process).
//! - Failures are [`Error::Backend`](crate::Error::Backend), never panics.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::error::Result;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// A stored value: its JSON text, plus a cache of the decoded typed value so
/// that repeated reads of an unchanged row (memory backend, replicas) decode
/// once. Cheap to clone.
#[derive(Clone)]
pub struct Payload(Arc<PayloadInner>);

struct PayloadInner {
    json: Box<str>,
    decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Payload {
    /// Wraps JSON text. The text must be valid JSON produced by serializing a
    /// table's value (backends return what they were given).
    pub fn from_json(json: impl Into<Box<str>>) -> Self {
        Payload(Arc::new(PayloadInner {
            json: json.into(),
            decoded: OnceLock::new(),
        }))
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0.json
    }

    /// The cached decoded value, when it is of type `T`.
    pub(crate) fn decoded_ref<T: 'static>(&self) -> Option<&T> {
        self.0.decoded.get().and_then(|d| d.downcast_ref::<T>())
    }

    /// The decoded value of type `T`, decoding (and caching) it on first use.
    pub(crate) fn decode<T>(&self) -> serde_json::Result<Arc<T>>
    where
        T: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        if let Some(cached) = self.0.decoded.get() {
            if let Ok(typed) = Arc::clone(cached).downcast::<T>() {
                return Ok(typed);
            }
            // Cached as another type (two schemas over one table): decode afresh.
            return serde_json::from_str::<T>(&self.0.json).map(Arc::new);
        }
        let typed = Arc::new(serde_json::from_str::<T>(&self.0.json)?);
        let _ = self
            .0
            .decoded
            .set(Arc::clone(&typed) as Arc<dyn Any + Send + Sync>);
        Ok(typed)
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Payload").field(&self.json()).finish()
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

/// An untyped stored row, as backends keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    /// Key text.
    pub key: String,
    /// The value.
    pub value: Payload,
    /// First insert, ms since the epoch.
    pub created_at: i64,
    /// Last mutation, ms since the epoch; the row's version.
    pub updated_at: i64,
    /// Set while soft-deleted.
    pub deleted_at: Option<i64>,
    /// Who wrote last (shared text: cheap to copy into every read).
    pub updated_by: Option<Arc<str>>,
}

impl RawRow {
    /// Whether the row is live (not soft-deleted).
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// The `updated_at` a mutation gives a row: `now`, but strictly greater than
/// the previous version.
pub fn next_version(previous: Option<i64>, now: i64) -> i64 {
    match previous {
        Some(prev) => now.max(prev.saturating_add(1)),
        None => now,
    }
}

/// The `updated_at` a put gives a row it creates (no row under the key,
/// live or soft-deleted): `now`, but strictly greater than the table's
/// version floor (the highest `updated_at` of the rows hard-deleted or
/// purged from the table; `None` when there were none).
pub fn first_version(floor: Option<i64>, now: i64) -> i64 {
    next_version(floor, now)
}

/// An upsert, as handed to [`Backend::put`].
#[derive(Clone, Debug)]
pub struct Put<'a> {
    /// Key text (already validated).
    pub key: &'a str,
    /// The value (already validated and size-checked).
    pub value: Payload,
    /// What the stored row must be for the write to happen; otherwise
    /// nothing is written and [`PutOutcome::Conflict`] is reported.
    pub expect: Expect,
    /// The caller, for `updated_by`.
    pub updated_by: Option<&'a str>,
    /// The current time from the store's clock.
    pub now: i64,
}

/// The condition of a [`Put`], checked against the stored row in the same
/// atomic step as the write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is stored (an upsert).
    #[default]
    Any,
    /// Write only if a live row exists with exactly this `updated_at`; a
    /// missing or soft-deleted row is a conflict.
    Version(i64),
    /// Write only if there is no live row: the key is missing or
    /// soft-deleted (which the write revives). A live row is a conflict.
    NotLive,
}

impl Expect {
    /// Whether the expectation holds, given the `updated_at` of the live
    /// row (`None` when the key is missing or soft-deleted). When it does
    /// not, the put reports [`PutOutcome::Conflict`] with that same
    /// `live_updated_at`.
    pub fn admits(self, live_updated_at: Option<i64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Version(v) => live_updated_at == Some(v),
            Expect::NotLive => live_updated_at.is_none(),
        }
    }
}

/// What [`Backend::put`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum PutOutcome {
    /// The row was written.
    Written {
        /// The row as now stored (live, `deleted_at` cleared).
        row: RawRow,
        /// The row it replaced, live or soft-deleted, if there was one.
        previous: Option<RawRow>,
    },
    /// The expectation ([`Put::expect`]) failed; nothing was written.
    Conflict {
        /// The live row's `updated_at`, or `None` when there is no live row
        /// (always `Some` for a failed [`Expect::NotLive`]).
        current_updated_at: Option<i64>,
    },
}

/// A delete, as handed to [`Backend::remove`].
#[derive(Clone, Debug)]
pub struct Remove<'a> {
    /// Key text.
    pub key: &'a str,
    /// Mark deleted (`deleted_at = now`, bump `updated_at`) instead of removing.
    pub soft: bool,
    /// The caller, for `updated_by` of a soft-deleted row.
    pub updated_by: Option<&'a str>,
    /// When set, delete only if the live row has exactly this `updated_at`;
    /// a live row with another version is left alone and reported as
    /// [`RemoveOutcome::Conflict`].
    pub expected_updated_at: Option<i64>,
    /// The current time from the store's clock.
    pub now: i64,
}

/// What [`Backend::remove`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum RemoveOutcome {
    /// The live row was deleted; this is the row as it was before.
    Removed(RawRow),
    /// There was no live row (missing or already soft-deleted); nothing
    /// was changed.
    NotLive,
    /// [`Remove::expected_updated_at`] did not match the live row, which
    /// was left alone.
    Conflict {
        /// The live row's `updated_at`.
        current_updated_at: i64,
    },
}

/// What [`Backend::restore`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum RestoreOutcome {
    /// The row was soft-deleted and is live again, with `updated_at` bumped.
    Restored(RawRow),
    /// The row was already live; it is returned unchanged.
    AlreadyLive(RawRow),
    /// No row with that key exists, deleted or not.
    NotFound,
}

/// What [`Backend::rate_limit_hit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    /// The write is admitted and was counted.
    Admitted,
    /// The bucket is full; nothing was counted.
    Limited {
        /// Milliseconds until the oldest counted write leaves the window.
        retry_after_ms: i64,
    },
}

/// One committed change, as the change feed delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The table.
    pub table: String,
    /// The key text.
    pub key: String,
    /// The row's state after the change: `None` when no live row remains
    /// (hard or soft delete, purge).
    pub row: Option<RawRow>,
}

/// An event of the change feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedEvent {
    /// A committed change. Per key, changes arrive in commit order.
    Change(Change),
    /// The feed may have missed changes (a lost connection, a slow
    /// receiver): re-read whatever you hold.
    Resync,
}

/// A storage backend: untyped rows in named tables.
///
/// See the [module documentation](self) for the guarantees every
/// implementation must give. Table names and keys arrive already validated;
/// implementations must still treat them as data (parameterised queries).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for messages (`"memory"`, `"sqlite"`, `"postgres"`).
    fn name(&self) -> &'static str;

    /// The row with `key`, live or soft-deleted.
    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>>;

    /// Reads the row with `key` without waiting, when the backend can (it
    /// holds rows in memory): calls `read` with the row (live or
    /// soft-deleted) or `None`, and returns `true`. Backends that need I/O
    /// keep the default, which returns `false` without calling `read`; the
    /// store then uses [`Backend::get`]. Lets in-memory reads skip an
    /// allocation and a copy of the row.
    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> bool {
        let _ = (table, key, read);
        false
    }

    /// Up to `limit` live rows with keys greater than `after` (all keys when
    /// `None`), in key order. Soft-deleted rows are skipped before counting.
    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>>;

    /// Upserts a row atomically, with the conflict check of
    /// [`Put::expect`]. Creating a row sets `created_at = now`;
    /// writing a soft-deleted row revives it (`deleted_at` cleared).
    async fn put(&self, table: &str, put: Put<'_>) -> Result<PutOutcome>;

    /// Deletes a live row (soft or hard), atomically with the check of
    /// [`Remove::expected_updated_at`]. Reports the row as it was before,
    /// or that there was no live row, or the conflict; in the last two
    /// cases nothing is changed.
    async fn remove(&self, table: &str, remove: Remove<'_>) -> Result<RemoveOutcome>;

    /// Brings back a soft-deleted row.
    async fn restore(
        &self,
        table: &str,
        key: &str,
        updated_by: Option<&str>,
        now: i64,
    ) -> Result<RestoreOutcome>;

    /// Permanently removes the rows of `table` soft-deleted before
    /// `deleted_before` (ms), returning them, and raises the table's
    /// version floor to at least their `updated_at`. Live rows and rows
    /// deleted later are untouched.
    async fn purge(&self, table: &str, deleted_before: i64) -> Result<Vec<RawRow>>;

    /// Counts one write of `bucket` (a caller) against `scope` (a table) in
    /// a sliding window: admitted when fewer than `max` writes were counted
    /// in `(now - window_ms, now]`, and then counted; refused otherwise,
    /// counting nothing. Atomic, and shared by every process using the same
    /// storage.
    async fn rate_limit_hit(
        &self,
        scope: &str,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now: i64,
    ) -> Result<RateDecision>;

    /// Subscribes to the change feed: every committed change from now on.
    /// In-process backends see their own writes; shared backends (PostgreSQL)
    /// also see other processes' writes. A receiver that falls behind gets
    /// `Lagged` from the channel, which means the same as [`FeedEvent::Resync`].
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<FeedEvent>;
}

/// The capacity of a backend's change-feed channel.
pub const FEED_CAPACITY: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_version_is_above_the_floor() {
        assert_eq!(first_version(None, 10), 10);
        assert_eq!(first_version(Some(5), 10), 10);
        assert_eq!(first_version(Some(10), 10), 11);
        assert_eq!(first_version(Some(i64::MAX), 10), i64::MAX);
    }

    #[test]
    fn next_version_strictly_increases() {
        assert_eq!(next_version(None, 10), 10);
        assert_eq!(next_version(Some(5), 10), 10);
        assert_eq!(next_version(Some(10), 10), 11);
        assert_eq!(next_version(Some(20), 10), 21);
        assert_eq!(next_version(Some(i64::MAX), 10), i64::MAX);
    }

    #[test]
    fn payload_caches_decoded_value() {
        let p = Payload::from_json("[1,2,3]");
        let a = p.decode::<Vec<u32>>().unwrap();
        let b = p.decode::<Vec<u32>>().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = p.decode::<Vec<u64>>().unwrap();
        assert_eq!(*other, vec![1u64, 2, 3]);
        assert!(p.decode::<String>().is_err());
    }
}
