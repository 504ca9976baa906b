//! Following the change feed: the one follower behind watch streams and
//! replicas. It loads the watched key (or the whole table), then turns the
//! feed's changes into the keys' states, in commit order per key, ordering
//! them against its own reads; when the feed may have missed changes it
//! reloads, retrying with a backoff while the backend fails.
//!
//! # How the states stay right
//!
//! - The feed is subscribed *before* the first read, so no change
//!   committed after the read is missed. A change committed between the two
//!   may then arrive after the state that already includes it: changes
//!   whose row is not newer (`updated_at`) than the state delivered are
//!   skipped, so states never go backwards.
//! - A delete carries no version. When one arrives for a key whose row was
//!   just read (so it may predate that read), the key is read again and the
//!   state delivered is what is stored, never a stale "deleted". Likewise a
//!   row arriving for a key the last read found absent is checked against
//!   the store (it may have been written and deleted before that read).
//! - When the feed may have missed changes ([`FeedEvent::Resync`]: a lost
//!   PostgreSQL connection, or a consumer so slow that the channel
//!   overflowed), the key(s) are read again and delivered as resynced;
//!   intermediate states are then skipped, but the follower never stays on
//!   a stale final state.
//!
//! One race remains, at the start (or after a resync): a row written and
//! hard-deleted just before the read, whose key is written again just
//! after, may show up as a brief extra state; the state after it is the
//! stored one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::backend::feed::TryShared;
use crate::backend::{Change, FeedEvent, FeedReceiver, RawRow};
use crate::error::{Error, Result};
use crate::schema::{KvKey, KvSchema};
use crate::table::Table;

/// Rows read per page when a whole table is (re)loaded.
const LOAD_PAGE: usize = 500;
/// First and longest pause between attempts to reload after a failure.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The next pause after a failed attempt that waited `previous`.
fn backoff(previous: Duration) -> Duration {
    if previous.is_zero() {
        RETRY_MIN
    } else {
        (previous * 2).min(RETRY_MAX)
    }
}

/// What the follower reports.
#[derive(Debug)]
pub(crate) enum Event<S: KvSchema> {
    /// A key's state: its live row, or `None` when it has none.
    State {
        /// The key.
        key: S::Key,
        /// The live row, or `None`.
        row: Option<RawRow>,
        /// States between the previous one of this key and this one may
        /// have been skipped (a reload, or a re-read that found the row
        /// further on).
        resynced: bool,
    },
    /// The feed may have missed changes; a reload follows.
    Lost,
    /// A load finished: every key's state as read was reported.
    Loaded,
    /// A read failed; the follower goes on (a reload follows, with a
    /// backoff).
    Failed(Error),
}

/// Follows the feed for one key or a whole table.
pub(crate) struct Follower<S: KvSchema> {
    table: Table<S>,
    feed: FeedReceiver,
    /// The key of a single-key follower; `None` for a whole table.
    only: Option<S::Key>,
    keys: HashMap<Box<str>, KeyState>,
    /// The feed may have missed changes: reload before going on.
    resync: bool,
    /// Pause before the next reload attempt (zero: none failed).
    retry_in: Duration,
    closed: bool,
}

impl<S: KvSchema> Follower<S> {
    /// Subscribes to the feed, then loads `only` (or every live row of the
    /// table), pushing their states onto `out`. Fails when the load fails.
    pub(crate) async fn start(
        table: &Table<S>,
        only: Option<S::Key>,
        out: &mut Vec<Event<S>>,
    ) -> Result<Self> {
        // Subscribe first: a change committed after the load is then on
        // the feed.
        let mut follower = Follower {
            feed: table.store().backend().feed().subscribe(),
            table: table.clone(),
            only,
            keys: HashMap::new(),
            resync: false,
            retry_in: Duration::ZERO,
            closed: false,
        };
        follower.load(false, out).await?;
        Ok(follower)
    }

    /// Waits for the next events and pushes them onto `out`: at least one,
    /// and whatever else the feed holds already (up to `max` changes).
    /// Returns `false`, pushing nothing, once the feed is closed (its
    /// backend is gone) and everything was reported.
    pub(crate) async fn next(&mut self, max: usize, out: &mut Vec<Event<S>>) -> bool {
        let start = out.len();
        loop {
            if self.resync {
                if !self.retry_in.is_zero() {
                    tokio::time::sleep(self.retry_in).await;
                }
                if !self.feed.drain() {
                    self.closed = true;
                }
                match self.load(true, out).await {
                    Ok(()) => {
                        self.resync = false;
                        self.retry_in = Duration::ZERO;
                    }
                    Err(e) => {
                        self.retry_in = backoff(self.retry_in);
                        out.push(Event::Failed(e));
                    }
                }
                return true;
            }
            if self.closed {
                return out.len() > start;
            }
            match self.feed.recv_shared().await {
                Some(event) => self.on_event(&event, out).await,
                None => self.closed = true,
            }
            for _ in 1..max {
                if self.resync || self.closed {
                    break;
                }
                match self.feed.try_recv_shared() {
                    TryShared::Event(event) => self.on_event(&event, out).await,
                    TryShared::Empty => break,
                    TryShared::Closed => self.closed = true,
                }
            }
            if out.len() > start {
                return true;
            }
        }
    }

    /// Marks the feed as possibly lossy: a reload follows.
    fn lose(&mut self, out: &mut Vec<Event<S>>) {
        if !self.resync {
            self.resync = true;
            out.push(Event::Lost);
        }
    }

    /// Reads the followed key(s) and reports their states.
    async fn load(&mut self, resynced: bool, out: &mut Vec<Event<S>>) -> Result<()> {
        let backend = self.table.store().backend();
        match self.only.clone() {
            Some(key) => {
                let read = backend.get(S::TABLE, key.as_str()).await?;
                self.keys
                    .insert(key.as_str().into(), KeyState::from_read(read.as_ref()));
                let row = read.filter(RawRow::is_live);
                out.push(Event::State { key, row, resynced });
            }
            None => {
                let mut rows: Vec<RawRow> = Vec::new();
                loop {
                    let after = rows.last().map(|r| r.key.clone());
                    let page = backend.list(S::TABLE, after.as_deref(), LOAD_PAGE).await?;
                    let done = page.len() < LOAD_PAGE;
                    rows.extend(page);
                    if done {
                        break;
                    }
                }
                let present: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
                // Rows gone since they were reported.
                let mut gone: Vec<&Box<str>> = self
                    .keys
                    .iter()
                    .filter(|(k, s)| s.is_live() && !present.contains(&&***k))
                    .map(|(k, _)| k)
                    .collect();
                gone.sort();
                for text in gone {
                    if let Ok(key) = S::Key::parse_key(S::TABLE, text) {
                        out.push(Event::State {
                            key,
                            row: None,
                            resynced,
                        });
                    }
                }
                for state in self.keys.values_mut() {
                    state.read(None);
                }
                // Forget absent keys that hold nothing worth remembering
                // (keys with a known version floor stay).
                self.keys
                    .retain(|k, s| present.contains(&&**k) || s != &KeyState::from_read(None));
                for raw in rows {
                    // Rows of keys this schema does not declare are orphans
                    // of an older schema: not readable, so not followed.
                    let Ok(key) = S::Key::parse_key(S::TABLE, &raw.key) else {
                        continue;
                    };
                    self.keys
                        .entry(raw.key.as_str().into())
                        .or_default()
                        .read(Some(&raw));
                    out.push(Event::State {
                        key,
                        row: Some(raw),
                        resynced,
                    });
                }
            }
        }
        out.push(Event::Loaded);
        Ok(())
    }

    async fn on_event(&mut self, event: &FeedEvent, out: &mut Vec<Event<S>>) {
        match event {
            FeedEvent::Change(change) => self.on_change(change, out).await,
            FeedEvent::Resync => self.lose(out),
        }
    }

    /// Handles one change of the feed.
    /// Looks at the change by reference (it is shared with every other
    /// subscriber) and copies only the row it delivers.
    async fn on_change(&mut self, change: &Change, out: &mut Vec<Event<S>>) {
        if change.table != S::TABLE {
            return;
        }
        let key = match &self.only {
            Some(only) if only.as_str() == change.key => only.clone(),
            Some(_) => return,
            None => match S::Key::parse_key(S::TABLE, &change.key) {
                Ok(key) => key,
                Err(_) => return, // an undeclared key: not readable, not followed
            },
        };
        // A key never seen was absent from the last read.
        if !self.keys.contains_key(change.key.as_str()) {
            self.keys
                .insert(change.key.as_str().into(), KeyState::from_read(None));
        }
        let Some(state) = self.keys.get_mut(change.key.as_str()) else {
            return;
        };
        match state.judge(change.row.as_ref()) {
            Verdict::Skip => {}
            Verdict::Apply => {
                if change.row.is_none() && self.only.is_none() {
                    // A whole-table follower forgets deleted keys, so that
                    // its memory follows the table, not every key it ever
                    // held. Should the key come back, it is read once
                    // (the verdict for a key never seen), which is safe.
                    self.keys.remove(change.key.as_str());
                }
                out.push(Event::State {
                    key,
                    row: change.row.clone(),
                    resynced: false,
                });
            }
            Verdict::Reread => {
                let read = self
                    .table
                    .store()
                    .backend()
                    .get(S::TABLE, &change.key)
                    .await;
                match read {
                    Ok(read) => {
                        let state = self
                            .keys
                            .entry(change.key.as_str().into())
                            .or_insert_with(|| KeyState::from_read(None));
                        if let Some((row, skipped)) =
                            state.reread(change.row.as_ref(), read.as_ref())
                        {
                            out.push(Event::State {
                                key,
                                row: row.cloned(),
                                resynced: skipped,
                            });
                        }
                    }
                    Err(e) => {
                        // The key's state is unknown now: reload.
                        out.push(Event::Failed(e));
                        self.lose(out);
                    }
                }
            }
        }
    }
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

/// An optional version in 8 bytes (`Option<i64>` takes 16): a whole-table
/// follower keeps three per row. `i64::MIN` is never a version (versions
/// only grow from a clock's milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ver(i64);

impl Ver {
    const NONE: Ver = Ver(i64::MIN);

    fn of(version: Option<i64>) -> Ver {
        version.map_or(Ver::NONE, Ver)
    }

    fn get(self) -> Option<i64> {
        (self != Ver::NONE).then_some(self.0)
    }
}

impl Default for Ver {
    fn default() -> Self {
        Ver::NONE
    }
}

/// Per key: what a follower (watch or replica) delivered last, and what it
/// knows about versions, to order feed changes against its own reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyState {
    /// `updated_at` of the live row delivered last; none when the last
    /// state delivered was "no row".
    live: Ver,
    /// The highest `updated_at` known for the key (rows read, soft-deleted
    /// ones included, and rows from the feed).
    floor: Ver,
    /// `updated_at` of the row the last read found (live or soft-deleted).
    read_at: Ver,
    /// Set by each read; cleared by the first change provably committed
    /// after it. While set, a delete may predate the read.
    after_read: bool,
}

impl KeyState {
    /// The state after reading `read`: the stored row, live or
    /// soft-deleted, or `None` when no row exists.
    pub(crate) fn read(&mut self, read: Option<&RawRow>) {
        let version = read.map(|r| r.updated_at);
        self.live = Ver::of(read.filter(|r| r.is_live()).map(|r| r.updated_at));
        self.floor = Ver::of(self.floor.get().max(version));
        self.after_read = true;
        self.read_at = Ver::of(version);
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
        self.live.get().is_some()
    }

    /// Judges a feed change (`row`: the live row after it, or `None`), and
    /// records it as delivered when the verdict is [`Verdict::Apply`].
    pub(crate) fn judge(&mut self, row: Option<&RawRow>) -> Verdict {
        let (live, floor, read_at) = (self.live.get(), self.floor.get(), self.read_at.get());
        let verdict = match (row, live) {
            (Some(r), Some(live)) if r.updated_at > live => Verdict::Apply,
            (Some(_), Some(_)) => Verdict::Skip,
            // The last read found no row at all: this row may have been
            // written, then hard-deleted, before that read.
            (Some(_), None) if self.after_read && read_at.is_none() => Verdict::Reread,
            // After "no row", a version not above every known one may be
            // the row a delete already replaced (or a re-creation after a
            // hard delete that reused a version): ask the backend.
            (Some(r), None) if floor.is_some_and(|f| r.updated_at <= f) => Verdict::Reread,
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
            if read_at.is_none_or(|at| r.updated_at >= at) {
                self.after_read = false;
            }
        }
        if verdict == Verdict::Apply {
            let live = row.map(|r| r.updated_at);
            self.live = Ver::of(live);
            self.floor = Ver::of(floor.max(live));
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
            let absent_at_read = self.after_read && self.read_at.get().is_none();
            // The change is the stored row; or the last read found no row
            // and the row has only moved on since, so the change followed
            // that read and the later ones come after it, in order: deliver
            // it, not the row read, so that no state is skipped.
            if now.updated_at == ev.updated_at || (absent_at_read && now.updated_at > ev.updated_at)
            {
                self.live = Ver(ev.updated_at);
                self.floor = Ver::of(self.floor.get().max(Some(ev.updated_at)));
                self.after_read = false;
                return Some((Some(ev), false));
            }
        }
        let before = self.live.get();
        self.read(read);
        let now = read_live.map(|r| r.updated_at);
        if now == before {
            return None;
        }
        let agrees = event.map(|r| r.updated_at) == now;
        Some((read_live, !agrees))
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
