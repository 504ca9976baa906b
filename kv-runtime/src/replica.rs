//! In-process replicas: a whole table mirrored in memory and kept current by
//! the change feed (see [`Replica`]).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::follow::{Event, Follower};
use crate::health::ReplicaProbe;
use crate::row::Row;
use crate::schema::{KvKey, KvSchema};
use crate::table::{codec, Table};
use crate::telemetry;

mod map;

use map::{Builder, KeyHasher, Snapshot};

/// The most feed changes applied as one snapshot swap.
const MAX_BATCH: usize = 1024;

/// How current a [`Replica`] is, from [`Replica::status`]. Times are ms
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
    /// absent from the replica (the table's `get` reports them as
    /// `UNREADABLE`).
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

/// What the applier task shares with readers.
struct Core<S: KvSchema> {
    rows: ArcSwap<Snapshot<S>>,
    hasher: KeyHasher,
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

    /// Applies a batch of follower events: one new snapshot for all of
    /// its states, and the status updated.
    fn apply(&self, events: &mut Vec<Event<S>>) {
        let current = self.rows.load_full();
        let mut next: Option<Builder<'_, S>> = None;
        let mut resynced = false;
        let now = self.now();
        let mut status = self.status();
        for event in events.drain(..) {
            match event {
                Event::State { key, row, .. } => {
                    let map = next.get_or_insert_with(|| Builder::new(&self.hasher, &current));
                    status.changes_applied += 1;
                    match row {
                        Some(raw) => match codec::decode(&raw, key) {
                            Ok(row) => {
                                status.last_delay_ms = Some(now.saturating_sub(raw.updated_at));
                                map.insert(Arc::new(row));
                            }
                            Err(e) => {
                                // Serve nothing rather than a state known to be stale.
                                map.remove(&raw.key);
                                status.unreadable_rows += 1;
                                status.last_error = Some(e.to_string());
                            }
                        },
                        None => {
                            map.remove(key.as_str());
                        }
                    }
                }
                Event::Lost => {
                    if status.in_sync {
                        status.in_sync = false;
                        status.stale_since = Some(now);
                    }
                }
                Event::Loaded => {
                    if !status.in_sync {
                        status.resyncs += 1;
                        resynced = true;
                    }
                    status.in_sync = true;
                    status.stale_since = None;
                    status.loaded_at = now;
                }
                Event::Failed(e) => status.last_error = Some(e.to_string()),
            }
        }
        if let Some(map) = next {
            self.rows.store(Arc::new(map.finish()));
            status.last_applied_at = now;
        }
        telemetry::replica(S::TABLE, status.in_sync, status.last_delay_ms, resynced);
    }
}

impl<S: KvSchema> ReplicaProbe for Core<S> {
    fn table(&self) -> &'static str {
        S::TABLE
    }

    fn status(&self) -> ReplicaStatus {
        let mut status = self.status().clone();
        status.checked_at = self.now();
        status
    }
}

/// Stops the applier task when the last [`Replica`] clone is dropped.
struct StopOnDrop(tokio::task::AbortHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A table mirrored in process memory, kept current by the change feed,
/// for reads at request rate. Made by [`Table::replica`] or
/// [`Replica::start`]. Cheap to clone: clones share the mirror, and its
/// task stops when the last clone is dropped.
///
/// [`Replica::get`] is a synchronous lookup in an immutable snapshot held
/// in an `ArcSwap`: no lock, no await, no I/O; one snapshot load, one hash
/// of the key, one probe and one `Arc` clone, the work of a raw
/// `ArcSwap<HashMap>` lookup. A follower task applies the feed's changes by
/// building the next snapshot and swapping it in; readers never wait for
/// it. [Live reads](crate#live-reads) has an example.
///
/// # Cost of a change
///
/// The snapshot is a shallow hash trie whose leaves are hash tables of
/// about 32 rows (a small table is a single leaf). A batch of changes
/// copies the branches and leaves on its keys' paths (the rows themselves
/// are shared), so a change costs about the same at 100 000 rows as at
/// 1 000: a few dozen pointer copies per level, two or three levels.
/// Changes that arrive together are applied as one batch and swapped in
/// once.
///
/// # How current it is
///
/// While following the feed, a replica is behind the store by the feed's
/// delivery delay. Measured (the repository's BENCHMARKS.md, "Replica",
/// has the commands):
///
/// - in process (the memory backend): a write shows up 10 to 20 µs after
///   `set` returns, in a table of 4 rows as in one of 100 000;
/// - across processes over PostgreSQL on loopback: 0.8 ms after the write
///   is issued at the median, 2.6 ms at p99 (a debug build on a busy
///   2-core machine; 0.5 / 0.9 ms in a release build), and about 0.1 ms
///   after the writer's `set` has returned.
///
/// When the feed may have missed changes (a lost PostgreSQL connection, a
/// follower that fell more than the feed's capacity behind), the replica
/// reloads the whole table, retrying with a backoff while the backend
/// fails, and keeps serving its last snapshot meanwhile;
/// [`Replica::status`] says whether it is in sync, since when it may be
/// missing changes ([`ReplicaStatus::stale_for`]), how many reloads it
/// needed and the delay of the last change.
///
/// Writes go through the store ([`Table::set`] and friends), with every
/// check; a replica only reads. A process sees its own write in its replica
/// once the feed delivers it, not when `set` returns: use the row `set`
/// returns.
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
            rows: ArcSwap::from_pointee(Snapshot::empty()),
            hasher: KeyHasher::new(),
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
        let probe: Arc<dyn ReplicaProbe> = Arc::clone(&core) as Arc<dyn ReplicaProbe>;
        table.store().replicas.add(Arc::downgrade(&probe));
        let mut events = Vec::new();
        let mut follower = Follower::start(table, None, &mut events).await?;
        core.apply(&mut events);
        events.shrink_to(16);
        // The first load is not a change.
        core.status().changes_applied = 0;
        let applier = Arc::clone(&core);
        let task = runtime.spawn(async move {
            while follower.next(MAX_BATCH, &mut events).await {
                applier.apply(&mut events);
                // A (re)load leaves room for every row: give it back.
                events.shrink_to(16);
            }
            applier.status().following = false;
        });
        Ok(Replica {
            core,
            _stop: Arc::new(StopOnDrop(task.abort_handle())),
        })
    }

    /// The live row with `key`, or `None`. Synchronous and lock-free: a
    /// lookup in the current snapshot.
    pub fn get(&self, key: &S::Key) -> Option<Arc<Row<S>>> {
        self.get_str(key.as_str())
    }

    /// Like [`Replica::get`], with the key as text; text that is not a key
    /// of the table is simply absent.
    #[inline]
    pub fn get_str(&self, key: &str) -> Option<Arc<Row<S>>> {
        self.core.rows.load().get(&self.core.hasher, key).cloned()
    }

    /// How many live rows the replica holds.
    pub fn len(&self) -> usize {
        self.core.rows.load().len()
    }

    /// Whether the replica holds no row.
    pub fn is_empty(&self) -> bool {
        self.core.rows.load().len() == 0
    }

    /// Every live row the replica holds, in key order.
    pub fn rows(&self) -> Vec<Arc<Row<S>>> {
        let snapshot = self.core.rows.load();
        let mut rows: Vec<Arc<Row<S>>> = snapshot.values().into_iter().cloned().collect();
        rows.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        rows
    }

    /// How current the replica is: whether it follows the feed or is
    /// reloading after possible loss (and since when), when it last applied
    /// a change, how many reloads it needed.
    pub fn status(&self) -> ReplicaStatus {
        ReplicaProbe::status(&*self.core)
    }
}
