//! The in-memory backend: the default for tests and quick starts.
//!
//! Rows live in one ordered map per table behind a read-write lock. Nothing
//! survives the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::{
    first_version, next_version, Backend, Change, FeedEvent, Put, PutOutcome, RateDecision, RawRow,
    Remove, RemoveOutcome, RestoreOutcome, FEED_CAPACITY,
};
use crate::error::Result;

type Tables = HashMap<String, TableRows, BuildHasherDefault<Fnv>>;

/// One table: its rows in key order, and its version floor (the highest
/// `updated_at` of a row hard-deleted or purged from it).
#[derive(Debug, Default)]
struct TableRows {
    rows: BTreeMap<String, RawRow>,
    floor: Option<i64>,
}

impl TableRows {
    /// Raises the version floor to at least `version`.
    fn raise_floor(&mut self, version: i64) {
        self.floor = Some(self.floor.map_or(version, |f| f.max(version)));
    }
}

/// FNV-1a: table names are few, short and chosen by the program, so a
/// simple fast hash beats SipHash's flooding resistance here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Rows in process memory. Create one with [`MemoryBackend::new`] or
/// [`Store::memory`](crate::Store::memory).
#[derive(Debug)]
pub struct MemoryBackend {
    tables: RwLock<Tables>,
    /// Admitted write times per (scope, bucket), oldest first.
    rate: Mutex<HashMap<(String, String), VecDeque<i64>>>,
    feed: broadcast::Sender<FeedEvent>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend {
            tables: RwLock::default(),
            rate: Mutex::default(),
            feed: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes a change; called with the table lock held so that changes
    /// arrive in commit order.
    fn publish(&self, table: &str, key: &str, row: Option<&RawRow>) {
        // No receivers is not an error: nobody is watching.
        let _ = self.feed.send(FeedEvent::Change(Change {
            table: table.to_owned(),
            key: key.to_owned(),
            row: row.filter(|r| r.is_live()).cloned(),
        }));
    }

    fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        // A panic while holding the lock cannot leave a map half-written
        // (every mutation below is a single insert or remove), so a poisoned
        // lock still guards consistent data.
        let guard = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// Runs `f` on the rows of `table` under the write lock, handing it a
    /// function that publishes a change while the lock is still held.
    fn write<T>(
        &self,
        table: &str,
        f: impl FnOnce(&mut TableRows, &dyn Fn(&str, Option<&RawRow>)) -> T,
    ) -> T {
        let mut guard = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let rows = guard.entry(table.to_owned()).or_default();
        f(rows, &|key, row| self.publish(table, key, row))
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        Ok(self.read(|t| t.get(table).and_then(|t| t.rows.get(key)).cloned()))
    }

    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> bool {
        self.read(|t| read(t.get(table).and_then(|t| t.rows.get(key))));
        true
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        Ok(self.read(|t| {
            let Some(TableRows { rows, .. }) = t.get(table) else {
                return Vec::new();
            };
            let lower = match after {
                Some(k) => Bound::Excluded(k),
                None => Bound::Unbounded,
            };
            rows.range::<str, _>((lower, Bound::Unbounded))
                .map(|(_, row)| row)
                .filter(|row| row.is_live())
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn put(&self, table: &str, put: Put<'_>) -> Result<PutOutcome> {
        Ok(self.write(table, |t, publish| {
            let existing = t.rows.get(put.key);
            let live = existing.filter(|r| r.is_live()).map(|r| r.updated_at);
            if !put.expect.admits(live) {
                return PutOutcome::Conflict {
                    current_updated_at: live,
                };
            }
            let row = RawRow {
                key: put.key.to_owned(),
                value: put.value,
                created_at: existing.map_or(put.now, |r| r.created_at),
                updated_at: match existing {
                    Some(r) => next_version(Some(r.updated_at), put.now),
                    None => first_version(t.floor, put.now),
                },
                deleted_at: None,
                updated_by: put.updated_by.map(Arc::from),
            };
            let previous = t.rows.insert(row.key.clone(), row.clone());
            publish(&row.key, Some(&row));
            PutOutcome::Written { row, previous }
        }))
    }

    async fn remove(&self, table: &str, remove: Remove<'_>) -> Result<RemoveOutcome> {
        Ok(self.write(table, |t, publish| {
            let Some(row) = t.rows.get_mut(remove.key).filter(|r| r.is_live()) else {
                return RemoveOutcome::NotLive;
            };
            if remove
                .expected_updated_at
                .is_some_and(|expected| expected != row.updated_at)
            {
                return RemoveOutcome::Conflict {
                    current_updated_at: row.updated_at,
                };
            }
            let before = row.clone();
            if remove.soft {
                row.deleted_at = Some(remove.now);
                row.updated_at = next_version(Some(row.updated_at), remove.now);
                row.updated_by = remove.updated_by.map(Arc::from);
            } else {
                t.rows.remove(remove.key);
                t.raise_floor(before.updated_at);
            }
            publish(remove.key, None);
            RemoveOutcome::Removed(before)
        }))
    }

    async fn restore(
        &self,
        table: &str,
        key: &str,
        updated_by: Option<&str>,
        now: i64,
    ) -> Result<RestoreOutcome> {
        Ok(self.write(table, |t, publish| match t.rows.get_mut(key) {
            None => RestoreOutcome::NotFound,
            Some(row) if row.is_live() => RestoreOutcome::AlreadyLive(row.clone()),
            Some(row) => {
                row.deleted_at = None;
                row.updated_at = next_version(Some(row.updated_at), now);
                row.updated_by = updated_by.map(Arc::from);
                publish(key, Some(row));
                RestoreOutcome::Restored(row.clone())
            }
        }))
    }

    async fn purge(&self, table: &str, deleted_before: i64) -> Result<Vec<RawRow>> {
        Ok(self.write(table, |t, _| {
            let doomed: Vec<String> = t
                .rows
                .values()
                .filter(|r| r.deleted_at.is_some_and(|at| at < deleted_before))
                .map(|r| r.key.clone())
                .collect();
            // Purged rows were already invisible: no change to publish.
            let purged: Vec<RawRow> = doomed.iter().filter_map(|k| t.rows.remove(k)).collect();
            if let Some(top) = purged.iter().map(|r| r.updated_at).max() {
                t.raise_floor(top);
            }
            purged
        }))
    }

    async fn rate_limit_hit(
        &self,
        scope: &str,
        bucket: &str,
        max: u32,
        window_ms: i64,
        now: i64,
    ) -> Result<RateDecision> {
        let mut rate = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        let hits = rate
            .entry((scope.to_owned(), bucket.to_owned()))
            .or_default();
        let start = now.saturating_sub(window_ms);
        // Not `pop_front` while old: after the clock steps back, the log is
        // no longer in time order. It holds at most `max` entries.
        hits.retain(|&at| at > start);
        if hits.len() >= max as usize {
            let oldest = hits.iter().copied().min().unwrap_or(now);
            return Ok(RateDecision::Limited {
                retry_after_ms: oldest.saturating_add(window_ms).saturating_sub(now).max(1),
            });
        }
        hits.push_back(now);
        Ok(RateDecision::Admitted)
    }

    fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.feed.subscribe()
    }
}
