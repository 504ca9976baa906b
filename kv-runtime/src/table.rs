//! Typed operations on one table.

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use crate::backend::{
    Expect, Payload, Put, PutOutcome, RateDecision, RawRow, Remove, RemoveOutcome, RestoreOutcome,
};
use crate::context::Ctx;
use crate::cursor;
use crate::error::{Error, FieldError, Result};
use crate::files::FileCleanupFailure;
use crate::hooks::{
    call_guarded, AfterUpdate, BeforeUpdate, BeforeUpdateFn, HookOutcome, Removal, RemovalFn,
};
use crate::row::{Page, PageRequest, Row};
use crate::schema::{may_write, BoxFuture, KvKey, KvSchema, SoftDelete};
use crate::store::Store;

/// The typed operations of table `S` in a [`Store`]. Get one with
/// [`Store::table`]; cheap to clone.
///
/// Reads (`get`) are public and take no context. Writes and `list` take the
/// caller's [`Ctx`] and are checked against the table's `write_role`;
/// every write validates the value first. A failed call changes nothing.
pub struct Table<S: KvSchema> {
    store: Store,
    _schema: PhantomData<fn() -> S>,
}

impl<S: KvSchema> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table::new(self.store.clone())
    }
}

impl<S: KvSchema> fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("table", &S::TABLE)
            .field("store", &self.store)
            .finish()
    }
}

impl<S: KvSchema> Table<S> {
    pub(crate) fn new(store: Store) -> Self {
        Table {
            store,
            _schema: PhantomData,
        }
    }

    /// The store this table lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The live row with `key`, or `None` (also for soft-deleted rows).
    /// Public: needs no context.
    ///
    /// On a backend that holds rows in memory the answer is ready at once:
    /// the returned future completes on its first poll.
    pub fn get(
        &self,
        key: impl Borrow<S::Key>,
    ) -> impl Future<Output = Result<Option<Row<S>>>> + Send + '_ {
        let key = key.borrow();
        if let Err(e) = key.check(S::TABLE) {
            return ReadFuture::Ready(Some(Err(e)));
        }
        match self.read_now(key) {
            Some(answer) => ReadFuture::Ready(Some(answer)),
            None => {
                let key = key.clone();
                ReadFuture::Waiting(Box::pin(async move { self.read_io(key.as_str()).await }))
            }
        }
    }

    /// Like [`Table::get`], with the key as text (as it arrives from a URL);
    /// an unknown key is [`Error::InvalidKey`].
    pub async fn get_str(&self, key: &str) -> Result<Option<Row<S>>> {
        let key = S::Key::parse_key(S::TABLE, key)?;
        self.get(key).await
    }

    /// Answers from a backend that can read without waiting.
    fn read_now(&self, key: &S::Key) -> Option<Result<Option<Row<S>>>> {
        let mut answer = None;
        let answered = self
            .store
            .backend
            .get_now(S::TABLE, key.as_str(), &mut |raw| {
                answer = Some(match raw {
                    Some(raw) if raw.is_live() => decode_row_ref::<S>(raw, key.clone()).map(Some),
                    _ => Ok(None),
                });
            });
        if answered {
            Some(answer.unwrap_or(Ok(None)))
        } else {
            None
        }
    }

    async fn read_io(&self, key: &str) -> Result<Option<Row<S>>> {
        match self.store.backend.get(S::TABLE, key).await? {
            Some(raw) if raw.is_live() => decode_row::<S>(raw).map(Some),
            _ => Ok(None),
        }
    }

    /// One page of live rows in key order. Requires the write role.
    ///
    /// Soft-deleted rows are skipped before paging, so a page is full unless
    /// it is the last. A malformed cursor, or one from another table, is
    /// [`Error::InvalidCursor`].
    pub async fn list(&self, ctx: &Ctx, request: PageRequest) -> Result<Page<S>> {
        self.authorize(ctx, "list").await?;
        let limit = match request.num_items {
            0 => PageRequest::DEFAULT_ITEMS,
            n if n > PageRequest::MAX_ITEMS => {
                return Err(Error::ValidationFailed {
                    table: S::TABLE,
                    fields: vec![FieldError::new(
                        "num_items",
                        format!("at most {} rows per page", PageRequest::MAX_ITEMS),
                    )],
                })
            }
            n => n,
        };
        let after = match &request.cursor {
            Some(c) => Some(cursor::decode(S::TABLE, c)?),
            None => None,
        };
        // Rows whose key is no longer declared in `keys = [...]` are orphans
        // of an older schema: not readable, so skipped, and more rows are
        // fetched so that the page is still full unless it is the last.
        let mut after = after;
        let mut page = Vec::with_capacity(limit.min(64));
        let is_done = loop {
            let batch = self
                .store
                .backend
                .list(S::TABLE, after.as_deref(), limit + 1)
                .await?;
            let exhausted = batch.len() <= limit;
            let mut full_with_more = false;
            for row in batch {
                if page.len() == limit {
                    full_with_more = true;
                    break;
                }
                if let Ok(key) = S::Key::parse_key(S::TABLE, &row.key) {
                    page.push(decode_row_once::<S>(&row, key)?);
                }
                after = Some(row.key);
            }
            if full_with_more {
                break false;
            }
            if exhausted {
                break true;
            }
        };
        let continue_cursor = match (&after, is_done) {
            (Some(last), false) => Some(cursor::encode(S::TABLE, last)),
            _ => None,
        };
        Ok(Page {
            page,
            is_done,
            continue_cursor,
        })
    }

    /// Stores `value` under `key` (insert or overwrite) and returns the row.
    /// Setting a soft-deleted key brings it back. Requires the write role.
    pub async fn set(&self, ctx: &Ctx, key: impl Borrow<S::Key>, value: S) -> Result<Row<S>> {
        self.write(ctx, key.borrow(), value, Expect::Any).await
    }

    /// Like [`Table::set`], but only if the stored live row still has
    /// `updated_at == expected_updated_at`; otherwise [`Error::Conflict`]
    /// carrying the current `updated_at` (`None` when there is no live row).
    /// The check and the write are one atomic step.
    pub async fn set_expecting(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        value: S,
        expected_updated_at: i64,
    ) -> Result<Row<S>> {
        self.write(
            ctx,
            key.borrow(),
            value,
            Expect::Version(expected_updated_at),
        )
        .await
    }

    /// Like [`Table::set`], but only if there is no live row under `key`:
    /// creates a missing row, or revives a soft-deleted one; a live row is
    /// left alone and the call fails with [`Error::Conflict`] carrying that
    /// row's `updated_at`. The check and the write are one atomic step, so
    /// of many concurrent calls for one absent key exactly one succeeds.
    pub async fn set_if_absent(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        value: S,
    ) -> Result<Row<S>> {
        self.write(ctx, key.borrow(), value, Expect::NotLive).await
    }

    async fn write(&self, ctx: &Ctx, key: &S::Key, value: S, expect: Expect) -> Result<Row<S>> {
        self.authorize(ctx, "set").await?;
        key.check(S::TABLE)?;
        let payload = encode_value(&value)?;
        self.check_rate(ctx).await?;
        let hooks = self.store.hooks.get::<S>();
        let before = hooks.as_deref().map_or(&[][..], |h| &h.before_update[..]);
        let (row, previous) = if before.is_empty() {
            self.put(ctx, key, value, payload, expect).await?
        } else {
            self.write_with_hooks(ctx, key, value, expect, before)
                .await?
        };
        if S::CLEAN_FILES {
            if let Some(previous) = previous {
                let mut new_ids = Vec::new();
                row.value.file_ids(&mut new_ids);
                self.clean_files(&previous, &new_ids).await;
            }
        }
        if let Some(hooks) = &hooks {
            for (name, hook) in &hooks.after_update {
                let change = AfterUpdate {
                    ctx: ctx.clone(),
                    row: row.clone(),
                };
                log_after_hook(name, "after_update", call_guarded(&**hook, change).await);
            }
        }
        Ok(row)
    }

    /// Runs the before-update hooks on the live row as read just before the
    /// write, then writes expecting what the hooks saw: that row's version,
    /// or no live row when they saw none ([`Expect::NotLive`]). So the
    /// write never replaces a row the hooks did not see: when another writer
    /// got in between, the row is read again and the hooks run again. With
    /// the caller's own expectation, that one is used instead and a
    /// conflict is the caller's to handle; without one, the write is
    /// retried up to [`HOOK_ATTEMPTS`] times, then fails with
    /// [`Error::Backend`] (the row kept changing; never a CONFLICT the
    /// caller did not ask for).
    async fn write_with_hooks(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        value: S,
        expect: Expect,
        before: &[(Arc<str>, BeforeUpdateFn<S>)],
    ) -> Result<(Row<S>, Option<RawRow>)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let previous = match self.store.backend.get(S::TABLE, key.as_str()).await? {
                Some(raw) if raw.is_live() => Some(decode_row::<S>(raw)?),
                _ => None,
            };
            let mut candidate = value.clone();
            for (name, hook) in before {
                let change = BeforeUpdate {
                    ctx: ctx.clone(),
                    key: key.clone(),
                    value: candidate,
                    previous: previous.clone(),
                };
                candidate =
                    call_guarded(&**hook, change)
                        .await
                        .into_result(S::TABLE, "set", name)?;
            }
            let payload = encode_value(&candidate)?;
            let seen = match (expect, &previous) {
                (Expect::Any, None) => Expect::NotLive,
                (Expect::Any, Some(row)) => Expect::Version(row.updated_at),
                (own, _) => own,
            };
            match self.put(ctx, key, candidate, payload, seen).await {
                Err(Error::Conflict { .. }) if expect == Expect::Any => {
                    if attempt >= HOOK_ATTEMPTS {
                        return Err(hooks_gave_up::<S>("set", key.as_str(), "before_update"));
                    }
                    tokio::task::yield_now().await;
                }
                other => return other,
            }
        }
    }

    /// One backend upsert; returns the typed row and the raw row replaced.
    async fn put(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        value: S,
        payload: Payload,
        expect: Expect,
    ) -> Result<(Row<S>, Option<RawRow>)> {
        let outcome = self
            .store
            .backend
            .put(
                S::TABLE,
                Put {
                    key: key.as_str(),
                    value: payload,
                    expect,
                    updated_by: ctx.actor(),
                    now: self.store.now(),
                },
            )
            .await
            .map_err(|e| e.in_table(S::TABLE))?;
        match outcome {
            PutOutcome::Written { row: raw, previous } => Ok((
                Row {
                    key: key.clone(),
                    value,
                    created_at: raw.created_at,
                    updated_at: raw.updated_at,
                    deleted_at: None,
                    updated_by: raw.updated_by,
                },
                previous,
            )),
            PutOutcome::Conflict { current_updated_at } => Err(Error::Conflict {
                table: S::TABLE,
                key: crate::error::shorten(key.as_str()),
                current_updated_at,
            }),
        }
    }

    /// Deletes `key`: marks it deleted on `soft_delete` tables, removes it
    /// otherwise. Returns whether a live row was deleted; a missing or
    /// already deleted key is not an error and changes nothing. Requires the
    /// write role; counts against the rate limit.
    ///
    /// With `before_rm` hooks, the row deleted is exactly the row the hooks
    /// approved: when another writer changes it in between, it is read
    /// again and the hooks run again (a bounded number of times; then
    /// [`Error::Backend`]).
    pub async fn rm(&self, ctx: &Ctx, key: impl Borrow<S::Key>) -> Result<bool> {
        self.authorize(ctx, "rm").await?;
        let key = key.borrow();
        key.check(S::TABLE)?;
        self.check_rate(ctx).await?;
        let hooks = self.store.hooks.get::<S>();
        let before_rm = hooks.as_deref().map_or(&[][..], |h| &h.before_rm[..]);
        let mut attempt = 0;
        let previous = loop {
            attempt += 1;
            let mut approved = None;
            if !before_rm.is_empty() {
                let Some(current) = self.get(key).await? else {
                    return Ok(false);
                };
                approved = Some(current.updated_at);
                self.run_before_rm(ctx, current, before_rm).await?;
            }
            let outcome = self
                .store
                .backend
                .remove(
                    S::TABLE,
                    Remove {
                        key: key.as_str(),
                        soft: S::SOFT_DELETE,
                        updated_by: ctx.actor(),
                        expected_updated_at: approved,
                        now: self.store.now(),
                    },
                )
                .await?;
            match outcome {
                RemoveOutcome::Removed(previous) => break previous,
                RemoveOutcome::NotLive => return Ok(false),
                RemoveOutcome::Conflict { .. } if approved.is_none() => {
                    return Err(Error::backend_msg(format!(
                        "the {} backend reported a version conflict for an unconditional rm \
                         of key {:?} in table `{}`",
                        self.store.backend.name(),
                        crate::error::shorten(key.as_str()),
                        S::TABLE
                    )))
                }
                RemoveOutcome::Conflict { .. } if attempt >= HOOK_ATTEMPTS => {
                    return Err(hooks_gave_up::<S>("rm", key.as_str(), "before_rm"))
                }
                // The row changed after the hooks approved it: read it
                // again and ask them again.
                RemoveOutcome::Conflict { .. } => tokio::task::yield_now().await,
            }
        };
        if S::CLEAN_FILES && !S::SOFT_DELETE {
            self.clean_files(&previous, &[]).await;
        }
        if let Some(hooks) = hooks.as_deref().filter(|h| !h.after_rm.is_empty()) {
            match decode_row::<S>(previous) {
                Ok(row) => {
                    for (name, hook) in &hooks.after_rm {
                        let removal = Removal {
                            ctx: ctx.clone(),
                            row: row.clone(),
                        };
                        log_after_hook(name, "after_rm", call_guarded(&**hook, removal).await);
                    }
                }
                Err(e) => tracing::warn!(
                    target: "kv_runtime::hooks",
                    table = S::TABLE,
                    "after_rm hooks skipped: the deleted row cannot be decoded: {e}"
                ),
            }
        }
        Ok(true)
    }

    /// Runs the `before_rm` hooks on `row`; the first refusal (or panic)
    /// is the error.
    async fn run_before_rm(
        &self,
        ctx: &Ctx,
        row: Row<S>,
        hooks: &[(Arc<str>, RemovalFn<S>)],
    ) -> Result<()> {
        for (name, hook) in hooks {
            let removal = Removal {
                ctx: ctx.clone(),
                row: row.clone(),
            };
            call_guarded(&**hook, removal)
                .await
                .into_result(S::TABLE, "rm", name)?;
        }
        Ok(())
    }

    /// Permanently removes rows soft-deleted longer ago than `retention`
    /// (and, with `clean_files`, their files). Live rows and rows deleted
    /// more recently are untouched. Returns how many rows were purged.
    ///
    /// This is a server-side operation with no caller context; run it from
    /// a job, or let [`Table::spawn_purge`] run it on an interval. A
    /// retention under one second or over 100 years is [`Error::Config`].
    pub async fn purge(&self, retention: Duration) -> Result<usize> {
        check_retention(retention)?;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = self.store.now().saturating_sub(retention_ms);
        let purged = self.store.backend.purge(S::TABLE, cutoff).await?;
        if S::CLEAN_FILES {
            for row in &purged {
                self.clean_files(row, &[]).await;
            }
        }
        Ok(purged.len())
    }

    /// Runs [`Table::purge`] every `every` in a background task ("delayed
    /// cleanup") until the returned handle is dropped. Failures are logged
    /// and retried on the next tick. Needs a Tokio runtime.
    pub fn spawn_purge(&self, retention: Duration, every: Duration) -> Result<PurgeTask> {
        check_retention(retention)?;
        if every.is_zero() {
            return Err(Error::Config(
                "a purge interval of zero would spin; use at least one millisecond".into(),
            ));
        }
        let table = self.clone();
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match table.purge(retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(
                        target: "kv_runtime::purge",
                        table = S::TABLE,
                        "purged {n} soft-deleted rows"
                    ),
                    Err(e) => tracing::warn!(
                        target: "kv_runtime::purge",
                        table = S::TABLE,
                        "purge failed, retrying next tick: {e}"
                    ),
                }
            }
        });
        Ok(PurgeTask { handle })
    }

    /// Deletes the files `previous` referenced that `keep` does not.
    async fn clean_files(&self, previous: &RawRow, keep: &[&str]) {
        let old: S = match previous.value.decode::<S>() {
            Ok(v) => S::clone(&v),
            Err(e) => {
                tracing::warn!(
                    target: "kv_runtime::files",
                    table = S::TABLE,
                    "cannot read the replaced row's file ids: {e}"
                );
                return;
            }
        };
        let mut old_ids = Vec::new();
        old.file_ids(&mut old_ids);
        let doomed = crate::files::unreferenced(&old_ids, keep);
        if doomed.is_empty() {
            return;
        }
        let files = self
            .store
            .files
            .store
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for id in doomed {
            let result = match &files {
                Some(files) => files.delete(id).await.map_err(|e| e.to_string()),
                None => Err("no file store is set on this store (Store::set_file_store)".into()),
            };
            if let Err(reason) = result {
                tracing::warn!(
                    target: "kv_runtime::files",
                    table = S::TABLE,
                    file_id = id,
                    "could not delete an unreferenced file: {reason}"
                );
                self.store
                    .files
                    .failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(FileCleanupFailure {
                        table: S::TABLE,
                        file_id: id.to_owned(),
                        reason,
                    });
            }
        }
    }

    /// Counts a write against the table's rate limit, if it has one.
    /// Internal callers are exempt. The bucket is the user id, else the
    /// client address, else one shared anonymous bucket.
    async fn check_rate(&self, ctx: &Ctx) -> Result<()> {
        let Some(limit) = S::RATE_LIMIT else {
            return Ok(());
        };
        if ctx.is_internal() {
            return Ok(());
        }
        let bucket = match (ctx.user_id(), ctx.client_addr()) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(addr)) => format!("addr:{addr}"),
            (None, None) => "anonymous".to_owned(),
        };
        let window_ms = i64::try_from(limit.window_ms).unwrap_or(i64::MAX);
        let decision = self
            .store
            .backend
            .rate_limit_hit(S::TABLE, &bucket, limit.max, window_ms, self.store.now())
            .await?;
        match decision {
            RateDecision::Admitted => Ok(()),
            RateDecision::Limited { retry_after_ms } => Err(Error::RateLimited {
                table: S::TABLE,
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(1)),
            }),
        }
    }

    /// Brings back a soft-deleted row, bumping its `updated_at`; a live row
    /// is returned unchanged. A key that never existed (or was purged) is
    /// [`Error::NotFound`]. Requires the write role. Only tables declared
    /// with `soft_delete` have this method.
    pub async fn restore(&self, ctx: &Ctx, key: impl Borrow<S::Key>) -> Result<Row<S>>
    where
        S: SoftDelete,
    {
        self.authorize(ctx, "restore").await?;
        let key = key.borrow();
        key.check(S::TABLE)?;
        let outcome = self
            .store
            .backend
            .restore(S::TABLE, key.as_str(), ctx.actor(), self.store.now())
            .await?;
        match outcome {
            RestoreOutcome::Restored(raw) | RestoreOutcome::AlreadyLive(raw) => decode_row(raw),
            RestoreOutcome::NotFound => Err(Error::NotFound {
                table: S::TABLE,
                key: crate::error::shorten(key.as_str()),
            }),
        }
    }

    /// Fails with [`Error::Forbidden`] unless `ctx` may write this table.
    pub async fn authorize(&self, ctx: &Ctx, op: &'static str) -> Result<()> {
        if may_write::<S>(ctx).await {
            Ok(())
        } else {
            Err(Error::Forbidden {
                table: S::TABLE,
                op,
                required: S::WRITE_ROLE.describe(),
            })
        }
    }
}

/// How many times a write with before-hooks (`before_update`, `before_rm`)
/// reads the row and runs the hooks when other writers keep changing the
/// row in between, before it gives up with [`Error::Backend`].
pub(crate) const HOOK_ATTEMPTS: usize = 16;

/// The error of a write whose row kept changing under its before-hooks.
fn hooks_gave_up<S: KvSchema>(op: &str, key: &str, hooks: &str) -> Error {
    Error::backend_msg(format!(
        "{op} of key {:?} in table `{}` gave up after {HOOK_ATTEMPTS} attempts: the row kept \
         changing under the {hooks} hooks",
        crate::error::shorten(key),
        S::TABLE
    ))
}

/// Validates a value and serializes it for storage.
pub(crate) fn encode_value<S: KvSchema>(value: &S) -> Result<Payload> {
    if let Err(fields) = value.validate_value() {
        return Err(Error::ValidationFailed {
            table: S::TABLE,
            fields,
        });
    }
    let json = serde_json::to_string(value).map_err(|e| Error::ValidationFailed {
        table: S::TABLE,
        fields: vec![FieldError::new(
            "",
            format!("the value cannot be serialized: {e}"),
        )],
    })?;
    // Refuse what could not be read back (say, nesting deeper than the JSON
    // decoder accepts), rather than acknowledge a write that is then lost.
    if let Err(e) = serde_json::from_str::<S>(&json) {
        return Err(Error::ValidationFailed {
            table: S::TABLE,
            fields: vec![FieldError::new(
                "",
                format!("the value would not read back from storage: {e}"),
            )],
        });
    }
    if json.len() > S::MAX_VALUE_BYTES {
        return Err(Error::ValidationFailed {
            table: S::TABLE,
            fields: vec![FieldError::new(
                "",
                format!(
                    "the value is {} bytes as JSON; this table accepts at most {}",
                    json.len(),
                    S::MAX_VALUE_BYTES
                ),
            )],
        });
    }
    Ok(Payload::from_json(json))
}

/// A background purge started by [`Table::spawn_purge`]; dropping it stops
/// the task.
#[derive(Debug)]
pub struct PurgeTask {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

fn check_retention(retention: Duration) -> Result<()> {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    if retention < Duration::from_secs(1) || retention > CENTURY {
        return Err(Error::Config(format!(
            "a purge retention of {retention:?} is refused: keep deleted rows between one second \
             and 100 years"
        )));
    }
    Ok(())
}

fn log_after_hook(name: &str, kind: &str, outcome: HookOutcome<()>) {
    match outcome {
        HookOutcome::Done(Ok(())) => {}
        HookOutcome::Done(Err(e)) => tracing::warn!(
            target: "kv_runtime::hooks",
            hook = name,
            "{kind} hook failed after the write committed (the write stands): {e}"
        ),
        HookOutcome::Panicked(message) => tracing::error!(
            target: "kv_runtime::hooks",
            hook = name,
            "{kind} hook panicked after the write committed (the write stands): {message}"
        ),
    }
}

/// A read that is either answered already or waits on the backend.
enum ReadFuture<'a, T> {
    Ready(Option<T>),
    Waiting(BoxFuture<'a, T>),
}

// Never pin-projects to `T` (the ready value is moved out by value), so the
// future may move freely whatever `T` is.
impl<T> Unpin for ReadFuture<'_, T> {}

impl<T> Future for ReadFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            ReadFuture::Ready(value) => match value.take() {
                Some(v) => Poll::Ready(v),
                None => panic!("a kv read future was polled after it completed"),
            },
            ReadFuture::Waiting(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// Turns a borrowed stored row (whose key is `key`) into a typed one.
pub(crate) fn decode_row_ref<S: KvSchema>(raw: &RawRow, key: S::Key) -> Result<Row<S>> {
    let value = match raw.value.decoded_ref::<S>() {
        Some(cached) => cached.clone(),
        None => {
            let decoded: Arc<S> = raw
                .value
                .decode::<S>()
                .map_err(|e| unreadable::<S>(&raw.key, e))?;
            S::clone(&decoded)
        }
    };
    Ok(Row {
        key,
        value,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by.clone(),
    })
}

/// Like [`decode_row_ref`], for a row read once (a page from storage):
/// decodes straight into the value instead of through the payload's cache,
/// which would cost a clone per row.
fn decode_row_once<S: KvSchema>(raw: &RawRow, key: S::Key) -> Result<Row<S>> {
    let value = match raw.value.decoded_ref::<S>() {
        Some(cached) => cached.clone(),
        None => {
            serde_json::from_str::<S>(raw.value.json()).map_err(|e| unreadable::<S>(&raw.key, e))?
        }
    };
    Ok(Row {
        key,
        value,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by.clone(),
    })
}

fn undeclared_key<S: KvSchema>(e: Error) -> Error {
    Error::backend(
        format!(
            "table `{}` holds a key this schema does not declare",
            S::TABLE
        ),
        e,
    )
}

fn unreadable<S: KvSchema>(key: &str, e: serde_json::Error) -> Error {
    Error::backend(
        format!(
            "the stored value of key {:?} in table `{}` does not match the schema",
            crate::error::shorten(key),
            S::TABLE
        ),
        e,
    )
}

/// Turns a stored row into a typed one.
pub(crate) fn decode_row<S: KvSchema>(raw: RawRow) -> Result<Row<S>> {
    let key = S::Key::parse_key(S::TABLE, &raw.key).map_err(|e| undeclared_key::<S>(e))?;
    let value: Arc<S> = raw
        .value
        .decode::<S>()
        .map_err(|e| unreadable::<S>(&raw.key, e))?;
    Ok(Row {
        key,
        value: Arc::unwrap_or_clone(value),
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by,
    })
}
