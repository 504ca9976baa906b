//! The in-memory backend: the default for tests and quick starts.
//!
//! Rows live in one ordered map per table behind a read-write lock. Nothing
//! survives the process.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use super::{next_version, Backend, Put, PutOutcome, RawRow, Remove, RestoreOutcome};
use crate::error::Result;

type Tables = HashMap<String, BTreeMap<String, RawRow>>;

/// Rows in process memory. Create one with [`MemoryBackend::new`] or
/// [`Store::memory`](crate::Store::memory).
#[derive(Debug, Default)]
pub struct MemoryBackend {
    tables: RwLock<Tables>,
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

    fn write<T>(&self, table: &str, f: impl FnOnce(&mut BTreeMap<String, RawRow>) -> T) -> T {
        let mut guard = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        if !guard.contains_key(table) {
            guard.insert(table.to_owned(), BTreeMap::new());
        }
        let rows = guard.get_mut(table).expect("table was inserted just above");
        f(rows)
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        Ok(self.read(|t| t.get(table).and_then(|rows| rows.get(key)).cloned()))
    }

    async fn list(&self, table: &str, after: Option<&str>, limit: usize) -> Result<Vec<RawRow>> {
        Ok(self.read(|t| {
            let Some(rows) = t.get(table) else {
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
        Ok(self.write(table, |rows| {
            let existing = rows.get(put.key);
            if let Some(expected) = put.expected_updated_at {
                let current = existing.filter(|r| r.is_live()).map(|r| r.updated_at);
                if current != Some(expected) {
                    return PutOutcome::Conflict {
                        current_updated_at: current,
                    };
                }
            }
            let row = RawRow {
                key: put.key.to_owned(),
                value: put.value,
                created_at: existing.map_or(put.now, |r| r.created_at),
                updated_at: next_version(existing.map(|r| r.updated_at), put.now),
                deleted_at: None,
                updated_by: put.updated_by.map(str::to_owned),
            };
            rows.insert(row.key.clone(), row.clone());
            PutOutcome::Written(row)
        }))
    }

    async fn remove(&self, table: &str, remove: Remove<'_>) -> Result<Option<RawRow>> {
        Ok(self.write(table, |rows| {
            let row = rows.get_mut(remove.key).filter(|r| r.is_live())?;
            let before = row.clone();
            if remove.soft {
                row.deleted_at = Some(remove.now);
                row.updated_at = next_version(Some(row.updated_at), remove.now);
                row.updated_by = remove.updated_by.map(str::to_owned);
            } else {
                rows.remove(remove.key);
            }
            Some(before)
        }))
    }

    async fn restore(
        &self,
        table: &str,
        key: &str,
        updated_by: Option<&str>,
        now: i64,
    ) -> Result<RestoreOutcome> {
        Ok(self.write(table, |rows| match rows.get_mut(key) {
            None => RestoreOutcome::NotFound,
            Some(row) if row.is_live() => RestoreOutcome::AlreadyLive(row.clone()),
            Some(row) => {
                row.deleted_at = None;
                row.updated_at = next_version(Some(row.updated_at), now);
                row.updated_by = updated_by.map(str::to_owned);
                RestoreOutcome::Restored(row.clone())
            }
        }))
    }
}
