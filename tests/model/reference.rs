//! The reference model: what each operation must answer and do, written
//! from kv's documentation, not from its code.
//!
//! Sources, by rule:
//! - the order of the checks (FORBIDDEN, INVALID_KEY, VALIDATION_FAILED,
//!   RATE_LIMITED, the before-hooks, then CONFLICT / NOT_FOUND): "The order
//!   of the checks" in `kv-runtime/docs/operations.md`;
//! - versions: `updated_at = max(now, previous + 1)` on every mutation, and
//!   `max(now, floor + 1)` for a row created where none is stored, the
//!   floor being the highest `updated_at` hard-deleted or purged from the
//!   table (the guarantees of the `backend` module); a hard `rm` leaves no
//!   row, so bumps nothing;
//! - `created_at` is the first insert: kept when a soft-deleted row is set
//!   again (the row is revived, not created);
//! - `list`: live rows with keys after the cursor's in byte order; a page
//!   is full unless it is the last; `is_done` when no live row follows it;
//!   `num_items` 0 is 100, over 1000 is VALIDATION_FAILED (checked before
//!   the cursor);
//! - `purge(retention)`: removes rows with `deleted_at < now - retention`;
//!   a retention under 1 s or over 100 years is CONFIG; it also forgets
//!   the rate-limit counts of callers gone quiet;
//! - the rate limit: per caller (user id, else client address, else one
//!   anonymous bucket), `set` (all forms) and `rm`, internal callers exempt;
//!   admitted when fewer than `max` hits are counted after `now - window`;
//!   attempts are counted (a write refused later has used its slot);
//!   `retry_after` is the time until the oldest counted hit leaves the
//!   window, at least 1 ms.
//!
//! The documentation is silent on one thing, modelled as the
//! implementation documents it: after the clock steps back, which hits
//! that had already left the window are still counted. The `RateCounter`
//! implementations forget a hit once some call has seen it leave the
//! window (each at its own moments: a hit, a purge's sweep, a periodic
//! sweep), and hits later than `now` (written before the clock stepped
//! back) still count. So the model marks a hit "forgettable" once any rate
//! call of its table has seen it out of the window, and accepts either
//! answer when the decision depends on forgettable hits.

use std::collections::BTreeMap;

use kv_runtime::ErrorCode;

use super::ops::{Tbl, Val, Who};
use super::schema::{MAX_TEXT, MAX_VALUE_BYTES, NOTE_RATE, SEALED, UNSEAL};

/// The clock's start.
pub const T0: i64 = 1_700_000_000_000;
/// The longest purge retention accepted: 100 years of 365 days.
const CENTURY_MS: i64 = 100 * 365 * 24 * 3_600 * 1_000;

/// A row as the model (and the comparison) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MRow {
    pub key: String,
    pub text: String,
    pub note: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub updated_by: Option<String>,
}

impl MRow {
    fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// What an error carries that the model predicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Nothing checked beyond the code.
    None,
    /// CONFLICT: the live row's `updated_at`.
    Conflict(Option<i64>),
    /// RATE_LIMITED: `retry_after` in ms; `None` when the model cannot
    /// tell (it depends on forgettable hits).
    RetryAfter(Option<i64>),
    /// REJECTED: the hook's name.
    Hook(String),
}

/// An answer, normalized so that the model's and the store's compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A row (`set`, `restore`).
    Row(MRow),
    /// `get`.
    Got(Option<MRow>),
    /// `rm`.
    Removed(bool),
    /// `purge`: how many rows.
    Purged(usize),
    /// A `list` page.
    Page {
        rows: Vec<MRow>,
        is_done: bool,
        /// Whether a `continue_cursor` came (the cursor text is opaque).
        has_cursor: bool,
    },
    /// An error.
    Err(ErrorCode, Detail),
    /// Nothing (clock moves, hook registration).
    Unit,
}

impl Answer {
    /// Whether `observed` is an answer this expected one allows.
    pub fn admits(&self, observed: &Answer) -> bool {
        match (self, observed) {
            (
                Answer::Err(ErrorCode::RateLimited, Detail::RetryAfter(None)),
                Answer::Err(ErrorCode::RateLimited, Detail::RetryAfter(Some(ms))),
            ) => *ms >= 1,
            _ => self == observed,
        }
    }
}

/// A caller as the rules see it.
pub struct Caller {
    /// Passes the write role `admin`.
    pub may_write: bool,
    /// `updated_by` of its writes.
    pub actor: Option<String>,
    /// Its rate-limit bucket; `None` for internal callers (exempt).
    pub bucket: Option<String>,
}

impl Caller {
    pub fn of(who: Who) -> Caller {
        let c = |may_write: bool, actor: Option<&str>, bucket: Option<&str>| Caller {
            may_write,
            actor: actor.map(str::to_owned),
            bucket: bucket.map(str::to_owned),
        };
        match who {
            Who::Ada => c(true, Some("ada"), Some("user:ada")),
            Who::Bo => c(true, Some("bo"), Some("user:bo")),
            Who::Cy => c(false, Some("cy"), Some("user:cy")),
            Who::Anonymous => c(false, None, Some("anonymous")),
            Who::AnonymousAdmin => c(true, None, Some("anonymous")),
            Who::AddrAdmin => c(true, None, Some("addr:10.0.0.7")),
            Who::Internal => c(true, Some("internal"), None),
        }
    }
}

/// What a set expects of the live row.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    Any,
    Version(i64),
    NotLive,
}

/// One counted write.
#[derive(Clone, Copy, Debug)]
struct Hit {
    at: i64,
    /// Some rate call has seen it out of the window: the counter may have
    /// forgotten it.
    forgettable: bool,
}

#[derive(Default)]
struct TableState {
    rows: BTreeMap<String, MRow>,
    /// The highest `updated_at` hard-deleted or purged.
    floor: Option<i64>,
    /// Every version each key has had, oldest first (for stale picks).
    versions: BTreeMap<String, Vec<i64>>,
    /// Per rate bucket, the counted hits.
    hits: BTreeMap<String, Vec<Hit>>,
}

/// How the rate step went.
enum Rate {
    Admitted,
    Limited(Option<i64>),
}

/// The model of one store holding both tables.
pub struct Model {
    pub now: i64,
    pub hooks: bool,
    tables: BTreeMap<Tbl, TableState>,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

fn soft_delete(t: Tbl) -> bool {
    t == Tbl::Note
}

fn rate_limit(t: Tbl) -> Option<(u32, i64)> {
    (t == Tbl::Note).then_some(NOTE_RATE)
}

/// Whether free key text passes the key rules: non-empty, at most 256
/// bytes, no control characters.
pub fn valid_key(t: Tbl, key: &str) -> bool {
    match t {
        Tbl::Note => !key.is_empty() && key.len() <= 256 && !key.chars().any(char::is_control),
        Tbl::Flag => super::ops::FLAG_KEYS.contains(&key),
    }
}

/// Whether a value passes validation: the `text` constraint, no NUL, and
/// its JSON (`{"text":"…","note":"…"}`, NUL escaped as six bytes) within
/// the size limit.
pub fn valid_value(text: &str, note: &str) -> bool {
    let escaped = |s: &str| s.len() + 5 * s.matches('\0').count();
    let json = r#"{"text":"","note":""}"#.len() + escaped(text) + escaped(note);
    text.len() <= MAX_TEXT
        && !text.contains('\0')
        && !note.contains('\0')
        && json <= MAX_VALUE_BYTES
}

/// `before_set` of `schema::register_hooks`: the value to store, or the
/// name of the hook that refused.
fn before_set(previous: Option<&MRow>, text: &str, note: &str) -> Result<(String, String), String> {
    if text.starts_with('!') {
        return Err("no-bang".into());
    }
    let text = if text.ends_with('?') {
        text.repeat(2)
    } else {
        text.to_owned()
    };
    if previous.is_some_and(|p| p.note == SEALED) && note != UNSEAL {
        return Err("sealed".into());
    }
    Ok((text, note.to_owned()))
}

/// `before_rm` of `schema::register_hooks`.
fn before_rm(row: &MRow) -> Result<(), String> {
    if row.note == SEALED {
        return Err("keep-sealed".into());
    }
    Ok(())
}

fn err(code: ErrorCode) -> Answer {
    Answer::Err(code, Detail::None)
}

impl Model {
    pub fn new() -> Self {
        let mut tables = BTreeMap::new();
        tables.insert(Tbl::Note, TableState::default());
        tables.insert(Tbl::Flag, TableState::default());
        Model {
            now: T0,
            hooks: false,
            tables,
        }
    }

    fn table(&self, t: Tbl) -> &TableState {
        &self.tables[&t]
    }

    fn table_mut(&mut self, t: Tbl) -> &mut TableState {
        self.tables.get_mut(&t).expect("both tables exist")
    }

    /// The live row under `key`.
    pub fn live(&self, t: Tbl, key: &str) -> Option<&MRow> {
        self.table(t).rows.get(key).filter(|r| r.is_live())
    }

    /// Every version `key` has had, oldest first.
    pub fn versions(&self, t: Tbl, key: &str) -> &[i64] {
        self.table(t).versions.get(key).map_or(&[], Vec::as_slice)
    }

    /// The live rows of `t` in key order (byte order of the text).
    pub fn live_rows(&self, t: Tbl) -> Vec<MRow> {
        self.table(t)
            .rows
            .values()
            .filter(|r| r.is_live())
            .cloned()
            .collect()
    }

    /// Step 4 of a write: counts a hit of `bucket` against `t`'s limit.
    /// `observed_limited` says what the store answered, used only when the
    /// model cannot decide (forgettable hits).
    fn count(&mut self, t: Tbl, bucket: Option<&str>, observed_limited: bool) -> Rate {
        let (Some((max, window)), Some(bucket)) = (rate_limit(t), bucket) else {
            return Rate::Admitted;
        };
        let now = self.now;
        let start = now.saturating_sub(window);
        let state = self.table_mut(t);
        // This call sees every hit at or before `start` out of the window.
        for hits in state.hits.values_mut() {
            for hit in hits.iter_mut().filter(|h| h.at <= start) {
                hit.forgettable = true;
            }
        }
        let hits = state.hits.entry(bucket.to_owned()).or_default();
        let in_window: Vec<Hit> = hits.iter().copied().filter(|h| h.at > start).collect();
        let definite = in_window.iter().filter(|h| !h.forgettable).count();
        let possible = in_window.len();
        let max = max as usize;
        let limited = if possible < max {
            false
        } else if definite >= max {
            true
        } else {
            // Limited only if the counter still holds enough of the
            // forgettable hits: either answer is right.
            observed_limited
        };
        if limited {
            let exact = in_window.iter().all(|h| !h.forgettable);
            let retry = exact.then(|| {
                let oldest = in_window.iter().map(|h| h.at).min().unwrap_or(now);
                (oldest.saturating_add(window) - now).max(1)
            });
            return Rate::Limited(retry);
        }
        hits.push(Hit {
            at: now,
            forgettable: false,
        });
        Rate::Admitted
    }

    /// A purge's sweep: forgets buckets gone quiet.
    fn sweep(&mut self, t: Tbl) {
        let Some((_, window)) = rate_limit(t) else {
            return;
        };
        let start = self.now.saturating_sub(window);
        for hits in self.table_mut(t).hits.values_mut() {
            for hit in hits.iter_mut().filter(|h| h.at <= start) {
                hit.forgettable = true;
            }
        }
    }

    fn record_version(&mut self, t: Tbl, key: &str, version: i64) {
        self.table_mut(t)
            .versions
            .entry(key.to_owned())
            .or_default()
            .push(version);
    }

    /// `set` in its three forms. `observed` is the store's answer, used
    /// only where the model allows either of two answers.
    pub fn set(
        &mut self,
        t: Tbl,
        who: Who,
        key: &str,
        value: &Val,
        expect: Expect,
        observed: &Answer,
    ) -> Answer {
        let (text, note) = (value.text.as_str(), value.note.as_str());
        let caller = Caller::of(who);
        if !caller.may_write {
            return err(ErrorCode::Forbidden);
        }
        if !valid_key(t, key) {
            return err(ErrorCode::InvalidKey);
        }
        if !valid_value(text, note) {
            return err(ErrorCode::ValidationFailed);
        }
        if let Rate::Limited(retry) = self.count(t, caller.bucket.as_deref(), is_limited(observed))
        {
            return Answer::Err(ErrorCode::RateLimited, Detail::RetryAfter(retry));
        }
        let live = self.live(t, key).cloned();
        let (text, note) = if self.hooks {
            match before_set(live.as_ref(), text, note) {
                Ok((text, note)) if valid_value(&text, &note) => (text, note),
                Ok(_) => return err(ErrorCode::ValidationFailed),
                Err(hook) => return Answer::Err(ErrorCode::Rejected, Detail::Hook(hook)),
            }
        } else {
            (text.to_owned(), note.to_owned())
        };
        let live_version = live.as_ref().map(|r| r.updated_at);
        let admitted = match expect {
            Expect::Any => true,
            Expect::Version(v) => live_version == Some(v),
            Expect::NotLive => live_version.is_none(),
        };
        if !admitted {
            return Answer::Err(ErrorCode::Conflict, Detail::Conflict(live_version));
        }
        let now = self.now;
        let state = self.table_mut(t);
        let existing = state.rows.get(key);
        let row = MRow {
            key: key.to_owned(),
            text,
            note,
            created_at: existing.map_or(now, |r| r.created_at),
            updated_at: match existing {
                Some(r) => next_version(r.updated_at, now),
                None => state.floor.map_or(now, |f| next_version(f, now)),
            },
            deleted_at: None,
            updated_by: caller.actor,
        };
        state.rows.insert(key.to_owned(), row.clone());
        self.record_version(t, key, row.updated_at);
        Answer::Row(row)
    }

    /// `rm`.
    pub fn rm(&mut self, t: Tbl, who: Who, key: &str, observed: &Answer) -> Answer {
        let caller = Caller::of(who);
        if !caller.may_write {
            return err(ErrorCode::Forbidden);
        }
        if !valid_key(t, key) {
            return err(ErrorCode::InvalidKey);
        }
        if let Rate::Limited(retry) = self.count(t, caller.bucket.as_deref(), is_limited(observed))
        {
            return Answer::Err(ErrorCode::RateLimited, Detail::RetryAfter(retry));
        }
        let Some(live) = self.live(t, key).cloned() else {
            return Answer::Removed(false);
        };
        if self.hooks {
            if let Err(hook) = before_rm(&live) {
                return Answer::Err(ErrorCode::Rejected, Detail::Hook(hook));
            }
        }
        let now = self.now;
        if soft_delete(t) {
            let version = next_version(live.updated_at, now);
            let state = self.table_mut(t);
            let row = state.rows.get_mut(key).expect("live row");
            row.deleted_at = Some(now);
            row.updated_at = version;
            row.updated_by = caller.actor;
            self.record_version(t, key, version);
        } else {
            let state = self.table_mut(t);
            state.rows.remove(key);
            state.floor = Some(
                state
                    .floor
                    .map_or(live.updated_at, |f| f.max(live.updated_at)),
            );
        }
        Answer::Removed(true)
    }

    /// `restore` (soft-delete tables).
    pub fn restore(&mut self, t: Tbl, who: Who, key: &str) -> Answer {
        let caller = Caller::of(who);
        if !caller.may_write {
            return err(ErrorCode::Forbidden);
        }
        if !valid_key(t, key) {
            return err(ErrorCode::InvalidKey);
        }
        let now = self.now;
        let Some(row) = self.table_mut(t).rows.get_mut(key) else {
            return err(ErrorCode::NotFound);
        };
        if row.is_live() {
            return Answer::Row(row.clone());
        }
        row.deleted_at = None;
        row.updated_at = next_version(row.updated_at, now);
        row.updated_by = caller.actor;
        let row = row.clone();
        self.record_version(t, key, row.updated_at);
        Answer::Row(row)
    }

    /// `purge(retention)`.
    pub fn purge(&mut self, t: Tbl, retention_ms: i64) -> Answer {
        if !(1_000..=CENTURY_MS).contains(&retention_ms) {
            return err(ErrorCode::Config);
        }
        let cutoff = self.now.saturating_sub(retention_ms);
        let state = self.table_mut(t);
        let doomed: Vec<String> = state
            .rows
            .values()
            .filter(|r| r.deleted_at.is_some_and(|at| at < cutoff))
            .map(|r| r.key.clone())
            .collect();
        for key in &doomed {
            let row = state.rows.remove(key).expect("doomed row");
            state.floor = Some(
                state
                    .floor
                    .map_or(row.updated_at, |f| f.max(row.updated_at)),
            );
        }
        self.sweep(t);
        Answer::Purged(doomed.len())
    }

    /// `get_str`.
    pub fn get(&self, t: Tbl, key: &str) -> Answer {
        if !valid_key(t, key) {
            return err(ErrorCode::InvalidKey);
        }
        Answer::Got(self.live(t, key).cloned())
    }

    /// `list`: `after` is the key the cursor continues after (`None` for
    /// the first page); `foreign` a cursor of the other table; `garbage`
    /// text that is no cursor.
    pub fn list(
        &self,
        t: Tbl,
        who: Who,
        num_items: usize,
        cursor: ListCursor<'_>,
    ) -> (Answer, Option<String>) {
        if !Caller::of(who).may_write {
            return (err(ErrorCode::Forbidden), None);
        }
        let limit = match num_items {
            0 => 100,
            n if n > 1_000 => return (err(ErrorCode::ValidationFailed), None),
            n => n,
        };
        let after = match cursor {
            ListCursor::First => None,
            ListCursor::After(key) => Some(key),
            ListCursor::Invalid => return (err(ErrorCode::InvalidCursor), None),
        };
        let rest: Vec<MRow> = self
            .live_rows(t)
            .into_iter()
            .filter(|r| after.is_none_or(|a| r.key.as_str() > a))
            .collect();
        let is_done = rest.len() <= limit;
        let rows: Vec<MRow> = rest.into_iter().take(limit).collect();
        let next = if is_done {
            None
        } else {
            rows.last().map(|r| r.key.clone())
        };
        let answer = Answer::Page {
            rows,
            is_done,
            has_cursor: next.is_some(),
        };
        (answer, next)
    }
}

/// The cursor of a model `list`.
pub enum ListCursor<'a> {
    First,
    After(&'a str),
    Invalid,
}

/// `max(now, previous + 1)`.
fn next_version(previous: i64, now: i64) -> i64 {
    now.max(previous.saturating_add(1))
}

fn is_limited(observed: &Answer) -> bool {
    matches!(observed, Answer::Err(ErrorCode::RateLimited, _))
}
