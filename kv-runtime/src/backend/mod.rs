//! The storage backend trait, and the backends that ship with `kv`.
//!
//! A backend stores untyped rows (key text, JSON value, bookkeeping times)
//! per table; [`Table`](crate::Table) does everything typed on top: access
//! checks, validation, hooks, (de)serialization. Logs ([`Log`](crate::Log))
//! keep numbered entries per parent through the backend's [`LogStore`];
//! quotas ([`Quota`](crate::Quota)) and every rate limit count uses through
//! its [`RateCounter`]. To add a backend, implement [`Backend`], [`LogStore`]
//! and [`RateCounter`] (or reuse [`MemoryRateCounter`] if your backend lives
//! in one process) and run the conformance suite
//! (`kv_runtime::conformance_suite!`, feature `testing`) against it
//! unchanged.
//!
//! # What every backend must guarantee
//!
//! - Keys are unique per table; tables are independent.
//! - Key order is the byte order of the UTF-8 key text.
//! - [`Backend::set`], [`Backend::rm`] and [`Backend::restore`] are each one
//!   atomic step: the check of [`Write::expect`], the `updated_at` bump and
//!   the write happen together, with no other write to the same row in
//!   between. Of many concurrent writes expecting the same state, exactly
//!   one is applied.
//! - The check is the same for all three: [`Expect::admits`] the `updated_at`
//!   of the live row (`None` when the key is missing or soft-deleted). When
//!   it does not, nothing changes and the outcome is [`Outcome::Conflict`]
//!   with that same `updated_at`.
//! - [`Backend::set`] stores the value's schema version
//!   ([`Payload::schema`]) beside it and gives it back with the row; it
//!   refuses, in the same atomic step, to overwrite a row (live or
//!   soft-deleted) whose schema version is above the value's
//!   ([`Outcome::NewerSchema`]). `rm` and `restore` keep the row's value
//!   and its schema version.
//! - `updated_at` of a mutated row becomes `max(now, previous + 1)`
//!   ([`next_version`]), so it strictly increases per row even within one
//!   millisecond or when the clock steps back.
//! - A version is never reused for a key, even across a hard delete or a
//!   purge: each table keeps a version floor, which a hard [`Backend::rm`]
//!   and [`Backend::purge`] raise (in the same atomic step) to at least the
//!   removed rows' `updated_at`, and a set that creates a row (no row under
//!   the key, live or soft-deleted) gives it `updated_at = max(now, floor +
//!   1)` ([`first_version`]). So a stale expected version never matches a
//!   re-created row.
//! - Every applied change is published on the backend's [`ChangeFeed`]
//!   after it commits, in commit order per key; purges publish nothing
//!   (purged rows were invisible already).
//! - Once a write has returned `Ok`, it is never lost (for persistent
//!   backends: it survives a crash of the process).
//!
//! # History
//!
//! Tables declared with `#[kv(history)]` pass their [`HistoryPolicy`] in
//! [`Write::history`] and [`Purge::history`]; `None` means no history, and
//! then a backend must not record, trim or read anything for the write.
//! With a policy:
//!
//! - Every change a mutation applies writes one [`HistoryRecord`] of the
//!   key **in the same atomic step** (transaction, statement, lock) as the
//!   change: a change that does not commit leaves no record, and no record
//!   exists without its change. Applied changes are: a [`Backend::set`]
//!   that returns [`Outcome::Done`] ([`HistoryOp::Set`]); an
//!   [`Backend::rm`] that returns [`Removed::Row`] ([`HistoryOp::Rm`]); a
//!   [`Backend::restore`] that returns [`Restored::Revived`]
//!   ([`HistoryOp::Restore`]); every row a [`Backend::purge`] removes
//!   ([`HistoryOp::Purge`]). Conflicts, [`Outcome::NewerSchema`],
//!   [`Removed::NotLive`], [`Restored::AlreadyLive`] and
//!   [`Restored::NotFound`] change nothing and record nothing.
//! - The record's `version` is the row's new `updated_at` (set, soft rm,
//!   restore); for a hard rm and a purge, which leave no row, it is
//!   [`removal_version`] of the removed row, and the table's version floor
//!   is raised to at least that version in the same step (so a row created
//!   later gets a greater one). Versions are unique per key and increase
//!   with each change. `value` is the row's value after the change (set,
//!   restore) or the value it had (rm, purge), with its schema version;
//!   `at` is the write's `now` and `updated_by` its caller.
//! - In the same step, the backend trims the key's records: it keeps the
//!   newest [`HistoryPolicy::keep`] of them, and drops those older than
//!   [`HistoryPolicy::cutoff`]. [`Backend::purge`] also drops every record
//!   of the table older than the cutoff (keys no longer written are trimmed
//!   there). Records outlive their row: a hard rm or a purge removes the
//!   row, not its history.
//! - [`Backend::history`] reads a key's records newest first.
//! - [`Backend::import`] writes the rows it is given exactly (value,
//!   `created_at`, `updated_at`, `deleted_at`, `updated_by`), all of one
//!   call in one atomic step, deciding each row with [`import_verdict`]: a
//!   missing or older stored row is written, an identical one left alone,
//!   and a newer one kept unless the mode is [`ImportMode::Overwrite`]. In
//!   the same step it raises the table's version floor to
//!   [`import_floor`] (the floor given, and the version of every newer row
//!   it overwrote), and after the commit it publishes every row it wrote
//!   on the feed, in the order given. Importing the same rows twice
//!   changes nothing the second time.
//! - A [`Snapshot`] reads every table as of one moment: rows written after
//!   it started are not in it, and each row in it is a state the row had
//!   at that moment (on SQLite one read transaction, on PostgreSQL one
//!   `REPEATABLE READ` transaction, in memory a copy).
//! - Failures are errors ([`Error::Backend`](crate::Error::Backend) for an
//!   unavailable or failing storage), never panics.
//!
//! The log operations ([`Backend::logs`]) have guarantees of their own,
//! listed on [`LogStore`]: gapless numbering per parent, idempotent appends,
//! atomic bulk operations, commit-order publication.
//!
//! The quota primitive ([`Backend::rate_counter`]) has these:
//!
//! - [`RateCounter::consume`] checks and counts in one atomic step shared by
//!   every process using the storage: however many processes consume one
//!   bucket at once, no window of `window_ms` ever holds more than `max`
//!   consumed uses.
//! - A use counted at `at` stays in the window ending at `now` while
//!   `at > now - window_ms` (a true sliding window, not fixed slots);
//!   [`RateDecision::Limited`] says when enough uses leave it for the
//!   request to fit.
//! - [`RateCounter::peek`] counts nothing; [`RateCounter::record`] counts
//!   without checking; [`RateCounter::reset`] forgets a bucket;
//!   [`RateCounter::sweep`] forgets the buckets of a scope that have no use
//!   left in the window.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
pub use crate::schema::HistoryPolicy;

pub(crate) mod feed;
mod health;
mod history;
mod log;
pub mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
mod rate;
mod row;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
mod transfer;

pub use feed::{
    Change, ChangeFeed, EntryChange, EntryOp, FeedEvent, FeedReceiver, TryRecv, FEED_CAPACITY,
};
pub use health::{BackendHealth, FeedHealth};
pub use history::{removal_version, HistoryOp, HistoryRecord};
pub use log::{Append, Appended, EntryRange, EntryRestored, LogStore, RawEntry};
pub use rate::{MemoryRateCounter, RateCounter, RateDecision, Usage, Window};
pub use row::{Payload, RawRow};
pub use transfer::{
    import_floor, import_verdict, Check, CheckState, ImportMode, ImportOptions, Imported,
    OtherData, RowImport, Snapshot, TableInfo,
};

/// The `updated_at` a mutation gives a row: `now`, but strictly greater than
/// the previous version.
pub fn next_version(previous: Option<i64>, now: i64) -> i64 {
    match previous {
        Some(prev) => now.max(prev.saturating_add(1)),
        None => now,
    }
}

/// The `updated_at` a set gives a row it creates (no row under the key,
/// live or soft-deleted): `now`, but strictly greater than the table's
/// version floor (the highest `updated_at` of the rows hard-deleted or
/// purged from the table; `None` when there were none).
pub fn first_version(floor: Option<i64>, now: i64) -> i64 {
    next_version(floor, now)
}

/// What every mutation carries: the row it changes, the condition under
/// which it may, and who and when.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    /// Key text (already validated).
    pub key: &'a str,
    /// What the live row must be for the write to happen; otherwise nothing
    /// changes and the outcome is [`Outcome::Conflict`].
    pub expect: Expect,
    /// The caller, for `updated_by`.
    pub updated_by: Option<&'a str>,
    /// The current time from the store's clock.
    pub now: i64,
    /// The table's history policy: when `Some`, an applied change is
    /// recorded and the key's records trimmed in the same atomic step (see
    /// [History](self#history)).
    pub history: Option<HistoryPolicy>,
}

/// What [`Backend::purge`] removes, and how it records it.
#[derive(Clone, Copy, Debug)]
pub struct Purge<'a> {
    /// Rows soft-deleted before this time (ms) are removed.
    pub deleted_before: i64,
    /// The current time from the store's clock: the records' `at`, and what
    /// the history's retention counts back from.
    pub now: i64,
    /// Who purges, for the records' `updated_by`.
    pub updated_by: Option<&'a str>,
    /// The table's history policy: when `Some`, a [`HistoryOp::Purge`]
    /// record per removed row, and the table's records older than the
    /// retention dropped, in the same atomic step.
    pub history: Option<HistoryPolicy>,
}

/// The condition of a [`Write`], checked against the live row in the same
/// atomic step as the write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is stored.
    #[default]
    Any,
    /// A live row with exactly this `updated_at`; a missing or soft-deleted
    /// row is a conflict.
    Version(i64),
    /// No live row: the key is missing or soft-deleted. A live row is a
    /// conflict.
    NotLive,
}

impl Expect {
    /// Whether the expectation holds, given the `updated_at` of the live
    /// row (`None` when the key is missing or soft-deleted). When it does
    /// not, the write reports [`Outcome::Conflict`] with that same
    /// `live_updated_at`.
    pub fn admits(self, live_updated_at: Option<i64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Version(v) => live_updated_at == Some(v),
            Expect::NotLive => live_updated_at.is_none(),
        }
    }
}

/// What a mutation did: applied (`T` says how), or refused by its
/// [`Expect`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<T> {
    /// The expectation held; `T` describes what was done.
    Done(T),
    /// The expectation ([`Write::expect`]) failed; nothing changed.
    Conflict {
        /// The live row's `updated_at`, or `None` when there is no live row.
        current_updated_at: Option<i64>,
    },
    /// Only from [`Backend::set`]: the stored row (live or soft-deleted) was
    /// written by a newer version of the table's schema than the value
    /// ([`Payload::schema`]); nothing changed, so that an older program
    /// never drops fields a newer one wrote.
    NewerSchema {
        /// The schema version of the stored row.
        stored: u32,
    },
}

/// What [`Backend::set`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    /// The row as now stored (live, `deleted_at` cleared).
    pub row: RawRow,
    /// The row it replaced, live or soft-deleted, if there was one.
    pub previous: Option<RawRow>,
}

/// What [`Backend::rm`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Removed {
    /// The live row was deleted; this is the row as it was before.
    Row(RawRow),
    /// There was no live row (missing or already soft-deleted); nothing
    /// changed.
    NotLive,
}

/// What [`Backend::restore`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Restored {
    /// The row was soft-deleted and is live again, with `updated_at` bumped.
    Revived(RawRow),
    /// The row was already live; it is returned unchanged.
    AlreadyLive(RawRow),
    /// No row with that key exists, deleted or not.
    NotFound,
}

/// How [`Backend::rm`] deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmMode {
    /// Mark the row deleted (`deleted_at = now`, `updated_at` bumped).
    Soft,
    /// Remove the row, raising the table's version floor.
    Hard,
}

/// Whether [`Backend::get_now`] answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadNow {
    /// The read callback was called with the row (or `None`).
    Answered,
    /// The backend must do I/O to answer: use [`Backend::get`].
    NeedsIo,
}

/// A storage backend: untyped rows in named tables.
///
/// See the [module documentation](self) for the guarantees every
/// implementation must give. Table names and keys arrive already validated;
/// implementations must still treat them as data (parameterised queries).
/// `Arc<B>` is a backend wherever `B` is, so a wrapper can hold its inner
/// backend in an `Arc` and forward only what it changes.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for messages (`"memory"`, `"sqlite"`, `"postgres"`).
    fn name(&self) -> &'static str;

    /// Reads the row with `key` without waiting, when the backend can (it
    /// holds rows in memory): calls `read` with the row (live or
    /// soft-deleted) or `None`, and returns [`ReadNow::Answered`]. A
    /// backend that needs I/O returns [`ReadNow::NeedsIo`] without calling
    /// `read`, and the store uses [`Backend::get`]. Required, so that a
    /// wrapper cannot lose the fast path of the backend it wraps unnoticed.
    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow;

    /// The row with `key`, live or soft-deleted.
    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>>;

    /// Up to `limit` live rows with keys greater than `after` (all keys when
    /// `None`), in key order. Soft-deleted rows are skipped before counting.
    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>>;

    /// Up to `limit` rows, live or soft-deleted, with keys greater than
    /// `after` (all keys when `None`), in key order: every stored row of the
    /// table, page by page (file cleanup checks references with it; exports
    /// read with it).
    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>>;

    /// Stores `value` under `write.key` (an upsert) when
    /// [`Write::expect`] admits the live row. Creating a row sets
    /// `created_at = now`; writing a soft-deleted row revives it
    /// (`deleted_at` cleared).
    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>>;

    /// Deletes the live row (soft or hard, per `mode`) when
    /// [`Write::expect`] admits it. Reports the row as it was before, or
    /// that there was no live row (nothing changed).
    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>>;

    /// Brings back a soft-deleted row when [`Write::expect`] admits the
    /// live row (none, for a soft-deleted one): clears `deleted_at`, bumps
    /// `updated_at`, records `updated_by`. A live row is reported unchanged.
    async fn restore(&self, table: &str, write: Write<'_>) -> Result<Outcome<Restored>>;

    /// Permanently removes the rows of `table` soft-deleted before
    /// [`Purge::deleted_before`] (ms), returning them, and raises the
    /// table's version floor to at least their `updated_at`. Live rows and
    /// rows deleted later are untouched. With [`Purge::history`], records
    /// each removal and trims the table's history (see
    /// [History](self#history)), in the same atomic step.
    async fn purge(&self, table: &str, purge: Purge<'_>) -> Result<Vec<RawRow>>;

    /// Up to `limit` history records of `key` with versions below `before`
    /// (all when `None`), newest (highest version) first. Records stay
    /// after their row is removed; a key without records gives an empty
    /// list.
    async fn history(
        &self,
        table: &str,
        key: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>>;

    /// Every table holding a row (live or soft-deleted) or a version
    /// floor, in byte order of their names, with their row counts and
    /// floors. Exports and `kv tables` start here.
    async fn tables(&self) -> Result<Vec<TableInfo>>;

    /// A consistent read view of every table as of now (see [`Snapshot`]),
    /// for an export that must be the store as of one moment while others
    /// write. Holds a connection until dropped.
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>>;

    /// Restores `rows` of `table` exactly as given (keys already checked
    /// and distinct), in one atomic step: each row is written, left alone
    /// when identical, or kept when the stored one is newer (see the
    /// [module documentation](self) and [`import_verdict`]); the table's
    /// version floor is raised to [`import_floor`]; every row written is
    /// published on the feed after the commit. Returns one [`RowImport`]
    /// per row, in order. An empty `rows` only raises the floor.
    async fn import(
        &self,
        table: &str,
        rows: Vec<RawRow>,
        options: ImportOptions,
    ) -> Result<Imported>;

    /// Self-checks for an operator (`kv doctor`): the storage's schema
    /// version, its integrity, the rate limiter's size, whatever the
    /// backend can check about itself. Never fails: a check that cannot be
    /// made is a [`CheckState::Failed`] check saying why. Required, so that
    /// a wrapper cannot hide its inner backend's checks.
    async fn diagnose(&self) -> Vec<Check>;

    /// The quota primitive behind quotas and rate limits, shared by every
    /// process using the same storage.
    fn rate_counter(&self) -> &dyn RateCounter;

    /// The log operations (see [`LogStore`] for what they guarantee).
    fn logs(&self) -> &dyn LogStore;

    /// The change feed: every change committed from now on, to each
    /// subscriber. In-process backends see their own writes; shared
    /// backends (PostgreSQL) also see other processes' writes.
    fn feed(&self) -> &ChangeFeed;

    /// A health check: a trivial read (its round trip) and the state of the
    /// change feed. Never fails: an unreachable backend says so. Required,
    /// so that a wrapper cannot hide the state of the feed it wraps.
    async fn health(&self) -> BackendHealth;
}

#[async_trait]
impl<B: Backend + ?Sized> Backend for Arc<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow {
        (**self).get_now(table, key, read)
    }
    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        (**self).get(table, key).await
    }
    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        (**self).list(table, after, limit).await
    }
    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        (**self).scan(table, after, limit).await
    }
    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>> {
        (**self).set(table, write, value).await
    }
    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>> {
        (**self).rm(table, write, mode).await
    }
    async fn restore(&self, table: &str, write: Write<'_>) -> Result<Outcome<Restored>> {
        (**self).restore(table, write).await
    }
    async fn purge(&self, table: &str, purge: Purge<'_>) -> Result<Vec<RawRow>> {
        (**self).purge(table, purge).await
    }
    async fn history(
        &self,
        table: &str,
        key: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>> {
        (**self).history(table, key, before, limit).await
    }
    async fn tables(&self) -> Result<Vec<TableInfo>> {
        (**self).tables().await
    }
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        (**self).snapshot().await
    }
    async fn import(
        &self,
        table: &str,
        rows: Vec<RawRow>,
        options: ImportOptions,
    ) -> Result<Imported> {
        (**self).import(table, rows, options).await
    }
    async fn diagnose(&self) -> Vec<Check> {
        (**self).diagnose().await
    }
    fn rate_counter(&self) -> &dyn RateCounter {
        (**self).rate_counter()
    }
    fn logs(&self) -> &dyn LogStore {
        (**self).logs()
    }
    fn feed(&self) -> &ChangeFeed {
        (**self).feed()
    }
    async fn health(&self) -> BackendHealth {
        (**self).health().await
    }
}

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
    fn expectations_admit_what_they_say() {
        assert!(Expect::Any.admits(None) && Expect::Any.admits(Some(3)));
        assert!(Expect::Version(3).admits(Some(3)));
        assert!(!Expect::Version(3).admits(Some(4)) && !Expect::Version(3).admits(None));
        assert!(Expect::NotLive.admits(None) && !Expect::NotLive.admits(Some(3)));
    }
}
