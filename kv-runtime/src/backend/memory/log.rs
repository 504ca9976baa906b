//! Logs in process memory: per parent, an ordered map of entries, the last
//! number handed out, and the idempotency keys.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::backend::{
    Append, Appended, ChangeFeed, EntryOp, EntryRange, EntryRestored, LogStore, Payload, RawEntry,
    RmMode,
};
use crate::error::Result;

/// One parent of one log.
#[derive(Debug, Default)]
struct Parent {
    /// The last number handed out (0: none yet).
    last_seq: u64,
    entries: BTreeMap<u64, RawEntry>,
    /// Idempotency key -> (first seq, number of entries) of its append.
    keys: HashMap<String, (u64, u64)>,
}

/// The logs of a [`MemoryBackend`](super::MemoryBackend).
#[derive(Debug)]
pub(super) struct MemoryLogs {
    parents: Mutex<HashMap<(String, String), Parent>>,
    feed: ChangeFeed,
}

impl MemoryLogs {
    /// Logs publishing their changes on `feed`.
    pub(super) fn new(feed: ChangeFeed) -> Self {
        MemoryLogs {
            parents: Mutex::default(),
            feed,
        }
    }

    /// Entries (live and soft-deleted) per log that has any, in name order.
    pub(super) fn entry_counts(&self) -> Vec<(String, u64)> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for ((log, _), parent) in self.lock().iter() {
            if !parent.entries.is_empty() {
                *counts.entry(log.clone()).or_default() += parent.entries.len() as u64;
            }
        }
        counts.into_iter().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Parent>> {
        // Every mutation below leaves a parent whole before it can panic.
        self.parents.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn range_of(p: &Parent, first: u64, count: u64) -> Vec<RawEntry> {
    p.entries
        .range(first..first.saturating_add(count))
        .map(|(_, e)| e.clone())
        .collect()
}

#[async_trait]
impl LogStore for MemoryLogs {
    async fn append(
        &self,
        table: &str,
        append: Append<'_>,
        values: Vec<Payload>,
    ) -> Result<Appended> {
        let mut all = self.lock();
        let p = all
            .entry((table.to_owned(), append.parent.to_owned()))
            .or_default();
        if let Some(&(first, count)) = append.key.and_then(|k| p.keys.get(k)) {
            return Ok(Appended::Replayed(range_of(p, first, count)));
        }
        let first = p.last_seq + 1;
        let mut out = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let entry = RawEntry {
                parent: append.parent.to_owned(),
                seq: first + i as u64,
                value,
                created_at: append.now,
                author: append.author.map(Arc::from),
                deleted_at: None,
            };
            p.entries.insert(entry.seq, entry.clone());
            out.push(entry);
        }
        p.last_seq += out.len() as u64;
        if let Some(key) = append.key {
            p.keys.insert(key.to_owned(), (first, out.len() as u64));
        }
        for e in &out {
            self.feed
                .publish_entry(table, append.parent, e.seq, EntryOp::Append, Some(e));
        }
        Ok(Appended::New(out))
    }

    async fn get(&self, table: &str, parent: &str, seq: u64) -> Result<Option<RawEntry>> {
        let all = self.lock();
        Ok(all
            .get(&(table.to_owned(), parent.to_owned()))
            .and_then(|p| p.entries.get(&seq).cloned()))
    }

    async fn list(
        &self,
        table: &str,
        parent: &str,
        range: EntryRange,
        limit: usize,
    ) -> Result<Vec<RawEntry>> {
        let all = self.lock();
        let Some(p) = all.get(&(table.to_owned(), parent.to_owned())) else {
            return Ok(Vec::new());
        };
        let keep = |e: &&RawEntry| range.deleted || e.is_live();
        let out = if range.backwards {
            let upper = range.from.map_or(Bound::Unbounded, Bound::Excluded);
            p.entries
                .range((Bound::Unbounded, upper))
                .rev()
                .map(|(_, e)| e)
                .filter(keep)
                .take(limit)
                .cloned()
                .collect()
        } else {
            let lower = range.from.map_or(Bound::Unbounded, Bound::Excluded);
            p.entries
                .range((lower, Bound::Unbounded))
                .map(|(_, e)| e)
                .filter(keep)
                .take(limit)
                .cloned()
                .collect()
        };
        Ok(out)
    }

    async fn rm(
        &self,
        table: &str,
        parent: &str,
        seqs: &[u64],
        mode: RmMode,
        now: i64,
    ) -> Result<Vec<RawEntry>> {
        let mut all = self.lock();
        let Some(p) = all.get_mut(&(table.to_owned(), parent.to_owned())) else {
            return Ok(Vec::new());
        };
        let mut seqs = seqs.to_vec();
        seqs.sort_unstable();
        seqs.dedup();
        let mut removed = Vec::new();
        for seq in seqs {
            let Some(entry) = p.entries.get_mut(&seq).filter(|e| e.is_live()) else {
                continue;
            };
            removed.push(entry.clone());
            match mode {
                RmMode::Soft => {
                    entry.deleted_at = Some(now);
                    self.feed
                        .publish_entry(table, parent, seq, EntryOp::Rm, Some(entry));
                }
                RmMode::Hard => {
                    p.entries.remove(&seq);
                    self.feed
                        .publish_entry(table, parent, seq, EntryOp::Rm, None);
                }
            }
        }
        if mode == RmMode::Hard {
            // A key is remembered as long as its first entry is stored.
            p.keys.retain(|_, (first, _)| p.entries.contains_key(first));
        }
        Ok(removed)
    }

    async fn restore(&self, table: &str, parent: &str, seq: u64) -> Result<EntryRestored> {
        let mut all = self.lock();
        let entry = all
            .get_mut(&(table.to_owned(), parent.to_owned()))
            .and_then(|p| p.entries.get_mut(&seq));
        Ok(match entry {
            None => EntryRestored::NotFound,
            Some(e) if e.is_live() => EntryRestored::AlreadyLive(e.clone()),
            Some(e) => {
                e.deleted_at = None;
                self.feed
                    .publish_entry(table, parent, seq, EntryOp::Restore, Some(e));
                EntryRestored::Revived(e.clone())
            }
        })
    }

    async fn purge(&self, table: &str, deleted_before: i64) -> Result<u64> {
        let mut all = self.lock();
        let mut purged = 0;
        for ((t, _), p) in all.iter_mut() {
            if t != table {
                continue;
            }
            let before = p.entries.len();
            p.entries
                .retain(|_, e| e.deleted_at.is_none_or(|at| at >= deleted_before));
            purged += (before - p.entries.len()) as u64;
            p.keys.retain(|_, (first, _)| p.entries.contains_key(first));
        }
        Ok(purged)
    }
}
