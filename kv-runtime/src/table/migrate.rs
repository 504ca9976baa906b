//! Moving every row to the current schema version, so that the chain of
//! previous versions can later be dropped.

use super::{codec, Table};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::schema::{KvKey, KvSchema};

/// Rows read per page by [`Table::migrate_all`].
const PAGE: usize = 200;

/// How many times a row that keeps changing under the migration is read
/// again before the migration moves on (it is then counted as `busy`).
const ATTEMPTS: usize = 8;

/// What [`Table::migrate_all`] has done so far (also handed to its
/// progress callback after every page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// Rows rewritten at the current version.
    pub migrated: u64,
    /// Rows found at the current version already (nothing to do).
    pub current: u64,
    /// Soft-deleted rows of an older version, left as they are: they are
    /// migrated on read, and written at the current version when restored
    /// and set, or removed by purge.
    pub soft_deleted: u64,
    /// Rows a newer schema version wrote: left alone (this program cannot
    /// read them).
    pub newer: u64,
    /// Rows that do not decode as their own version (or whose key the
    /// schema no longer declares): left alone, and listed by `list` as
    /// unreadable.
    pub unreadable: u64,
    /// Live rows that kept changing while the migration tried to rewrite
    /// them: run it again.
    pub busy: u64,
    /// The last key looked at.
    pub last_key: Option<String>,
}

impl Migration {
    /// Whether every live row this program can read is at the current
    /// version (nothing was left busy).
    pub fn is_complete(&self) -> bool {
        self.busy == 0
    }
}

impl<S: KvSchema> Table<S> {
    /// Rewrites every live row written by an older schema version at the
    /// current one, a page at a time, so that the chain of previous versions
    /// can later be dropped; see [`Migration`] for what it leaves. Each row
    /// is written like [`Table::set_expecting`] with the version it was
    /// read at (so a concurrent write is never overwritten; the row is then
    /// read again): requires the write role, and runs the `before_set`
    /// hooks. Safe to run while other processes write, and to run again
    /// (rows already current are skipped): that is how it resumes.
    pub async fn migrate_all(&self, ctx: &Ctx) -> Result<Migration> {
        self.migrate_all_with(ctx, |_| {}).await
    }

    /// [`Table::migrate_all`], calling `progress` after every page.
    pub async fn migrate_all_with(
        &self,
        ctx: &Ctx,
        mut progress: impl FnMut(&Migration),
    ) -> Result<Migration> {
        self.authorize(ctx, "set").await?;
        let mut done = Migration::default();
        loop {
            let rows = self
                .store
                .backend
                .scan(S::TABLE, done.last_key.as_deref(), PAGE)
                .await?;
            for raw in &rows {
                self.migrate_row(ctx, raw, &mut done).await?;
                done.last_key = Some(raw.key.clone());
            }
            progress(&done);
            if rows.len() < PAGE {
                return Ok(done);
            }
        }
    }

    async fn migrate_row(
        &self,
        ctx: &Ctx,
        first: &crate::backend::RawRow,
        done: &mut Migration,
    ) -> Result<()> {
        let mut raw = first.clone();
        for _ in 0..ATTEMPTS {
            let schema = raw.value.schema();
            if schema == S::VERSION {
                done.current += 1;
                return Ok(());
            }
            if schema > S::VERSION {
                done.newer += 1;
                return Ok(());
            }
            if !raw.is_live() {
                done.soft_deleted += 1;
                return Ok(());
            }
            let Ok(row) = codec::decode_row::<S>(&raw) else {
                done.unreadable += 1;
                return Ok(());
            };
            match self
                .set_expecting(ctx, row.key.clone(), row.value, raw.updated_at)
                .await
            {
                Ok(_) => {
                    done.migrated += 1;
                    return Ok(());
                }
                Err(Error::NewerSchema { .. }) => {
                    done.newer += 1;
                    return Ok(());
                }
                // Written meanwhile: look at it again.
                Err(Error::Conflict { .. }) => {
                    match self.store.backend.get(S::TABLE, row.key.as_str()).await? {
                        Some(now) => raw = now,
                        None => return Ok(()), // removed meanwhile: nothing to migrate
                    }
                }
                Err(other) => return Err(other),
            }
        }
        done.busy += 1;
        Ok(())
    }
}
