//! Following a parent's entries live: [`Log::tail`] and [`Log::tail_after`].
//!
//! A tail follows the backend's change feed (in process for the memory and
//! SQLite backends, across processes for PostgreSQL) and keeps one number:
//! the next seq it has not delivered. It subscribes to the feed before it
//! reads, so no append is missed:
//!
//! - an append numbered exactly the next one is delivered from the feed;
//!   one numbered lower was delivered already (or read) and is skipped;
//! - one numbered higher means entries in between have not come through
//!   the feed (they were committed between the subscription and the read,
//!   or removed since): the tail reads them from the backend, in seq order,
//!   and goes on after them;
//! - deletes and restores of entries below the next number are delivered
//!   as they come; above it, they make the tail read ahead the same way.
//!
//! **Resync.** When the feed may have missed changes (a lost PostgreSQL
//! connection, or a consumer so slow that the feed's buffer overflowed),
//! the tail delivers [`TailEvent::Resynced`], then reads every entry after
//! the last one it delivered from the backend and delivers those (as
//! [`TailEvent::Appended`]), then follows the feed again. No entry is lost
//! or delivered twice across a resync; deletes and restores of entries
//! delivered before it may have been missed, so a consumer that shows older
//! entries reads them again on `Resynced`. A read that fails is an `Err`
//! item, retried with a backoff (100 ms doubling to 5 s).

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::entry::decode_with;
use super::{Log, LogEntry, LogSchema};
use crate::backend::{EntryChange, EntryOp, EntryRange, FeedEvent, FeedReceiver, RawEntry};
use crate::context::Ctx;
use crate::error::Result;

/// Entries read per page when a tail catches up.
const CATCH_UP_PAGE: usize = 256;

/// What a [`Tail`] delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum TailEvent<L: LogSchema> {
    /// A new entry. Entries come in seq order, each once (deleted ones are
    /// skipped).
    Appended(LogEntry<L>),
    /// Entry `seq`, older than the next new one, was deleted: `entry` is it
    /// marked deleted (soft delete), or `None` when it was removed. It may
    /// be an entry this tail did not deliver (one from before it started).
    Removed {
        /// The entry's number.
        seq: u64,
        /// The entry as now stored, or `None`.
        entry: Option<LogEntry<L>>,
    },
    /// An older entry was restored.
    Restored(LogEntry<L>),
    /// The feed may have missed changes: entries appended meanwhile follow
    /// as `Appended`, but deletes and restores of older entries may have
    /// been missed. Read again what you show.
    Resynced,
}

type Item<L> = Result<TailEvent<L>>;

/// A stream of a parent's new entries (and changes to older ones), made by
/// [`Log::tail`] or [`Log::tail_after`]. A [`Stream`] of
/// `Result<TailEvent<L>>`, or call [`Tail::next`]. It ends only when the
/// backend's feed closes; dropping it stops everything it started. See the
/// [module documentation](self) for how it stays complete.
pub struct Tail<L: LogSchema> {
    inner: Pin<Box<dyn Stream<Item = Item<L>> + Send>>,
}

impl<L: LogSchema> fmt::Debug for Tail<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tail").field("log", &L::TABLE).finish()
    }
}

impl<L: LogSchema> Tail<L> {
    /// The next event. `None` only when the feed is closed.
    pub async fn next(&mut self) -> Option<Item<L>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx)).await
    }
}

impl<L: LogSchema> Stream for Tail<L> {
    type Item = Item<L>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<L: LogSchema> Log<L> {
    /// Follows `parent` from now on: every entry appended after this call,
    /// in seq order, and deletes and restores of older entries. Requires
    /// the read role (checked once, here).
    pub async fn tail(
        &self,
        ctx: &Ctx,
        parent: impl std::borrow::Borrow<L::Parent>,
    ) -> Result<Tail<L>> {
        self.start_tail(ctx, parent.borrow(), None).await
    }

    /// Follows `parent` from after entry `seq`: first the live entries
    /// numbered above it (read from the backend), then as [`Log::tail`]. A
    /// client that reconnects passes the last seq it saw, and misses
    /// nothing. Requires the read role.
    pub async fn tail_after(
        &self,
        ctx: &Ctx,
        parent: impl std::borrow::Borrow<L::Parent>,
        seq: u64,
    ) -> Result<Tail<L>> {
        self.start_tail(ctx, parent.borrow(), Some(seq)).await
    }

    async fn start_tail(
        &self,
        ctx: &Ctx,
        parent: &L::Parent,
        after: Option<u64>,
    ) -> Result<Tail<L>> {
        self.authorize_read(ctx, "tail").await?;
        let text = Self::parent_text(parent)?;
        // Subscribe first: an append committed after the read is then on
        // the feed.
        let feed = self.store.backend.feed().subscribe();
        let mut follower = Follower {
            log: self.clone(),
            feed,
            parent: parent.clone(),
            text,
            next: 1,
            resync: false,
            retry_in: Duration::ZERO,
            closed: false,
        };
        let mut ready = VecDeque::new();
        match after {
            Some(seq) => {
                follower.next = seq.saturating_add(1);
                follower.catch_up(&mut ready).await?;
            }
            None => {
                let last = self
                    .store
                    .backend
                    .logs()
                    .list(
                        L::TABLE,
                        &follower.text,
                        EntryRange {
                            from: None,
                            backwards: true,
                            deleted: true,
                        },
                        1,
                    )
                    .await?;
                follower.next = last.first().map_or(1, |e| e.seq + 1);
            }
        }
        let stream = futures_util::stream::unfold(
            (follower, ready),
            |(mut follower, mut ready)| async move {
                loop {
                    if let Some(item) = ready.pop_front() {
                        return Some((item, (follower, ready)));
                    }
                    if !follower.next_events(&mut ready).await {
                        return None;
                    }
                }
            },
        );
        Ok(Tail {
            inner: Box::pin(stream),
        })
    }
}

struct Follower<L: LogSchema> {
    log: Log<L>,
    feed: FeedReceiver,
    parent: L::Parent,
    text: String,
    /// The lowest seq not delivered yet.
    next: u64,
    /// The feed may have missed changes: catch up before going on.
    resync: bool,
    /// Pause before the next catch-up attempt (zero: none failed).
    retry_in: Duration,
    closed: bool,
}

impl<L: LogSchema> Follower<L> {
    fn decode(&self, raw: &RawEntry) -> Result<LogEntry<L>> {
        decode_with::<L>(raw, self.parent.clone())
    }

    /// Reads the entries from `next` on and delivers the live ones.
    async fn catch_up(&mut self, out: &mut VecDeque<Item<L>>) -> Result<()> {
        let logs = self.log.store.backend.logs();
        loop {
            let range = EntryRange {
                from: self.next.checked_sub(1).filter(|&s| s > 0),
                backwards: false,
                deleted: true,
            };
            let page = logs
                .list(L::TABLE, &self.text, range, CATCH_UP_PAGE)
                .await?;
            let done = page.len() < CATCH_UP_PAGE;
            for raw in page {
                if raw.seq < self.next {
                    continue;
                }
                self.next = raw.seq + 1;
                if raw.is_live() {
                    out.push_back(self.decode(&raw).map(TailEvent::Appended));
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Waits for the next events and queues them; `false` once the feed is
    /// closed and everything was delivered.
    async fn next_events(&mut self, out: &mut VecDeque<Item<L>>) -> bool {
        loop {
            if self.resync {
                if !self.retry_in.is_zero() {
                    tokio::time::sleep(self.retry_in).await;
                } else {
                    out.push_back(Ok(TailEvent::Resynced));
                }
                if !self.feed.drain() {
                    self.closed = true;
                }
                match self.catch_up(out).await {
                    Ok(()) => {
                        self.resync = false;
                        self.retry_in = Duration::ZERO;
                    }
                    Err(e) => {
                        self.retry_in = crate::follow::backoff(self.retry_in);
                        out.push_back(Err(e));
                    }
                }
                return true;
            }
            if self.closed {
                return !out.is_empty();
            }
            match self.feed.recv().await {
                Some(FeedEvent::Resync) => self.resync = true,
                Some(FeedEvent::Entry(change))
                    if change.table == L::TABLE && change.parent == self.text =>
                {
                    self.on_change(change, out).await;
                }
                Some(_) => {}
                None => self.closed = true,
            }
            if !out.is_empty() {
                return true;
            }
        }
    }

    async fn on_change(&mut self, change: EntryChange, out: &mut VecDeque<Item<L>>) {
        let seq = change.seq;
        if seq >= self.next {
            if change.op == EntryOp::Append && seq == self.next {
                self.next = seq + 1;
                if let Some(raw) = change.entry.as_ref().filter(|e| e.is_live()) {
                    out.push_back(self.decode(raw).map(TailEvent::Appended));
                }
                return;
            }
            // Entries before it have not come through the feed: read them.
            if let Err(e) = self.catch_up(out).await {
                out.push_back(Err(e));
                self.resync = true;
            }
            return;
        }
        match change.op {
            // Delivered already (or read before the tail started).
            EntryOp::Append => {}
            EntryOp::Rm => {
                let entry = change
                    .entry
                    .as_ref()
                    .map(|raw| self.decode(raw))
                    .transpose();
                out.push_back(entry.map(|entry| TailEvent::Removed { seq, entry }));
            }
            EntryOp::Restore => {
                if let Some(raw) = &change.entry {
                    out.push_back(self.decode(raw).map(TailEvent::Restored));
                }
            }
        }
    }
}
