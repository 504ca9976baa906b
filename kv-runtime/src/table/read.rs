//! Reads: `get` (public) and `list` (write role).

use std::borrow::Borrow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::codec::{self, Decoded};
use super::Table;
use crate::backend::ReadNow;
use crate::context::Ctx;
use crate::cursor;
use crate::error::{Error, FieldError, Result};
use crate::row::{Page, PageRequest, Row, UnreadableRow};
use crate::schema::{BoxFuture, KvKey, KvSchema};
use crate::telemetry;

impl<S: KvSchema> Table<S> {
    /// The live row with `key`, or `None` (also for soft-deleted rows).
    /// Public: needs no context.
    ///
    /// On a backend that holds rows in memory the answer is ready at once:
    /// the returned future completes on its first poll.
    #[inline]
    pub fn get(
        &self,
        key: impl Borrow<S::Key>,
    ) -> impl Future<Output = Result<Option<Row<S>>>> + Send + '_ {
        let key = key.borrow();
        if let Err(e) = key.check(S::TABLE) {
            let answer = Err(e);
            telemetry::count_get(S::TABLE, &answer);
            return ReadFuture::Ready(Some(answer));
        }
        match self.read_now(key) {
            Some(answer) => {
                telemetry::count_get(S::TABLE, &answer);
                ReadFuture::Ready(Some(answer))
            }
            None => {
                let key = key.clone();
                ReadFuture::Waiting(Box::pin(async move {
                    let answer = self.read_io(key).await;
                    telemetry::count_get(S::TABLE, &answer);
                    answer
                }))
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
    #[inline]
    fn read_now(&self, key: &S::Key) -> Option<Result<Option<Row<S>>>> {
        let mut answer = None;
        let answered = self
            .store
            .backend
            .get_now(S::TABLE, key.as_str(), &mut |raw| {
                answer = Some(match raw {
                    Some(raw) if raw.is_live() => codec::decode(raw, key.clone()).map(Some),
                    _ => Ok(None),
                });
            });
        match answered {
            ReadNow::Answered => Some(answer.unwrap_or(Ok(None))),
            ReadNow::NeedsIo => None,
        }
    }

    async fn read_io(&self, key: S::Key) -> Result<Option<Row<S>>> {
        match self.store.backend.get(S::TABLE, key.as_str()).await? {
            Some(raw) if raw.is_live() => codec::decode(&raw, key).map(Some),
            _ => Ok(None),
        }
    }

    /// One page of live rows in key order. Requires the write role.
    ///
    /// Soft-deleted rows are skipped before paging, so a page is full unless
    /// it is the last. A malformed cursor, or one from another table, is
    /// [`Error::InvalidCursor`].
    pub async fn list(&self, ctx: &Ctx, request: PageRequest) -> Result<Page<S>> {
        telemetry::measured(S::TABLE, "list", None, self.list_page(ctx, request)).await
    }

    async fn list_page(&self, ctx: &Ctx, request: PageRequest) -> Result<Page<S>> {
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
        let mut after = match &request.cursor {
            Some(c) => Some(cursor::decode(S::TABLE, c)?),
            None => None,
        };
        // Rows whose key is no longer declared in `keys = [...]` are orphans
        // of an older schema: not readable, so skipped, and more rows are
        // fetched so that the page is still full unless it is the last.
        let mut page: Vec<Row<S>> = Vec::new();
        let mut unreadable = Vec::new();
        let is_done = loop {
            let batch = self
                .store
                .backend
                .list(S::TABLE, after.as_deref(), limit + 1)
                .await?;
            let exhausted = batch.len() <= limit;
            let mut full_with_more = false;
            page.reserve(batch.len().min(limit - page.len()));
            // The key text of the last row looked at when it is not in the
            // page (an orphan or unreadable); `None` when it is the page's
            // last row.
            let mut last: Option<Option<String>> = None;
            for row in batch {
                if page.len() == limit {
                    full_with_more = true;
                    break;
                }
                match codec::decode_owned::<S>(row) {
                    Decoded::Row(row) => {
                        page.push(row);
                        last = Some(None);
                    }
                    Decoded::Orphan(key) => last = Some(Some(key)),
                    Decoded::Unreadable(
                        key,
                        Error::Unreadable {
                            version, reason, ..
                        },
                    ) => {
                        unreadable.push(UnreadableRow {
                            key: key.clone(),
                            version,
                            reason,
                        });
                        last = Some(Some(key));
                    }
                    Decoded::Unreadable(_, other) => return Err(other),
                }
            }
            match last {
                Some(Some(skipped)) => after = Some(skipped),
                Some(None) => after = page.last().map(|r| r.key.as_str().to_owned()),
                None => {}
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
            unreadable,
        })
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

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.get_mut() {
            ReadFuture::Ready(value) => {
                // An answer that was ready at once still counts against the
                // task's Tokio budget, so that a loop of such reads yields
                // to other tasks now and then (as one that waited would).
                let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                coop.made_progress();
                match value.take() {
                    Some(v) => Poll::Ready(v),
                    None => panic!("a kv read future was polled after it completed"),
                }
            }
            ReadFuture::Waiting(fut) => fut.as_mut().poll(cx),
        }
    }
}
