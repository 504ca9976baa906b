//! In-process replicas: a whole table mirrored in memory and kept current by
//! the change feed, for reads at request rate ([`Table::replica`]).
//!
//! [`Replica::get`] is a synchronous lookup in an immutable snapshot
//! (`ArcSwap<HashMap<key, Arc<Row>>>`): no lock, no await, no I/O, tens of
//! nanoseconds (see BENCHMARKS.md). A follower task applies the feed's
//! changes by building the next snapshot and swapping it in; readers never
//! wait for it.
//!
//! # Cost of a change
//!
//! Each batch of changes copies the map (`O(n)` in the table's rows: one
//! key and one row pointer per entry, the rows themselves are shared) and
//! swaps it in once. Changes that arrive together are applied as one batch,
//! so a burst costs one copy, not one per change. That suits what replicas
//! are for (flags, banners, configuration: tens to thousands of rows
//! written rarely); a table of millions of rows written constantly is
//! better read from the store.
//!
//! # Staleness
//!
//! While following the feed, a replica is behind the store by the feed's
//! delivery delay (PostgreSQL across processes on loopback: about a
//! millisecond at the median, see BENCHMARKS.md). When the feed may have
//! missed changes (a lost PostgreSQL connection, a follower that fell more
//! than the feed's capacity behind), the replica reloads the whole table,
//! retrying with a backoff while the backend fails, and keeps serving its
//! last snapshot meanwhile; [`Replica::staleness`] says since when it may
//! be missing changes.
//!
//! Writes go through the store ([`Table::set`] and friends), with every
//! check; a replica only reads. A process sees its own write in its replica
//! once the feed delivers it, not when `set` returns.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use crate::backend::{Change, FeedEvent, RawRow};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::schema::{KvKey, KvSchema};
use crate::table::{decode_row_ref, Table};
use crate::watch::{backoff, drain, load_all, KeyState, Verdict};

/// The most changes applied as one snapshot swap.
const MAX_BATCH: usize = 1024;

type RowMap<S> = HashMap<Arc<str>, Arc<Row<S>>>;

/// How current a [`Replica`] is, from [`Replica::staleness`]. Times are ms
/// since the epoch, from the store's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// When this status was taken.
    pub checked_at: i64,
    /// `true` while the replica follows the feed with no change known to
    /// be missed: it is behind only by the feed's delivery delay. `false`
    /// from the moment the feed reports possible loss until a full reload
    /// succeeds.
    pub in_sync: bool,
    /// While not in sync: since when changes may be missing.
    pub stale_since: Option<i64>,
    /// When the last full load of the table completed.
    pub loaded_at: i64,
    /// When the follower last applied a change (or load).
    pub last_applied_at: i64,
    /// Delay of the last applied row: when it was applied minus its
    /// `updated_at` (the writer's clock, so only as exact as the clocks of
    /// the two machines agree).
    pub last_delay_ms: Option<i64>,
    /// Changes applied since the replica started.
    pub changes_applied: u64,
    /// Full reloads after possible loss (the first load not counted).
    pub resyncs: u64,
    /// Stored rows that could not be decoded with the schema: they read as
    /// absent from the replica (the store's `get` reports them as errors).
    pub unreadable_rows: u64,
    /// The last error met (a failed reload or read, an unreadable row).
    pub last_error: Option<String>,
    /// `false` once the feed has closed (its backend was dropped): the
    /// replica no longer changes.
    pub following: bool,
}

impl ReplicaStatus {
    /// How long the replica may have been missing changes: `None` while
    /// [in sync](ReplicaStatus::in_sync) (behind only by the feed's
    /// delivery delay), else the time since [`ReplicaStatus::stale_since`].
    pub fn stale_for(&self) -> Option<Duration> {
        let since = self.stale_since?;
        let ms = self.checked_at.saturating_sub(since).max(0);
        Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }
}

/// What the follower shares with readers.
struct Core<S: KvSchema> {
    rows: ArcSwap<RowMap<S>>,
    status: Mutex<ReplicaStatus>,
    clock: Arc<dyn Clock>,
}

impl<S: KvSchema> Core<S> {
    fn status(&self) -> std::sync::MutexGuard<'_, ReplicaStatus> {
        // The status is plain data, assigned field by field: consistent
        // enough to read even if a panic interrupted an update.
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Stops the follower task when the last [`Replica`] clone is dropped.
struct StopOnDrop(tokio::task::AbortHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A table mirrored in process memory, kept current by the change feed;
/// reads are synchronous and lock-free. Made by [`Table::replica`] or
/// [`Replica::start`]. Cheap to clone: clones share the mirror, and its
/// follower task stops when the last clone is dropped.
///
/// See the [module documentation](self) for costs and staleness.
pub struct Replica<S: KvSchema> {
    core: Arc<Core<S>>,
    _stop: Arc<StopOnDrop>,
}

impl<S: KvSchema> Clone for Replica<S> {
    fn clone(&self) -> Self {
        Replica {
            core: Arc::clone(&self.core),
            _stop: Arc::clone(&self._stop),
        }
    }
}

impl<S: KvSchema> fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replica")
            .field("table", &S::TABLE)
            .field("rows", &self.len())
            .finish()
    }
}

impl<S: KvSchema> Replica<S> {
    /// Loads every live row of `table` (paged reads), then follows the
    /// change feed on a task of the current Tokio runtime.
    ///
    /// Fails when the rows cannot be read, or with [`Error::Config`] when
    /// called outside a Tokio runtime.
    pub async fn start(table: &Table<S>) -> Result<Replica<S>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("a kv replica needs a Tokio runtime to run its follower task".into())
        })?;
        let clock = Arc::clone(&table.store().clock);
        let now = clock.now_ms();
        let core = Arc::new(Core {
            rows: ArcSwap::from_pointee(RowMap::<S>::new()),
            status: Mutex::new(ReplicaStatus {
                checked_at: now,
                in_sync: true,
                stale_since: None,
                loaded_at: now,
                last_applied_at: now,
                last_delay_ms: None,
                changes_applied: 0,
                resyncs: 0,
                unreadable_rows: 0,
                last_error: None,
                following: true,
            }),
            clock,
        });
        // Subscribe before loading: a change committed after the load is
        // then on the feed.
        let mut follower = Follower {
            feed: table.store().backend.subscribe(),
            table: table.clone(),
            core: Arc::clone(&core),
            keys: HashMap::new(),
        };
        follower.reload(false).await?;
        let task = runtime.spawn(follower.run());
        Ok(Replica {
            core,
            _stop: Arc::new(StopOnDrop(task.abort_handle())),
        })
    }

    /// The live row with `key`, or `None`. Synchronous and lock-free: a
    /// lookup in the current snapshot.
    pub fn get(&self, key: &S::Key) -> Option<Arc<Row<S>>> {
        self.core.rows.load().get(key.as_str()).cloned()
    }

    /// Like [`Replica::get`], with the key as text; text that is not a key
    /// of the table is simply absent.
    pub fn get_str(&self, key: &str) -> Option<Arc<Row<S>>> {
        self.core.rows.load().get(key).cloned()
    }

    /// How many live rows the replica holds.
    pub fn len(&self) -> usize {
        self.core.rows.load().len()
    }

    /// Whether the replica holds no row.
    pub fn is_empty(&self) -> bool {
        self.core.rows.load().is_empty()
    }

    /// Every live row the replica holds, in key order.
    pub fn rows(&self) -> Vec<Arc<Row<S>>> {
        let snapshot = self.core.rows.load();
        let mut rows: Vec<Arc<Row<S>>> = snapshot.values().cloned().collect();
        rows.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        rows
    }

    /// How current the replica is: whether it follows the feed or is
    /// reloading after possible loss (and since when), when it last applied
    /// a change, how many reloads it needed.
    pub fn staleness(&self) -> ReplicaStatus {
        let mut status = self.core.status().clone();
        status.checked_at = self.core.now();
        status
    }
}

impl<S: KvSchema> Table<S> {
    /// Mirrors this table in process memory: see [`Replica`]. Same as
    /// [`Replica::start`].
    pub async fn replica(&self) -> Result<Replica<S>> {
        Replica::start(self).await
    }
}

/// The follower task's state.
struct Follower<S: KvSchema> {
    table: Table<S>,
    feed: Receiver<FeedEvent>,
    core: Arc<Core<S>>,
    keys: HashMap<String, KeyState>,
}

impl<S: KvSchema> Follower<S> {
    /// Reads the whole table and swaps it in.
    async fn reload(&mut self, resync: bool) -> Result<()> {
        let rows = load_all(&self.table).await?;
        let mut map = RowMap::<S>::with_capacity(rows.len());
        let mut unreadable = 0;
        let mut last_error = None;
        for state in self.keys.values_mut() {
            state.read(None);
        }
        let present: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        self.keys
            .retain(|k, s| present.contains(k.as_str()) || s != &KeyState::from_read(None));
        for raw in &rows {
            let Ok(key) = S::Key::parse_key(S::TABLE, &raw.key) else {
                continue; // an undeclared key: not readable
            };
            self.keys
                .entry(raw.key.clone())
                .or_default()
                .read(Some(raw));
            match decode_row_ref::<S>(raw, key) {
                Ok(row) => {
                    map.insert(Arc::from(raw.key.as_str()), Arc::new(row));
                }
                Err(e) => {
                    unreadable += 1;
                    last_error = Some(e.to_string());
                }
            }
        }
        self.core.rows.store(Arc::new(map));
        let now = self.core.now();
        let mut status = self.core.status();
        status.in_sync = true;
        status.stale_since = None;
        status.loaded_at = now;
        status.last_applied_at = now;
        status.unreadable_rows += unreadable;
        if last_error.is_some() {
            status.last_error = last_error;
        }
        if resync {
            status.resyncs += 1;
        }
        Ok(())
    }

    fn mark_stale(&self) {
        let now = self.core.now();
        let mut status = self.core.status();
        if status.in_sync {
            status.in_sync = false;
            status.stale_since = Some(now);
        }
    }

    fn record_error(&self, e: &Error) {
        self.core.status().last_error = Some(e.to_string());
    }

    /// Applies a batch of changes as one new snapshot.
    async fn apply(&mut self, batch: Vec<Change>) -> Result<()> {
        let mut next: Option<RowMap<S>> = None;
        let mut applied = 0u64;
        let mut unreadable = 0u64;
        let mut last_updated_at = None;
        let mut last_error = None;
        let mut failure = None;
        for change in batch {
            if change.table != S::TABLE {
                continue;
            }
            let Ok(key) = S::Key::parse_key(S::TABLE, &change.key) else {
                continue; // an undeclared key: not readable
            };
            // A key never seen was absent from the last load.
            let state = self
                .keys
                .entry(change.key.clone())
                .or_insert_with(|| KeyState::from_read(None));
            let target: Option<Option<RawRow>> = match state.judge(change.row.as_ref()) {
                Verdict::Skip => None,
                Verdict::Apply => Some(change.row),
                Verdict::Reread => {
                    let read = self.table.store().backend.get(S::TABLE, &change.key).await;
                    match read {
                        Ok(read) => {
                            let state = self
                                .keys
                                .entry(change.key.clone())
                                .or_insert_with(|| KeyState::from_read(None));
                            state
                                .reread(change.row.as_ref(), read.as_ref())
                                .map(|(row, _)| row.cloned())
                        }
                        Err(e) => {
                            // Keep what was applied; the caller reloads.
                            failure = Some(e);
                            break;
                        }
                    }
                }
            };
            let Some(row) = target else { continue };
            let map = next.get_or_insert_with(|| RowMap::<S>::clone(&self.core.rows.load()));
            applied += 1;
            match row {
                Some(raw) => match decode_row_ref::<S>(&raw, key) {
                    Ok(row) => {
                        last_updated_at = Some(raw.updated_at);
                        map.insert(Arc::from(change.key.as_str()), Arc::new(row));
                    }
                    Err(e) => {
                        // Serve nothing rather than a state known to be stale.
                        map.remove(change.key.as_str());
                        unreadable += 1;
                        last_error = Some(e.to_string());
                    }
                },
                None => {
                    map.remove(change.key.as_str());
                }
            }
        }
        if let Some(map) = next {
            self.core.rows.store(Arc::new(map));
            let now = self.core.now();
            let mut status = self.core.status();
            status.changes_applied += applied;
            status.last_applied_at = now;
            status.unreadable_rows += unreadable;
            if let Some(updated_at) = last_updated_at {
                status.last_delay_ms = Some(now.saturating_sub(updated_at));
            }
            if last_error.is_some() {
                status.last_error = last_error;
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Follows the feed until the feed closes (or the task is aborted by
    /// the last replica's drop).
    async fn run(mut self) {
        let mut resync = false;
        let mut retry_in = Duration::ZERO;
        let mut open = true;
        loop {
            if resync {
                if !retry_in.is_zero() {
                    tokio::time::sleep(retry_in).await;
                }
                open &= drain(&mut self.feed);
                match self.reload(true).await {
                    Ok(()) => {
                        resync = false;
                        retry_in = Duration::ZERO;
                    }
                    Err(e) => {
                        self.record_error(&e);
                        retry_in = backoff(retry_in);
                    }
                }
                continue;
            }
            if !open {
                break;
            }
            let mut batch = Vec::new();
            match self.feed.recv().await {
                Ok(FeedEvent::Change(change)) => batch.push(change),
                Ok(FeedEvent::Resync) | Err(RecvError::Lagged(_)) => resync = true,
                Err(RecvError::Closed) => open = false,
            }
            // Take whatever else is already there: one snapshot for all.
            while !resync && open && batch.len() < MAX_BATCH {
                match self.feed.try_recv() {
                    Ok(FeedEvent::Change(change)) => batch.push(change),
                    Ok(FeedEvent::Resync) | Err(TryRecvError::Lagged(_)) => resync = true,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => open = false,
                }
            }
            if resync {
                // The reload covers this batch.
                self.mark_stale();
                continue;
            }
            if let Err(e) = self.apply(batch).await {
                self.record_error(&e);
                self.mark_stale();
                resync = true;
            }
        }
        self.core.status().following = false;
    }
}
