//! Watch streams: a row's states ([`Table::watch`](crate::Table::watch)) or
//! every row's ([`Table::watch_table`](crate::Table::watch_table)).

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::Result;
use crate::follow::{Event, Follower};
use crate::row::Row;
use crate::schema::KvSchema;
use crate::table::codec;

/// One state of a watched row.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent<S: KvSchema> {
    /// The row's key.
    pub key: S::Key,
    /// The live row, or `None` when there is none (never written, deleted,
    /// soft-deleted).
    pub row: Option<Row<S>>,
    /// `true` when this state was read again after the change feed may have
    /// missed changes: states between the previous one and this may have
    /// been skipped.
    pub resynced: bool,
}

type Item<S> = Result<WatchEvent<S>>;

/// A stream of row states, made by [`Table::watch`](crate::Table::watch)
/// (one row: its current state first, then one per committed change, in
/// commit order) or [`Table::watch_table`](crate::Table::watch_table)
/// (every row: one state per live row first, in key order, then one per
/// committed change of any key, in commit order per key).
///
/// A [`Stream`] of `Result<WatchEvent<S>>`, or call [`Watch::next`].
///
/// - A soft delete shows as `row: None`, a restore as the row again.
/// - When the feed may have missed changes (a lost PostgreSQL connection,
///   a consumer so slow that the channel overflowed), the watched rows are
///   read again and delivered with [`WatchEvent::resynced`] set (for a
///   whole table: every live row, and `None` for rows gone meanwhile);
///   states in between may be skipped, but a watcher never stays on a
///   stale state.
/// - Errors (a row that no longer reads with the schema, a failed re-read,
///   retried with a backoff of 100 ms doubling to 5 s) are `Err` items; the
///   stream goes on after them.
/// - It ends only when the backend's feed closes (the backend was dropped).
///   Dropping it stops everything it started.
///
/// Streams read the backend with the Tokio runtime they are polled on (its
/// timer only paces retries after failures).
pub struct Watch<S: KvSchema> {
    inner: Pin<Box<dyn Stream<Item = Item<S>> + Send>>,
}

impl<S: KvSchema> Watch<S> {
    /// Starts following `only` (one key) or the whole table, with its
    /// current state first. Fails when the current state cannot be read.
    pub(crate) async fn start(table: &crate::Table<S>, only: Option<S::Key>) -> Result<Self> {
        let mut events = Vec::new();
        let follower = Follower::start(table, only, &mut events).await?;
        let mut ready = VecDeque::new();
        push_items(events, &mut ready);
        let state = (follower, ready, Vec::new());
        let stream = futures_util::stream::unfold(
            state,
            |(mut follower, mut ready, mut events)| async move {
                loop {
                    if let Some(item) = ready.pop_front() {
                        return Some((item, (follower, ready, events)));
                    }
                    if !follower.next(1, &mut events).await {
                        return None;
                    }
                    push_items(events.drain(..), &mut ready);
                }
            },
        );
        Ok(Watch {
            inner: Box::pin(stream),
        })
    }

    /// The next state. `None` only when the feed is closed.
    pub async fn next(&mut self) -> Option<Result<WatchEvent<S>>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }
}

/// Turns follower events into stream items (states decoded; failures as
/// `Err`).
fn push_items<S: KvSchema>(
    events: impl IntoIterator<Item = Event<S>>,
    ready: &mut VecDeque<Item<S>>,
) {
    for event in events {
        match event {
            Event::State { key, row, resynced } => {
                let row = row.map(|raw| codec::decode(&raw, key.clone())).transpose();
                ready.push_back(row.map(|row| WatchEvent { key, row, resynced }));
            }
            Event::Failed(e) => ready.push_back(Err(e)),
            Event::Lost | Event::Loaded => {}
        }
    }
}

impl<S: KvSchema> Stream for Watch<S> {
    type Item = Result<WatchEvent<S>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<S: KvSchema> fmt::Debug for Watch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("table", &S::TABLE).finish()
    }
}
