//! What backends store for logs ([`Log`](crate::Log)): entries numbered per
//! parent, appended atomically, never rewritten (only marked deleted,
//! restored, removed or purged).

use std::sync::Arc;

use async_trait::async_trait;

use super::{Payload, RmMode};
use crate::error::Result;

/// An untyped log entry, as backends keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEntry {
    /// The parent's text.
    pub parent: String,
    /// Its number within the parent: 1, 2, 3, ... in append order.
    pub seq: u64,
    /// The value.
    pub value: Payload,
    /// When it was appended, ms since the epoch.
    pub created_at: i64,
    /// Who appended it.
    pub author: Option<Arc<str>>,
    /// Set while soft-deleted.
    pub deleted_at: Option<i64>,
}

impl RawEntry {
    /// Whether the entry is live (not soft-deleted).
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// What every [`LogStore::append`] carries besides the values.
#[derive(Clone, Copy, Debug)]
pub struct Append<'a> {
    /// The parent's text (already checked).
    pub parent: &'a str,
    /// The idempotency key of the append (already checked), if any.
    pub key: Option<&'a str>,
    /// The caller, for `author`.
    pub author: Option<&'a str>,
    /// The current time from the store's clock.
    pub now: i64,
}

/// What [`LogStore::append`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Appended {
    /// The values were appended: their entries, in seq order.
    New(Vec<RawEntry>),
    /// An earlier append with the same idempotency key stands; nothing was
    /// appended. Its entries as stored now (live or soft-deleted; those
    /// purged or removed since are missing), in seq order.
    Replayed(Vec<RawEntry>),
}

/// Which entries [`LogStore::list`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRange {
    /// The exclusive bound to start from: entries after it (forwards) or
    /// before it (backwards); `None` for the first (or last) entry.
    pub from: Option<u64>,
    /// Oldest first (ascending seq) or newest first.
    pub backwards: bool,
    /// Include soft-deleted entries (else they are skipped before counting).
    pub deleted: bool,
}

/// What [`LogStore::restore`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum EntryRestored {
    /// The entry was soft-deleted and is live again.
    Revived(RawEntry),
    /// The entry was live; it is returned unchanged.
    AlreadyLive(RawEntry),
    /// No such entry, deleted or not.
    NotFound,
}

/// The log operations of a backend, handed out by
/// [`Backend::logs`](super::Backend::logs). Parents, keys and table names
/// arrive checked; implementations still treat them as data.
///
/// # What every backend must guarantee
///
/// - Each parent of each log table numbers its entries 1, 2, 3, ... in
///   append order: [`LogStore::append`] allocates the next numbers and
///   stores the entries in one atomic step, so concurrent appends (from any
///   number of processes sharing the storage) get distinct, consecutive
///   numbers, and a failed append leaves no gap. Numbers are never reused,
///   even after the last entries were removed or purged.
/// - An append with an idempotency key appends nothing when an entry of the
///   same table and parent holds that key (an earlier append's first
///   entry): it reports that earlier append's entries instead
///   ([`Appended::Replayed`]). The check and the append are one atomic
///   step, so of concurrent appends with one key exactly one appends. The
///   key is remembered as long as that first entry is stored.
/// - Every change is published on the backend's change feed
///   ([`FeedEvent::Entry`](super::FeedEvent::Entry)) after it commits, in
///   commit order per parent, which for appends is seq order. Purges
///   publish nothing.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends `values` (at least one) to `append.parent` of log `table` as
    /// one atomic step, numbering them after the parent's last number, with
    /// `created_at = now`, `author`, and the idempotency key (stored with
    /// the first entry, beside the number of entries appended); or, when an
    /// entry holds `append.key` already, appends nothing and replays.
    async fn append(
        &self,
        table: &str,
        append: Append<'_>,
        values: Vec<Payload>,
    ) -> Result<Appended>;

    /// The entry `seq` of `parent`, live or soft-deleted.
    async fn get(&self, table: &str, parent: &str, seq: u64) -> Result<Option<RawEntry>>;

    /// Up to `limit` entries of `parent` in `range`, in its order.
    async fn list(
        &self,
        table: &str,
        parent: &str,
        range: EntryRange,
        limit: usize,
    ) -> Result<Vec<RawEntry>>;

    /// Deletes the live entries among `seqs` of `parent` as one atomic step:
    /// marks them deleted (`deleted_at = now`) or removes them, per `mode`.
    /// Returns them as they were before, in seq order; missing and already
    /// deleted entries are skipped.
    async fn rm(
        &self,
        table: &str,
        parent: &str,
        seqs: &[u64],
        mode: RmMode,
        now: i64,
    ) -> Result<Vec<RawEntry>>;

    /// Brings back the soft-deleted entry `seq` of `parent`.
    async fn restore(&self, table: &str, parent: &str, seq: u64) -> Result<EntryRestored>;

    /// Permanently removes the entries of `table` (every parent)
    /// soft-deleted before `deleted_before` (ms), returning how many. The
    /// parents' numbering goes on after them.
    async fn purge(&self, table: &str, deleted_before: i64) -> Result<u64>;
}
