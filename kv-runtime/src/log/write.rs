//! Appends and deletes. Every write runs the same steps, in the order of a
//! table's writes:
//!
//! 1. authorize the caller against the log's write role;
//! 2. check the parent (and the idempotency key, and the batch);
//! 3. validate and encode the values;
//! 4. count the write against the rate limit (one per entry);
//! 5. run the before-hooks (a changed value is validated again);
//! 6. the backend step: one atomic append or delete;
//! 7. run the after-hooks.

use std::borrow::Borrow;

use super::entry::{decode_with, entry_name};
use super::hooks::{AfterAppend, AfterRmEntry, BeforeAppend, BeforeRmEntry, LogHooks};
use super::{Log, LogEntry, LogSchema, LogSoftDelete, MAX_BATCH};
use crate::backend::{Append, Appended, EntryRestored, Payload, RawEntry, RmMode};
use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::hooks;
use crate::quota::limit;
use crate::table::codec;
use crate::telemetry;

impl<L: LogSchema> Log<L> {
    /// Appends `value` to `parent` and returns its entry, numbered after
    /// the parent's last one. Requires the write role; counts against the
    /// rate limit.
    pub async fn append(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        value: L,
    ) -> Result<LogEntry<L>> {
        let entries = self
            .append_values(ctx, parent.borrow(), None, vec![value])
            .await?;
        one(entries)
    }

    /// Like [`Log::append`], once per idempotency `key` (1 to 256 bytes,
    /// no control characters; say a UUID the client made for the message):
    /// the first call appends, and every later call with the same key for
    /// the same parent (a retry after a lost reply, from any process)
    /// appends nothing and returns that first entry as it is now (its value
    /// is not compared). A key is remembered as long as its entry is stored;
    /// if it was removed or purged meanwhile, the retry is
    /// [`Error::NotFound`].
    pub async fn append_idempotent(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        key: &str,
        value: L,
    ) -> Result<LogEntry<L>> {
        let entries = self
            .append_values(ctx, parent.borrow(), Some(key), vec![value])
            .await?;
        one(entries)
    }

    /// Appends `values` (1 to [`MAX_BATCH`]) to `parent` as one atomic
    /// step: all of them, with consecutive numbers, or none. Counts one
    /// write per value against the rate limit.
    pub async fn append_many(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        values: Vec<L>,
    ) -> Result<Vec<LogEntry<L>>> {
        self.append_values(ctx, parent.borrow(), None, values).await
    }

    /// [`Log::append_many`] once per idempotency `key`: a retry returns the
    /// entries the first call appended (those still stored).
    pub async fn append_many_idempotent(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        key: &str,
        values: Vec<L>,
    ) -> Result<Vec<LogEntry<L>>> {
        self.append_values(ctx, parent.borrow(), Some(key), values)
            .await
    }

    async fn append_values(
        &self,
        ctx: &Ctx,
        parent: &L::Parent,
        key: Option<&str>,
        values: Vec<L>,
    ) -> Result<Vec<LogEntry<L>>> {
        let shown = parent.to_string();
        let steps = self.append_steps(ctx, parent, key, values);
        telemetry::measured(L::TABLE, "append", Some(&shown), steps).await
    }

    async fn append_steps(
        &self,
        ctx: &Ctx,
        parent: &L::Parent,
        key: Option<&str>,
        values: Vec<L>,
    ) -> Result<Vec<LogEntry<L>>> {
        self.authorize_write(ctx, "append").await?;
        let text = Self::parent_text(parent)?;
        if let Some(key) = key {
            if let Some(problem) = crate::key_rules::key_problem(key) {
                return Err(invalid::<L>(
                    "idempotency_key",
                    format!("an idempotency key follows the rules of keys: {problem}"),
                ));
            }
        }
        check_batch::<L>(values.len())?;
        let mut payloads = values
            .iter()
            .map(|v| encode::<L>(v))
            .collect::<Result<Vec<_>>>()?;
        let n = u32::try_from(values.len()).unwrap_or(u32::MAX);
        limit::count_writes(
            &self.store,
            &Self::rate_scope(),
            L::TABLE,
            L::RATE_LIMIT,
            ctx,
            n,
        )
        .await?;
        let hooks = self.store.hooks.get_of::<LogHooks<L>>();
        let mut values = values;
        if let Some(h) = hooks.as_deref().filter(|h| !h.before_append.is_empty()) {
            for (value, payload) in values.iter_mut().zip(payloads.iter_mut()) {
                let changed = hooks::run_before(
                    &h.before_append,
                    L::TABLE,
                    "append",
                    value.clone(),
                    |value| BeforeAppend {
                        ctx: ctx.clone(),
                        parent: parent.clone(),
                        value,
                    },
                )
                .await?;
                // What the hooks return is validated like any value.
                *payload = encode::<L>(&changed)?;
                *value = changed;
            }
        }
        let append = Append {
            parent: &text,
            key,
            author: ctx.actor(),
            now: self.store.now(),
        };
        let appended = self
            .store
            .backend
            .logs()
            .append(L::TABLE, append, payloads)
            .await
            .map_err(|e| e.in_table(L::TABLE))?;
        match appended {
            Appended::New(raw) => {
                if raw.len() != values.len() {
                    return Err(Error::Internal(format!(
                        "the {} backend appended {} entries of {} to log `{}`",
                        self.store.backend.name(),
                        raw.len(),
                        values.len(),
                        L::TABLE
                    )));
                }
                let entries: Vec<LogEntry<L>> = raw
                    .into_iter()
                    .zip(values)
                    .map(|(raw, value)| typed(raw, parent.clone(), value))
                    .collect();
                if let Some(h) = hooks.as_deref().filter(|h| !h.after_append.is_empty()) {
                    for entry in &entries {
                        hooks::run_after(&h.after_append, "after_append", || AfterAppend {
                            ctx: ctx.clone(),
                            entry: entry.clone(),
                        })
                        .await;
                    }
                }
                Ok(entries)
            }
            Appended::Replayed(raw) => {
                if raw.is_empty() {
                    return Err(Error::NotFound {
                        table: L::TABLE,
                        key: crate::error::shorten(&format!(
                            "{text} (idempotency key {:?}: its entries were removed)",
                            key.unwrap_or_default()
                        )),
                    });
                }
                raw.iter()
                    .map(|r| decode_with::<L>(r, parent.clone()))
                    .collect()
            }
        }
    }

    /// Deletes entry `seq` of `parent`: marks it deleted on `soft_delete`
    /// logs, removes it otherwise. Returns whether a live entry was
    /// deleted; a missing or already deleted entry is not an error. Requires
    /// the write role; counts against the rate limit.
    pub async fn rm(&self, ctx: &Ctx, parent: impl Borrow<L::Parent>, seq: u64) -> Result<bool> {
        Ok(self.rm_many(ctx, parent, &[seq]).await? == 1)
    }

    /// Deletes the entries `seqs` (at most [`MAX_BATCH`]) of `parent` as one
    /// atomic step; returns how many live entries were deleted. Counts one
    /// write per number against the rate limit. A refusal by a `before_rm`
    /// hook deletes none.
    pub async fn rm_many(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        seqs: &[u64],
    ) -> Result<usize> {
        let parent = parent.borrow();
        let shown = parent.to_string();
        let steps = self.rm_steps(ctx, parent, seqs);
        telemetry::measured(L::TABLE, "rm", Some(&shown), steps).await
    }

    async fn rm_steps(&self, ctx: &Ctx, parent: &L::Parent, seqs: &[u64]) -> Result<usize> {
        self.authorize_write(ctx, "rm").await?;
        let text = Self::parent_text(parent)?;
        if seqs.is_empty() {
            return Ok(0);
        }
        check_batch::<L>(seqs.len())?;
        let n = u32::try_from(seqs.len()).unwrap_or(u32::MAX);
        limit::count_writes(
            &self.store,
            &Self::rate_scope(),
            L::TABLE,
            L::RATE_LIMIT,
            ctx,
            n,
        )
        .await?;
        let logs = self.store.backend.logs();
        let hooks = self.store.hooks.get_of::<LogHooks<L>>();
        if let Some(h) = hooks.as_deref().filter(|h| !h.before_rm.is_empty()) {
            for &seq in seqs {
                let Some(raw) = logs.get(L::TABLE, &text, seq).await? else {
                    continue;
                };
                if !raw.is_live() {
                    continue;
                }
                let entry = decode_with::<L>(&raw, parent.clone())?;
                hooks::run_before(&h.before_rm, L::TABLE, "rm", (), |()| BeforeRmEntry {
                    ctx: ctx.clone(),
                    entry: entry.clone(),
                })
                .await?;
            }
        }
        let mode = if L::SOFT_DELETE {
            RmMode::Soft
        } else {
            RmMode::Hard
        };
        let removed = logs
            .rm(L::TABLE, &text, seqs, mode, self.store.now())
            .await
            .map_err(|e| e.in_table(L::TABLE))?;
        if let Some(h) = hooks.as_deref().filter(|h| !h.after_rm.is_empty()) {
            for raw in &removed {
                match decode_with::<L>(raw, parent.clone()) {
                    Ok(entry) => {
                        hooks::run_after(&h.after_rm, "after_rm", || AfterRmEntry {
                            ctx: ctx.clone(),
                            entry: entry.clone(),
                        })
                        .await;
                    }
                    Err(e) => tracing::warn!(
                        target: "kv_runtime::hooks",
                        table = L::TABLE,
                        "after_rm hooks skipped: {e}"
                    ),
                }
            }
        }
        Ok(removed.len())
    }

    /// Brings back the soft-deleted entry `seq` of `parent`; a live entry
    /// is returned unchanged; an entry that never existed (or was purged)
    /// is [`Error::NotFound`]. Requires the write role; not rate-limited,
    /// runs no hooks. Only logs declared with `soft_delete` have it.
    pub async fn restore(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        seq: u64,
    ) -> Result<LogEntry<L>>
    where
        L: LogSoftDelete,
    {
        let parent = parent.borrow();
        let shown = parent.to_string();
        let steps = async {
            self.authorize_write(ctx, "restore").await?;
            let text = Self::parent_text(parent)?;
            let restored = self
                .store
                .backend
                .logs()
                .restore(L::TABLE, &text, seq)
                .await
                .map_err(|e| e.in_table(L::TABLE))?;
            match restored {
                EntryRestored::Revived(raw) | EntryRestored::AlreadyLive(raw) => {
                    decode_with::<L>(&raw, parent.clone())
                }
                EntryRestored::NotFound => Err(Error::NotFound {
                    table: L::TABLE,
                    key: crate::error::shorten(&entry_name(&text, seq)),
                }),
            }
        };
        telemetry::measured(L::TABLE, "restore", Some(&shown), steps).await
    }
}

/// The one entry of a single append.
fn one<L: LogSchema>(mut entries: Vec<LogEntry<L>>) -> Result<LogEntry<L>> {
    match (entries.pop(), entries.is_empty()) {
        (Some(entry), true) => Ok(entry),
        _ => Err(Error::Internal(format!(
            "a single append to log `{}` gave {} entries",
            L::TABLE,
            entries.len() + 1
        ))),
    }
}

fn invalid<L: LogSchema>(path: &str, message: impl Into<String>) -> Error {
    Error::ValidationFailed {
        table: L::TABLE,
        fields: vec![FieldError::new(path, message)],
    }
}

/// A bulk call holds 1 to [`MAX_BATCH`] items.
fn check_batch<L: LogSchema>(len: usize) -> Result<()> {
    if len == 0 || len > MAX_BATCH {
        return Err(invalid::<L>(
            "",
            format!("a call takes 1 to {MAX_BATCH} entries, not {len}"),
        ));
    }
    Ok(())
}

/// Validates and encodes a value of log `L`.
fn encode<L: LogSchema>(value: &L) -> Result<Payload> {
    codec::encode_value(L::TABLE, L::MAX_VALUE_BYTES, value.validate_value(), value)
}

/// The typed entry of a raw entry this call appended with `value`.
fn typed<L: LogSchema>(raw: RawEntry, parent: L::Parent, value: L) -> LogEntry<L> {
    LogEntry {
        parent,
        seq: raw.seq,
        value,
        created_at: raw.created_at,
        author: raw.author,
        deleted_at: raw.deleted_at,
    }
}
