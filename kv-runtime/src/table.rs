//! Typed operations on one table.

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::backend::{Payload, Put, PutOutcome, RawRow, Remove, RestoreOutcome};
use crate::context::Ctx;
use crate::cursor;
use crate::error::{Error, FieldError, Result};
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
        let answered = self.store.backend.get_now(S::TABLE, key.as_str(), &mut |raw| {
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
        let mut raw = self
            .store
            .backend
            .list(S::TABLE, after.as_deref(), limit + 1)
            .await?;
        let is_done = raw.len() <= limit;
        raw.truncate(limit);
        let continue_cursor = if is_done {
            None
        } else {
            raw.last().map(|r| cursor::encode(S::TABLE, &r.key))
        };
        let mut page = Vec::with_capacity(raw.len());
        for row in raw {
            // Rows whose key is no longer declared in `keys = [...]` are
            // orphans of an older schema: not readable, so not listed.
            if S::Key::parse_key(S::TABLE, &row.key).is_err() {
                continue;
            }
            page.push(decode_row::<S>(row)?);
        }
        Ok(Page {
            page,
            is_done,
            continue_cursor,
        })
    }

    /// Stores `value` under `key` (insert or overwrite) and returns the row.
    /// Setting a soft-deleted key brings it back. Requires the write role.
    pub async fn set(&self, ctx: &Ctx, key: impl Borrow<S::Key>, value: S) -> Result<Row<S>> {
        self.write(ctx, key.borrow(), value, None).await
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
        self.write(ctx, key.borrow(), value, Some(expected_updated_at))
            .await
    }

    async fn write(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        value: S,
        expected_updated_at: Option<i64>,
    ) -> Result<Row<S>> {
        self.authorize(ctx, "set").await?;
        key.check(S::TABLE)?;
        let payload = encode_value(&value)?;
        let outcome = self
            .store
            .backend
            .put(
                S::TABLE,
                Put {
                    key: key.as_str(),
                    value: payload,
                    expected_updated_at,
                    updated_by: ctx.actor(),
                    now: self.store.now(),
                },
            )
            .await
            .map_err(|e| e.in_table(S::TABLE))?;
        match outcome {
            PutOutcome::Written { row: raw, .. } => Ok(Row {
                key: key.clone(),
                value,
                created_at: raw.created_at,
                updated_at: raw.updated_at,
                deleted_at: None,
                updated_by: raw.updated_by,
            }),
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
    /// write role.
    pub async fn rm(&self, ctx: &Ctx, key: impl Borrow<S::Key>) -> Result<bool> {
        self.authorize(ctx, "rm").await?;
        let key = key.borrow();
        key.check(S::TABLE)?;
        let removed = self
            .store
            .backend
            .remove(
                S::TABLE,
                Remove {
                    key: key.as_str(),
                    soft: S::SOFT_DELETE,
                    updated_by: ctx.actor(),
                    now: self.store.now(),
                },
            )
            .await?;
        Ok(removed.is_some())
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

fn undeclared_key<S: KvSchema>(e: Error) -> Error {
    Error::backend(
        format!("table `{}` holds a key this schema does not declare", S::TABLE),
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
    let value: Arc<S> = raw.value.decode::<S>().map_err(|e| unreadable::<S>(&raw.key, e))?;
    Ok(Row {
        key,
        value: Arc::unwrap_or_clone(value),
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by,
    })
}
