//! The in-memory backend: the default for tests and quick starts.
//!
//! Rows live in one ordered map per table behind a read-write lock; log
//! entries in one ordered map per parent, quota counts in a
//! [`MemoryRateCounter`]. Nothing survives the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use std::time::Duration;

use super::{
    first_version, import_floor, import_verdict, next_version, removal_version, Backend,
    BackendHealth, ChangeFeed, Check, FeedHealth, HistoryOp, HistoryPolicy, HistoryRecord,
    ImportOptions, Imported, LogStore, MemoryRateCounter, OtherData, Outcome, Payload, Purge,
    RateCounter, RawRow, ReadNow, Removed, Restored, RmMode, RowImport, Snapshot, Stored,
    TableInfo, Write,
};
use crate::error::Result;

mod log;

/// Table names are few, short and chosen by the program: foldhash (seeded
/// per process) hashes them in a few nanoseconds, where SipHash or a
/// byte-at-a-time hash takes several times that on every read.
type Tables = HashMap<String, TableRows, foldhash::fast::RandomState>;

/// One table: its rows in key order, its version floor (the highest
/// `updated_at` of a row hard-deleted or purged from it), and the history
/// records of each key, oldest first.
#[derive(Clone, Debug, Default)]
struct TableRows {
    rows: BTreeMap<String, RawRow>,
    floor: Option<i64>,
    history: HashMap<String, VecDeque<HistoryRecord>>,
}

impl TableRows {
    /// Raises the version floor to at least `version`.
    fn raise_floor(&mut self, version: i64) {
        self.floor = Some(self.floor.map_or(version, |f| f.max(version)));
    }

    /// Records a change of `row` (its value, by `updated_by` at `now`) as
    /// `version`, then trims the key's records to the policy.
    fn record(
        &mut self,
        policy: HistoryPolicy,
        op: HistoryOp,
        row: &RawRow,
        version: i64,
        now: i64,
        updated_by: Option<&str>,
    ) {
        let records = self.history.entry(row.key.clone()).or_default();
        records.push_back(HistoryRecord {
            key: row.key.clone(),
            version,
            op,
            value: row.value.clone(),
            at: now,
            updated_by: updated_by.map(Arc::from),
        });
        trim(records, policy, now);
    }
}

/// Drops the oldest records beyond `keep`, and those older than the
/// retention.
fn trim(records: &mut VecDeque<HistoryRecord>, policy: HistoryPolicy, now: i64) {
    if let Some(keep) = policy.keep {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        while records.len() > keep {
            records.pop_front();
        }
    }
    if let Some(cutoff) = policy.cutoff(now) {
        while records.front().is_some_and(|r| r.at < cutoff) {
            records.pop_front();
        }
    }
}

/// Rows, log entries and quota counts in process memory. Create one with
/// [`MemoryBackend::new`] or [`Store::memory`](crate::Store::memory).
pub struct MemoryBackend {
    tables: RwLock<Tables>,
    rate: MemoryRateCounter,
    logs: log::MemoryLogs,
    feed: ChangeFeed,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        let feed = ChangeFeed::new();
        MemoryBackend {
            tables: RwLock::default(),
            rate: MemoryRateCounter::new(),
            logs: log::MemoryLogs::new(feed.clone()),
            feed,
        }
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryBackend")
            .field("tables", &tables.len())
            .finish()
    }
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, f: impl FnOnce(&Tables) -> T) -> T {
        // A panic while holding the lock cannot leave a map half-written
        // (every mutation below is a single insert or remove), so a poisoned
        // lock still guards consistent data.
        let guard = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    /// Up to `limit` rows of `table` after `after` that pass `keep`, in key
    /// order.
    fn page(
        &self,
        table: &str,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&RawRow) -> bool,
    ) -> Vec<RawRow> {
        self.read(|t| {
            let Some(TableRows { rows, .. }) = t.get(table) else {
                return Vec::new();
            };
            let lower = match after {
                Some(k) => Bound::Excluded(k),
                None => Bound::Unbounded,
            };
            rows.range::<str, _>((lower, Bound::Unbounded))
                .map(|(_, row)| row)
                .filter(|row| keep(row))
                .take(limit)
                .cloned()
                .collect()
        })
    }

    /// Runs `f` on the rows of `table` under the write lock, handing it a
    /// function that publishes a change while the lock is still held (so
    /// that changes arrive in commit order).
    fn write<T>(
        &self,
        table: &str,
        f: impl FnOnce(&mut TableRows, &dyn Fn(&str, Option<&RawRow>)) -> T,
    ) -> T {
        let mut guard = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let rows = guard.entry(table.to_owned()).or_default();
        f(rows, &|key, row| self.feed.publish(table, key, row))
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn get_now(&self, table: &str, key: &str, read: &mut dyn FnMut(Option<&RawRow>)) -> ReadNow {
        self.read(|t| read(t.get(table).and_then(|t| t.rows.get(key))));
        ReadNow::Answered
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        Ok(self.read(|t| t.get(table).and_then(|t| t.rows.get(key)).cloned()))
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        Ok(self.page(table, after, limit, RawRow::is_live))
    }

    async fn scan(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        Ok(self.page(table, after, limit, |_| true))
    }

    async fn set(&self, table: &str, write: Write<'_>, value: Payload) -> Result<Outcome<Stored>> {
        Ok(self.write(table, |t, publish| {
            let existing = t.rows.get(write.key);
            let live = existing.filter(|r| r.is_live()).map(|r| r.updated_at);
            if !write.expect.admits(live) {
                return Outcome::Conflict {
                    current_updated_at: live,
                };
            }
            if let Some(stored) = existing
                .map(|r| r.value.schema())
                .filter(|&s| s > value.schema())
            {
                return Outcome::NewerSchema { stored };
            }
            let row = RawRow {
                key: write.key.to_owned(),
                value,
                created_at: existing.map_or(write.now, |r| r.created_at),
                updated_at: match existing {
                    Some(r) => next_version(Some(r.updated_at), write.now),
                    None => first_version(t.floor, write.now),
                },
                deleted_at: None,
                updated_by: write.updated_by.map(Arc::from),
            };
            let previous = t.rows.insert(row.key.clone(), row.clone());
            if let Some(policy) = write.history {
                t.record(
                    policy,
                    HistoryOp::Set,
                    &row,
                    row.updated_at,
                    write.now,
                    write.updated_by,
                );
            }
            publish(&row.key, Some(&row));
            Outcome::Done(Stored { row, previous })
        }))
    }

    async fn rm(&self, table: &str, write: Write<'_>, mode: RmMode) -> Result<Outcome<Removed>> {
        Ok(self.write(table, |t, publish| {
            let live = t.rows.get(write.key).filter(|r| r.is_live());
            let live_version = live.map(|r| r.updated_at);
            if !write.expect.admits(live_version) {
                return Outcome::Conflict {
                    current_updated_at: live_version,
                };
            }
            let Some(row) = t.rows.get_mut(write.key).filter(|r| r.is_live()) else {
                return Outcome::Done(Removed::NotLive);
            };
            let before = row.clone();
            let version = match mode {
                RmMode::Soft => {
                    row.deleted_at = Some(write.now);
                    row.updated_at = next_version(Some(row.updated_at), write.now);
                    row.updated_by = write.updated_by.map(Arc::from);
                    row.updated_at
                }
                RmMode::Hard => {
                    t.rows.remove(write.key);
                    // With history, the floor covers the removal's record too.
                    let version = removal_version(before.updated_at, write.now);
                    let floor = match write.history {
                        Some(_) => version,
                        None => before.updated_at,
                    };
                    t.raise_floor(floor);
                    version
                }
            };
            if let Some(policy) = write.history {
                t.record(
                    policy,
                    HistoryOp::Rm,
                    &before,
                    version,
                    write.now,
                    write.updated_by,
                );
            }
            publish(write.key, None);
            Outcome::Done(Removed::Row(before))
        }))
    }

    async fn restore(&self, table: &str, write: Write<'_>) -> Result<Outcome<Restored>> {
        Ok(self.write(table, |t, publish| {
            let live = t
                .rows
                .get(write.key)
                .filter(|r| r.is_live())
                .map(|r| r.updated_at);
            if !write.expect.admits(live) {
                return Outcome::Conflict {
                    current_updated_at: live,
                };
            }
            Outcome::Done(match t.rows.get_mut(write.key) {
                None => Restored::NotFound,
                Some(row) if row.is_live() => Restored::AlreadyLive(row.clone()),
                Some(row) => {
                    row.deleted_at = None;
                    row.updated_at = next_version(Some(row.updated_at), write.now);
                    row.updated_by = write.updated_by.map(Arc::from);
                    publish(write.key, Some(row));
                    let row = row.clone();
                    if let Some(policy) = write.history {
                        let version = row.updated_at;
                        t.record(
                            policy,
                            HistoryOp::Restore,
                            &row,
                            version,
                            write.now,
                            write.updated_by,
                        );
                    }
                    Restored::Revived(row)
                }
            })
        }))
    }

    async fn purge(&self, table: &str, purge: Purge<'_>) -> Result<Vec<RawRow>> {
        Ok(self.write(table, |t, _| {
            let doomed: Vec<String> = t
                .rows
                .values()
                .filter(|r| r.deleted_at.is_some_and(|at| at < purge.deleted_before))
                .map(|r| r.key.clone())
                .collect();
            // Purged rows were already invisible: no change to publish.
            let purged: Vec<RawRow> = doomed.iter().filter_map(|k| t.rows.remove(k)).collect();
            let Some(policy) = purge.history else {
                if let Some(top) = purged.iter().map(|r| r.updated_at).max() {
                    t.raise_floor(top);
                }
                return purged;
            };
            for row in &purged {
                let version = removal_version(row.updated_at, purge.now);
                t.raise_floor(version);
                t.record(
                    policy,
                    HistoryOp::Purge,
                    row,
                    version,
                    purge.now,
                    purge.updated_by,
                );
            }
            // Keys no longer written are trimmed here.
            if policy.cutoff(purge.now).is_some() {
                t.history.retain(|_, records| {
                    trim(records, policy, purge.now);
                    !records.is_empty()
                });
            }
            purged
        }))
    }

    async fn history(
        &self,
        table: &str,
        key: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<HistoryRecord>> {
        Ok(self.read(|t| {
            let Some(records) = t.get(table).and_then(|t| t.history.get(key)) else {
                return Vec::new();
            };
            records
                .iter()
                .rev()
                .filter(|r| before.is_none_or(|b| r.version < b))
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn tables(&self) -> Result<Vec<TableInfo>> {
        Ok(self.read(|t| table_infos(t)))
    }

    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        // A copy: values are shared (`Payload` is reference-counted), the
        // maps and keys are copied.
        let tables: BTreeMap<String, TableRows> =
            self.read(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        let log_entries = self.logs.entry_counts();
        Ok(Box::new(MemorySnapshot {
            tables,
            log_entries,
        }))
    }

    async fn import(
        &self,
        table: &str,
        rows: Vec<RawRow>,
        options: ImportOptions,
    ) -> Result<Imported> {
        Ok(self.write(table, |t, publish| {
            let mut outcomes = Vec::with_capacity(rows.len());
            let mut replaced_newer = Vec::new();
            let mut written = Vec::new();
            for row in rows {
                let stored = t.rows.get(&row.key);
                let same = stored.is_some_and(|s| s.value == row.value);
                let verdict = import_verdict(stored, &row, same, options.mode);
                if verdict == RowImport::Written {
                    if let Some(s) = stored.filter(|s| s.updated_at >= row.updated_at) {
                        replaced_newer.push(s.updated_at);
                    }
                    t.rows.insert(row.key.clone(), row.clone());
                    written.push(row);
                }
                outcomes.push(verdict);
            }
            if let Some(floor) = import_floor(options, replaced_newer) {
                t.raise_floor(floor);
            }
            for row in &written {
                publish(&row.key, Some(row));
            }
            Imported { rows: outcomes }
        }))
    }

    async fn diagnose(&self) -> Vec<Check> {
        vec![Check::ok(
            "storage",
            "rows in process memory; nothing survives the process",
        )]
    }

    fn rate_counter(&self) -> &dyn RateCounter {
        &self.rate
    }

    fn logs(&self) -> &dyn LogStore {
        &self.logs
    }

    fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    async fn health(&self) -> BackendHealth {
        BackendHealth::reachable("memory", Duration::ZERO, FeedHealth::InProcess)
    }
}

/// The tables of `tables` that hold a row or a floor, in name order.
fn table_infos<'a>(
    tables: impl IntoIterator<Item = (&'a String, &'a TableRows)>,
) -> Vec<TableInfo> {
    let mut infos: Vec<TableInfo> = tables
        .into_iter()
        .filter(|(_, t)| !t.rows.is_empty() || t.floor.is_some())
        .map(|(name, t)| {
            let deleted = t.rows.values().filter(|r| !r.is_live()).count();
            TableInfo::new(name.clone(), t.rows.len() as u64, deleted as u64, t.floor)
        })
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    infos
}

/// A copy of every table, taken under the read lock, and the number of
/// entries of each log, counted just after (no operation writes both a row
/// and a log entry).
struct MemorySnapshot {
    tables: BTreeMap<String, TableRows>,
    log_entries: Vec<(String, u64)>,
}

#[async_trait]
impl Snapshot for MemorySnapshot {
    async fn tables(&mut self) -> Result<Vec<TableInfo>> {
        Ok(table_infos(&self.tables))
    }

    async fn scan(
        &mut self,
        table: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RawRow>> {
        let Some(t) = self.tables.get(table) else {
            return Ok(Vec::new());
        };
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        Ok(t.rows
            .range::<str, _>((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn other_data(&mut self) -> Result<OtherData> {
        let history = self
            .tables
            .iter()
            .map(|(name, t)| {
                let n: usize = t.history.values().map(VecDeque::len).sum();
                (name.clone(), n as u64)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(OtherData::new(history, self.log_entries.clone()))
    }
}
