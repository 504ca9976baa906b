//! A row's history: `history` (reading it) and `revert` (writing one of
//! its versions back through the write pipeline).

use std::borrow::Borrow;

use super::write::RevertOp;
use super::{codec, Table};
use crate::backend::{Expect, HistoryRecord};
use crate::context::Ctx;
use crate::cursor;
use crate::error::{Error, FieldError, Result};
use crate::history::{HistoryEntry, HistoryPage, UnreadableEntry};
use crate::row::{PageRequest, Row};
use crate::schema::{History, KvKey, KvSchema};
use crate::telemetry;

impl<S: KvSchema> Table<S> {
    /// One page of `key`'s history, newest first: every committed change
    /// of the row (`set`, `rm`, `restore`, `purge`) the table still keeps,
    /// with its version, value, time and caller. Requires the write role.
    ///
    /// Records outlive their row, so a deleted or purged key still has its
    /// history. `num_items` 0 means 100, more than 1000 is
    /// `VALIDATION_FAILED`; a malformed cursor, or one of another table or
    /// key, is [`Error::InvalidCursor`]. Only tables declared with
    /// `history` have this method.
    pub async fn history(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        request: PageRequest,
    ) -> Result<HistoryPage<S>>
    where
        S: History,
    {
        self.history_page(ctx, key.borrow(), request).await
    }

    /// Writes the value of `key`'s history record `version` back, as a
    /// `set`, only if the row has not changed since this call read it
    /// (otherwise [`Error::Conflict`], and nothing is written): so a
    /// revert never overwrites a change it did not see. Reverting to an
    /// `rm` or `purge` record writes back the value the row had when it
    /// was deleted (the row is live again).
    ///
    /// The write goes through the write pipeline as `revert`: the write
    /// role, validation (of the old value, migrated to the current schema
    /// version), the rate limit, the `before_set` and `after_set` hooks,
    /// and it is recorded in the history like any change. A version the
    /// history does not hold (never one of this row's, or trimmed) is
    /// [`Error::NoSuchVersion`] (`NOT_FOUND`). Only tables declared with
    /// `history` have this method.
    pub async fn revert(&self, ctx: &Ctx, key: impl Borrow<S::Key>, version: i64) -> Result<Row<S>>
    where
        S: History,
    {
        self.revert_to(ctx, key.borrow(), version, None).await
    }

    /// Like [`Table::revert`], but only if the live row still has
    /// `updated_at == expected_updated_at`, the version the caller last
    /// saw (say, when it showed the history to a person); otherwise
    /// [`Error::Conflict`] carrying the current one (`None` when there is
    /// no live row). Over HTTP this is `POST /{key}/revert` with
    /// `If-Match`.
    pub async fn revert_expecting(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        version: i64,
        expected_updated_at: i64,
    ) -> Result<Row<S>>
    where
        S: History,
    {
        self.revert_to(ctx, key.borrow(), version, Some(expected_updated_at))
            .await
    }

    /// [`Table::history`] without the `History` bound, for the router
    /// (which serves it when [`KvSchema::HISTORY`] is set).
    pub(crate) async fn history_page(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        request: PageRequest,
    ) -> Result<HistoryPage<S>> {
        let read = self.read_history(ctx, key, request);
        telemetry::measured(S::TABLE, "history", Some(key.as_str()), read).await
    }

    async fn read_history(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        request: PageRequest,
    ) -> Result<HistoryPage<S>> {
        self.authorize(ctx, "history").await?;
        key.check(S::TABLE)?;
        let limit = match request.num_items {
            0 => PageRequest::DEFAULT_ITEMS,
            n if n > PageRequest::MAX_ITEMS => {
                return Err(Error::ValidationFailed {
                    table: S::TABLE,
                    fields: vec![FieldError::new(
                        "num_items",
                        format!("at most {} records per page", PageRequest::MAX_ITEMS),
                    )],
                })
            }
            n => n,
        };
        let before = match &request.cursor {
            Some(c) => Some(cursor::decode_history(S::TABLE, key.as_str(), c)?),
            None => None,
        };
        let mut records = self
            .store
            .backend
            .history(S::TABLE, key.as_str(), before, limit + 1)
            .await
            .map_err(|e| e.in_table(S::TABLE))?;
        let is_done = records.len() <= limit;
        records.truncate(limit);
        let continue_cursor = match records.last() {
            Some(last) if !is_done => {
                Some(cursor::encode_history(S::TABLE, key.as_str(), last.version))
            }
            _ => None,
        };
        let mut entries = Vec::with_capacity(records.len());
        let mut unreadable = Vec::new();
        for record in records {
            match codec::decode_value::<S>(&record.value, key.as_str()) {
                Ok(value) => entries.push(entry(key, record, value)),
                Err(Error::Unreadable { reason, .. }) => unreadable.push(UnreadableEntry {
                    version: record.version,
                    op: record.op,
                    schema_version: record.value.schema(),
                    reason,
                }),
                Err(other) => return Err(other),
            }
        }
        Ok(HistoryPage {
            entries,
            is_done,
            continue_cursor,
            unreadable,
        })
    }

    /// [`Table::revert`] and [`Table::revert_expecting`] without the
    /// `History` bound, for the router.
    pub(crate) async fn revert_to(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        version: i64,
        expected_updated_at: Option<i64>,
    ) -> Result<Row<S>> {
        // The pipeline checks these again; here they keep a caller who may
        // not write from reading the history, and bad keys from the backend.
        self.authorize(ctx, "revert").await?;
        key.check(S::TABLE)?;
        let record = self.record(key, version).await?;
        let value = codec::decode_value::<S>(&record.value, key.as_str())?;
        let expect = match expected_updated_at {
            Some(v) => Expect::Version(v),
            // The row as this call sees it now: a change made between this
            // read and the write is a conflict, not overwritten.
            None => {
                let current = self
                    .store
                    .backend
                    .get(S::TABLE, key.as_str())
                    .await
                    .map_err(|e| e.in_table(S::TABLE))?;
                match current.filter(|r| r.is_live()) {
                    Some(row) => Expect::Version(row.updated_at),
                    None => Expect::NotLive,
                }
            }
        };
        self.write(ctx, key, RevertOp::new(value), expect).await
    }

    /// The history record `version` of `key`.
    async fn record(&self, key: &S::Key, version: i64) -> Result<HistoryRecord> {
        let before = version.checked_add(1);
        let found = self
            .store
            .backend
            .history(S::TABLE, key.as_str(), before, 1)
            .await
            .map_err(|e| e.in_table(S::TABLE))?;
        found
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| Error::NoSuchVersion {
                table: S::TABLE,
                key: crate::error::shorten(key.as_str()),
                version,
            })
    }
}

fn entry<S: KvSchema>(key: &S::Key, record: HistoryRecord, value: S) -> HistoryEntry<S> {
    HistoryEntry {
        key: key.clone(),
        version: record.version,
        op: record.op,
        value,
        schema_version: record.value.schema(),
        at: record.at,
        updated_by: record.updated_by,
    }
}
