//! Live reads: streams of a row's states ([`Table::watch`]) or of a whole
//! table's ([`Table::watch_table`]).
//!
//! A watch starts with the current state, then follows the backend's change
//! feed ([`Backend::subscribe`](crate::backend::Backend::subscribe)): every
//! committed change of the watched key(s), in commit order. A soft delete
//! shows as `row: None`, a restore as the row again.
//!
//! # How the stream stays right
//!
//! - The feed is subscribed *before* the current state is read, so no change
//!   committed after the read is missed. A change committed between the two
//!   may then arrive after the state that already includes it: feed changes
//!   whose row is not newer (`updated_at`) than the state delivered are
//!   skipped, so states never go backwards.
//! - A delete carries no version. When one arrives for a key whose row was
//!   just read (so it may predate that read), the key is read again and the
//!   stream delivers what is stored, never a stale "deleted". Likewise a row
//!   arriving for a key the last read found absent is checked against the
//!   store (it may have been written and deleted before that read).
//! - When the feed may have missed changes ([`FeedEvent::Resync`], e.g. a
//!   lost PostgreSQL connection, or a consumer so slow that the channel
//!   overflowed), the watched key(s) are read again and delivered with
//!   [`WatchEvent::resynced`] set; intermediate states are then skipped, but
//!   the stream never stays on a stale final state.
//! - Errors (a row that no longer matches the schema, a failed re-read) are
//!   `Err` items; the stream goes on after them. A failed re-read is retried
//!   with a backoff (100 ms doubling to 5 s), one `Err` per failed attempt,
//!   until the backend answers again.
//!
//! One race remains, at the start of a watch (or after a resync): a row
//! written and hard-deleted just before the read, whose key is written
//! again just after, may show up as a brief extra state; the state after it
//! is the stored one.
//!
//! Dropping a stream releases its feed receiver; nothing keeps running.
//! Streams read the backend with the Tokio runtime they are polled on (its
//! timer is used only to pace retries after failures).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use crate::backend::{Change, FeedEvent, RawRow, FEED_CAPACITY};
use crate::error::Result;
use crate::row::Row;
use crate::schema::{BoxFuture, KvKey, KvSchema};
use crate::table::{decode_row_ref, Table};

/// Rows read per page when a whole table is (re)loaded.
pub(crate) const LOAD_PAGE: usize = 500;
/// First and longest pause between attempts to re-read after a failure.
pub(crate) const RETRY_MIN: Duration = Duration::from_millis(100);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(5);

/// The next pause after a failed attempt that waited `previous`.
pub(crate) fn backoff(previous: Duration) -> Duration {
    if previous.is_zero() {
        RETRY_MIN
    } else {
        (previous * 2).min(RETRY_MAX)
    }
}

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

/// What to do with a change of the feed, given what a follower last
/// delivered for its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Deliver the change's state.
    Apply,
    /// Already delivered, or older than what was.
    Skip,
    /// Cannot tell whether the change predates the last read: read again.
    Reread,
}

/// Per key: what a follower (watch or replica) delivered last, and what it
/// knows about versions, to order feed changes against its own reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyState {
    /// `updated_at` of the live row delivered last; `None` when the last
    /// state delivered was "no row".
    live: Option<i64>,
    /// The highest `updated_at` known for the key (rows read, soft-deleted
    /// ones included, and rows from the feed).
    floor: Option<i64>,
    /// Set by each read; cleared by the first change provably committed
    /// after it. While set, a delete may predate the read.
    after_read: bool,
    /// `updated_at` of the row the last read found (live or soft-deleted).
    read_at: Option<i64>,
}

impl KeyState {
    /// The state after reading `read`: the stored row, live or
    /// soft-deleted, or `None` when no row exists.
    pub(crate) fn read(&mut self, read: Option<&RawRow>) {
        let version = read.map(|r| r.updated_at);
        self.live = read.filter(|r| r.is_live()).map(|r| r.updated_at);
        self.floor = self.floor.max(version);
        self.after_read = true;
        self.read_at = version;
    }

    /// A fresh state from a read. `from_read(None)` is also the state of a
    /// key a whole-table load did not find.
    pub(crate) fn from_read(read: Option<&RawRow>) -> Self {
        let mut state = KeyState::default();
        state.read(read);
        state
    }

    /// Whether the last delivered state is a live row.
    pub(crate) fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// Judges a feed change (`row`: the live row after it, or `None`), and
    /// records it as delivered when the verdict is [`Verdict::Apply`].
    pub(crate) fn judge(&mut self, row: Option<&RawRow>) -> Verdict {
        let verdict = match (row, self.live) {
            (Some(r), Some(live)) if r.updated_at > live => Verdict::Apply,
            (Some(_), Some(_)) => Verdict::Skip,
            // The last read found no row at all: this row may have been
            // written, then hard-deleted, before that read.
            (Some(_), None) if self.after_read && self.read_at.is_none() => Verdict::Reread,
            // After "no row", a version not above every known one may be
            // the row a delete already replaced (or a re-creation after a
            // hard delete that reused a version): ask the backend.
            (Some(r), None) if self.floor.is_some_and(|f| r.updated_at <= f) => Verdict::Reread,
            (Some(_), None) => Verdict::Apply,
            (None, None) => Verdict::Skip,
            // A delete right after a read may be older than the row read.
            (None, Some(_)) if self.after_read => Verdict::Reread,
            (None, Some(_)) => Verdict::Apply,
        };
        if verdict == Verdict::Reread {
            return verdict;
        }
        if let Some(r) = row {
            // This change is the row read, or newer: later ones follow the read.
            if self.read_at.is_none_or(|at| r.updated_at >= at) {
                self.after_read = false;
            }
        }
        if verdict == Verdict::Apply {
            self.live = row.map(|r| r.updated_at);
            self.floor = self.floor.max(self.live);
        }
        verdict
    }

    /// Records a re-read made for a change judged [`Verdict::Reread`]
    /// (`event`: the change's row; `read`: the stored row now, live or
    /// soft-deleted). Returns the state to deliver when it differs from the
    /// one delivered last: the live row or `None`, and whether states were
    /// skipped to get there (the change was overtaken).
    pub(crate) fn reread<'a>(
        &mut self,
        event: Option<&'a RawRow>,
        read: Option<&'a RawRow>,
    ) -> Option<(Option<&'a RawRow>, bool)> {
        let read_live = read.filter(|r| r.is_live());
        if let (Some(ev), Some(now)) = (event, read_live) {
            let absent_at_read = self.after_read && self.read_at.is_none();
            // The change is the stored row; or the last read found no row
            // and the row has only moved on since, so the change followed
            // that read and the later ones come after it, in order: deliver
            // it, not the row read, so that no state is skipped.
            if now.updated_at == ev.updated_at || (absent_at_read && now.updated_at > ev.updated_at)
            {
                self.live = Some(ev.updated_at);
                self.floor = self.floor.max(Some(ev.updated_at));
                self.after_read = false;
                return Some((Some(ev), false));
            }
        }
        let before = self.live;
        self.read(read);
        let now = read_live.map(|r| r.updated_at);
        if now == before {
            return None;
        }
        let agrees = event.map(|r| r.updated_at) == now;
        Some((read_live, !agrees))
    }
}

/// Reads every live row of table `S`, in key order, a page at a time.
pub(crate) async fn load_all<S: KvSchema>(table: &Table<S>) -> Result<Vec<RawRow>> {
    let backend = &table.store().backend;
    let mut rows: Vec<RawRow> = Vec::new();
    loop {
        let after = rows.last().map(|r| r.key.clone());
        let page = backend.list(S::TABLE, after.as_deref(), LOAD_PAGE).await?;
        let done = page.len() < LOAD_PAGE;
        rows.extend(page);
        if done {
            return Ok(rows);
        }
    }
}

/// Discards what the feed holds (a full re-read follows, which covers it).
/// Returns `false` when the feed is closed.
pub(crate) fn drain(feed: &mut Receiver<FeedEvent>) -> bool {
    // Bounded, in case writers keep the channel busy: whatever arrives
    // after the re-read starts is ordered against it anyway.
    for _ in 0..2 * FEED_CAPACITY {
        match feed.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Closed) => return false,
        }
    }
    true
}

type Item<S> = Result<WatchEvent<S>>;

/// The state of a watch between two items.
struct Engine<S: KvSchema> {
    table: Table<S>,
    feed: Receiver<FeedEvent>,
    /// The key of a single-key watch; `None` for a whole-table watch.
    only: Option<S::Key>,
    keys: HashMap<String, KeyState>,
    ready: VecDeque<Item<S>>,
    /// The feed may have missed changes: re-read before going on.
    resync: bool,
    /// Pause before the next re-read attempt (zero: none failed).
    retry_in: Duration,
    closed: bool,
}

fn event<S: KvSchema>(key: &S::Key, row: Option<&RawRow>, resynced: bool) -> Item<S> {
    let row = match row {
        Some(raw) => Some(decode_row_ref::<S>(raw, key.clone())?),
        None => None,
    };
    Ok(WatchEvent {
        key: key.clone(),
        row,
        resynced,
    })
}

impl<S: KvSchema> Engine<S> {
    fn new(table: &Table<S>, only: Option<S::Key>) -> Self {
        Engine {
            feed: table.store().backend.subscribe(),
            table: table.clone(),
            only,
            keys: HashMap::new(),
            ready: VecDeque::new(),
            resync: false,
            retry_in: Duration::ZERO,
            closed: false,
        }
    }

    /// Reads the watched key(s) and queues their states.
    async fn read_all(&mut self, resynced: bool) -> Result<()> {
        match self.only.clone() {
            Some(key) => {
                let read = self
                    .table
                    .store()
                    .backend
                    .get(S::TABLE, key.as_str())
                    .await?;
                self.keys
                    .insert(key.as_str().to_owned(), KeyState::from_read(read.as_ref()));
                let live = read.as_ref().filter(|r| r.is_live());
                self.ready.push_back(event(&key, live, resynced));
            }
            None => {
                let rows = load_all(&self.table).await?;
                let present: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
                // Rows gone since they were delivered.
                let mut gone: Vec<&String> = self
                    .keys
                    .iter()
                    .filter(|(k, s)| s.is_live() && !present.contains(k.as_str()))
                    .map(|(k, _)| k)
                    .collect();
                gone.sort();
                let mut events = Vec::new();
                for text in gone {
                    if let Ok(key) = S::Key::parse_key(S::TABLE, text) {
                        events.push(event(&key, None, resynced));
                    }
                }
                self.ready.extend(events);
                for state in self.keys.values_mut() {
                    state.read(None);
                }
                for raw in &rows {
                    // Rows of keys this schema does not declare are orphans
                    // of an older schema: not readable, so not watched.
                    let Ok(key) = S::Key::parse_key(S::TABLE, &raw.key) else {
                        continue;
                    };
                    self.keys
                        .entry(raw.key.clone())
                        .or_default()
                        .read(Some(raw));
                    self.ready.push_back(event(&key, Some(raw), resynced));
                }
            }
        }
        Ok(())
    }

    /// Handles one change of the feed.
    async fn on_change(&mut self, change: Change) {
        if change.table != S::TABLE {
            return;
        }
        let key = match &self.only {
            Some(only) if only.as_str() == change.key => only.clone(),
            Some(_) => return,
            None => match S::Key::parse_key(S::TABLE, &change.key) {
                Ok(key) => key,
                Err(_) => return, // an undeclared key: not readable, not watched
            },
        };
        // A key never seen was absent from the last read of the table.
        let state = self
            .keys
            .entry(change.key.clone())
            .or_insert_with(|| KeyState::from_read(None));
        match state.judge(change.row.as_ref()) {
            Verdict::Skip => {}
            Verdict::Apply => self
                .ready
                .push_back(event(&key, change.row.as_ref(), false)),
            Verdict::Reread => {
                let read = self.table.store().backend.get(S::TABLE, &change.key).await;
                match read {
                    Ok(read) => {
                        let state = self
                            .keys
                            .entry(change.key.clone())
                            .or_insert_with(|| KeyState::from_read(None));
                        if let Some((row, contradicts)) =
                            state.reread(change.row.as_ref(), read.as_ref())
                        {
                            self.ready.push_back(event(&key, row, contradicts));
                        }
                    }
                    Err(e) => {
                        // The key's state is unknown now: resynchronise.
                        self.ready.push_back(Err(e));
                        self.resync = true;
                    }
                }
            }
        }
    }

    /// Produces the next item, waiting for the feed as long as needed.
    /// `None` once the feed is closed (the backend is gone).
    async fn next_item(mut self: Box<Self>) -> (Option<Item<S>>, Box<Self>) {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return (Some(item), self);
            }
            if self.resync {
                if !self.retry_in.is_zero() {
                    tokio::time::sleep(self.retry_in).await;
                }
                if !drain(&mut self.feed) {
                    self.closed = true;
                }
                match self.read_all(true).await {
                    Ok(()) => {
                        self.resync = false;
                        self.retry_in = Duration::ZERO;
                    }
                    Err(e) => {
                        self.retry_in = backoff(self.retry_in);
                        return (Some(Err(e)), self);
                    }
                }
                continue;
            }
            if self.closed {
                return (None, self);
            }
            match self.feed.recv().await {
                Ok(FeedEvent::Change(change)) => self.on_change(change).await,
                Ok(FeedEvent::Resync) | Err(RecvError::Lagged(_)) => self.resync = true,
                Err(RecvError::Closed) => self.closed = true,
            }
        }
    }
}

type Step<S> = BoxFuture<'static, (Option<Item<S>>, Box<Engine<S>>)>;

/// Runs an [`Engine`] as a stream: idle between items, or computing the
/// next one.
enum Driver<S: KvSchema> {
    Idle(Box<Engine<S>>),
    Busy(Step<S>),
    Done,
}

impl<S: KvSchema> Driver<S> {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item<S>>> {
        loop {
            match std::mem::replace(self, Driver::Done) {
                Driver::Idle(mut engine) => {
                    if let Some(item) = engine.ready.pop_front() {
                        *self = Driver::Idle(engine);
                        return Poll::Ready(Some(item));
                    }
                    *self = Driver::Busy(Box::pin(engine.next_item()));
                }
                Driver::Busy(mut step) => match step.as_mut().poll(cx) {
                    Poll::Pending => {
                        *self = Driver::Busy(step);
                        return Poll::Pending;
                    }
                    Poll::Ready((item, engine)) => {
                        if item.is_some() {
                            *self = Driver::Idle(engine);
                        }
                        return Poll::Ready(item);
                    }
                },
                Driver::Done => return Poll::Ready(None),
            }
        }
    }
}

/// The states of one row: the current one first, then one per committed
/// change, in commit order. Made by [`Table::watch`].
///
/// A [`Stream`] of `Result<WatchEvent<S>>`, or call [`Watch::next`]. It ends
/// only when the backend's feed closes (the backend was dropped). Dropping
/// it stops everything it started. See the [module documentation](self)
/// for the guarantees.
pub struct Watch<S: KvSchema> {
    driver: Driver<S>,
}

impl<S: KvSchema> Watch<S> {
    /// The next state (waits for the next change of the row). `None` only
    /// when the feed is closed.
    pub async fn next(&mut self) -> Option<Result<WatchEvent<S>>> {
        std::future::poll_fn(|cx| self.driver.poll_next(cx)).await
    }
}

impl<S: KvSchema> Stream for Watch<S> {
    type Item = Result<WatchEvent<S>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().driver.poll_next(cx)
    }
}

impl<S: KvSchema> fmt::Debug for Watch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("table", &S::TABLE).finish()
    }
}

/// The states of every row of a table: one per live row first (in key
/// order), then one per committed change of any key, in commit order per
/// key. Made by [`Table::watch_table`].
///
/// A [`Stream`] of `Result<WatchEvent<S>>`, or call [`TableWatch::next`].
/// After a resynchronisation it delivers every live row again (and `None`
/// for rows gone meanwhile), flagged [`WatchEvent::resynced`]. Dropping it
/// stops everything it started.
pub struct TableWatch<S: KvSchema> {
    driver: Driver<S>,
}

impl<S: KvSchema> TableWatch<S> {
    /// The next state of some row. `None` only when the feed is closed.
    pub async fn next(&mut self) -> Option<Result<WatchEvent<S>>> {
        std::future::poll_fn(|cx| self.driver.poll_next(cx)).await
    }
}

impl<S: KvSchema> Stream for TableWatch<S> {
    type Item = Result<WatchEvent<S>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().driver.poll_next(cx)
    }
}

impl<S: KvSchema> fmt::Debug for TableWatch<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableWatch")
            .field("table", &S::TABLE)
            .finish()
    }
}

impl<S: KvSchema> Table<S> {
    /// Watches one row: a stream of its states, starting with the current
    /// one (`row: None` when there is no live row), then one per committed
    /// change in commit order. Public: needs no context.
    ///
    /// Fails when the current state cannot be read (or the key is not
    /// valid); a current row that cannot be decoded is an `Err` first item
    /// instead, and the stream goes on.
    ///
    /// ```no_run
    /// # use kv_runtime::{Kv, Store};
    /// # #[derive(Kv, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    /// # #[kv(keys = [banner])]
    /// # pub struct Site { pub message: String }
    /// # async fn demo(store: Store) -> kv_runtime::Result<()> {
    /// let mut banner = store.table::<Site>().watch(SiteKey::Banner).await?;
    /// while let Some(state) = banner.next().await {
    ///     match state?.row {
    ///         Some(row) => println!("banner: {}", row.value.message),
    ///         None => println!("no banner"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(
        &self,
        key: impl Borrow<S::Key>,
    ) -> impl Future<Output = Result<Watch<S>>> + Send + '_ {
        let key = key.borrow().clone();
        async move {
            key.check(S::TABLE)?;
            // Subscribe first: a change committed after the read below is
            // then on the feed.
            let mut engine = Box::new(Engine::new(self, Some(key)));
            engine.read_all(false).await?;
            Ok(Watch {
                driver: Driver::Idle(engine),
            })
        }
    }

    /// Watches every row of the table: first one state per live row (in key
    /// order), then one per committed change of any key. Public: needs no
    /// context. Rows whose key the schema no longer declares are skipped.
    ///
    /// Fails when the rows cannot be read; a row that cannot be decoded is
    /// an `Err` item instead, and the stream goes on.
    pub async fn watch_table(&self) -> Result<TableWatch<S>> {
        let mut engine = Box::new(Engine::new(self, None));
        engine.read_all(false).await?;
        Ok(TableWatch {
            driver: Driver::Idle(engine),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Payload;

    fn raw(updated_at: i64, deleted: bool) -> RawRow {
        RawRow {
            key: "k".into(),
            value: Payload::from_json("{}"),
            created_at: 1,
            updated_at,
            deleted_at: deleted.then_some(updated_at),
            updated_by: None,
        }
    }

    #[test]
    fn newer_rows_apply_older_ones_are_skipped() {
        let mut s = KeyState::from_read(Some(&raw(10, false)));
        assert_eq!(s.judge(Some(&raw(9, false))), Verdict::Skip);
        assert_eq!(s.judge(Some(&raw(10, false))), Verdict::Skip);
        assert_eq!(s.judge(Some(&raw(11, false))), Verdict::Apply);
        // Past the read: a delete is new.
        assert_eq!(s.judge(None), Verdict::Apply);
        assert_eq!(s.judge(None), Verdict::Skip);
        assert_eq!(s.judge(Some(&raw(12, false))), Verdict::Apply);
    }

    #[test]
    fn a_delete_right_after_a_read_is_checked() {
        let mut s = KeyState::from_read(Some(&raw(10, false)));
        assert_eq!(s.judge(None), Verdict::Reread);
        // Still the row read: the delete was older; nothing to deliver.
        assert_eq!(s.reread(None, Some(&raw(10, false))), None);
        // Really deleted now.
        let gone = raw(11, true);
        assert_eq!(s.judge(None), Verdict::Reread);
        assert_eq!(s.reread(None, Some(&gone)), Some((None, false)));
        // An old row after that is checked too, and skipped when stale.
        assert_eq!(s.judge(Some(&raw(10, false))), Verdict::Reread);
        assert_eq!(s.reread(Some(&raw(10, false)), Some(&gone)), None);
        // A newer row applies.
        assert_eq!(s.judge(Some(&raw(12, false))), Verdict::Apply);
    }

    #[test]
    fn a_reread_that_finds_a_newer_row_says_so() {
        let mut s = KeyState::from_read(Some(&raw(10, false)));
        assert_eq!(s.judge(None), Verdict::Reread);
        let newer = raw(12, false);
        assert_eq!(s.reread(None, Some(&newer)), Some((Some(&newer), true)));
        assert_eq!(s.judge(Some(&raw(12, false))), Verdict::Skip);
    }

    #[test]
    fn a_row_after_reading_no_row_is_checked() {
        let mut s = KeyState::from_read(None);
        assert_eq!(s.judge(None), Verdict::Skip);
        // Written and hard-deleted before the read: nothing to deliver.
        assert_eq!(s.judge(Some(&raw(5, false))), Verdict::Reread);
        assert_eq!(s.reread(Some(&raw(5, false)), None), None);
        // Written after the read: delivered, agreeing with the change.
        let six = raw(6, false);
        assert_eq!(s.judge(Some(&six)), Verdict::Reread);
        assert_eq!(s.reread(Some(&six), Some(&six)), Some((Some(&six), false)));
        assert_eq!(s.judge(Some(&raw(7, false))), Verdict::Apply);
        assert_eq!(s.judge(None), Verdict::Apply);
        assert_eq!(s.judge(Some(&raw(8, false))), Verdict::Apply);
    }

    #[test]
    fn after_reading_no_row_a_burst_is_delivered_whole() {
        let mut s = KeyState::from_read(None);
        let (five, nine) = (raw(5, false), raw(9, false));
        assert_eq!(s.judge(Some(&five)), Verdict::Reread);
        // The row moved on to 9 meanwhile: 5 is still delivered, then the rest.
        assert_eq!(
            s.reread(Some(&five), Some(&nine)),
            Some((Some(&five), false))
        );
        assert_eq!(s.judge(Some(&raw(7, false))), Verdict::Apply);
        assert_eq!(s.judge(None), Verdict::Apply);
        assert_eq!(s.judge(Some(&nine)), Verdict::Apply);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(Duration::ZERO), RETRY_MIN);
        assert_eq!(backoff(RETRY_MIN), RETRY_MIN * 2);
        assert_eq!(backoff(RETRY_MAX), RETRY_MAX);
    }
}
