//! Reads of a log: one entry, and pages of a parent's entries in seq
//! order, forwards or backwards, with cursors.
//!
//! Cursor format: `e1.<hex of log name>.<hex of parent text>.<f|b><seq>`,
//! the last seq a page returned and its direction. Keyset pagination on the
//! numbers makes a cursor stay valid while entries are added or removed.

use std::borrow::Borrow;

use super::entry::{decode_with, LogPage, UnreadableEntry};
use super::{Log, LogEntry, LogSchema};
use crate::backend::EntryRange;
use crate::context::Ctx;
use crate::cursor::{hex, unhex};
use crate::error::{Error, FieldError, Result};
use crate::row::PageRequest;
use crate::telemetry;

const VERSION: &str = "e1";

fn encode_cursor(table: &str, parent: &str, backwards: bool, seq: u64) -> String {
    let dir = if backwards { 'b' } else { 'f' };
    format!(
        "{VERSION}.{}.{}.{dir}{seq}",
        hex(table.as_bytes()),
        hex(parent.as_bytes())
    )
}

/// The seq a cursor of `table`, `parent` and direction continues from.
fn decode_cursor(table: &'static str, parent: &str, backwards: bool, cursor: &str) -> Result<u64> {
    let bad = |reason: &str| Error::InvalidCursor {
        table,
        reason: reason.to_owned(),
    };
    if cursor.len() > 2 * 128 + 2 * 256 + 32 {
        return Err(bad("the cursor is too long"));
    }
    let mut parts = cursor.split('.');
    let (Some(version), Some(t), Some(p), Some(pos), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("the cursor is malformed"));
    };
    if version != VERSION {
        return Err(bad("the cursor is malformed or not a log's"));
    }
    if unhex(t).as_deref() != Some(table.as_bytes()) {
        return Err(bad("the cursor belongs to another log"));
    }
    if unhex(p).as_deref() != Some(parent.as_bytes()) {
        return Err(bad("the cursor belongs to another parent"));
    }
    let (forwards, seq) = match (pos.strip_prefix('f'), pos.strip_prefix('b')) {
        (Some(seq), _) => (true, seq),
        (_, Some(seq)) => (false, seq),
        _ => return Err(bad("the cursor is malformed")),
    };
    let seq: u64 = seq.parse().map_err(|_| bad("the cursor is malformed"))?;
    match (forwards, backwards) {
        (true, false) | (false, true) => Ok(seq),
        (true, true) => Err(bad(
            "the cursor is of `list`; pass it to `list`, not `list_backwards`",
        )),
        (false, false) => Err(bad(
            "the cursor is of `list_backwards`; pass it there, not to `list`",
        )),
    }
}

impl<L: LogSchema> Log<L> {
    /// The live entry `seq` of `parent`, or `None` (also for a deleted
    /// one). Requires the read role.
    pub async fn get(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        seq: u64,
    ) -> Result<Option<LogEntry<L>>> {
        let parent = parent.borrow();
        let shown = parent.to_string();
        let work = async {
            self.authorize_read(ctx, "get").await?;
            let text = Self::parent_text(parent)?;
            match self.store.backend.logs().get(L::TABLE, &text, seq).await? {
                Some(raw) if raw.is_live() => decode_with::<L>(&raw, parent.clone()).map(Some),
                _ => Ok(None),
            }
        };
        telemetry::measured(L::TABLE, "get", Some(&shown), work).await
    }

    /// One page of `parent`'s live entries, oldest first (ascending seq).
    /// Requires the read role.
    ///
    /// Deleted entries are skipped before paging, so a page is full unless
    /// it is the last one now. The page's `continue_cursor` picks up after
    /// its last entry, also once the end is reached: pass it again later
    /// to read what was appended since. A malformed cursor, or one of
    /// another log, parent or direction, is [`Error::InvalidCursor`].
    pub async fn list(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        request: PageRequest,
    ) -> Result<LogPage<L>> {
        self.page(ctx, parent.borrow(), request, false).await
    }

    /// One page of `parent`'s live entries, newest first (descending seq):
    /// the first page holds the latest entries, each next page older ones,
    /// down to the first entry (then `is_done`, and no cursor). Requires
    /// the read role.
    pub async fn list_backwards(
        &self,
        ctx: &Ctx,
        parent: impl Borrow<L::Parent>,
        request: PageRequest,
    ) -> Result<LogPage<L>> {
        self.page(ctx, parent.borrow(), request, true).await
    }

    async fn page(
        &self,
        ctx: &Ctx,
        parent: &L::Parent,
        request: PageRequest,
        backwards: bool,
    ) -> Result<LogPage<L>> {
        let shown = parent.to_string();
        let op = if backwards { "list_backwards" } else { "list" };
        let work = self.page_steps(ctx, parent, request, backwards);
        telemetry::measured(L::TABLE, op, Some(&shown), work).await
    }

    async fn page_steps(
        &self,
        ctx: &Ctx,
        parent: &L::Parent,
        request: PageRequest,
        backwards: bool,
    ) -> Result<LogPage<L>> {
        self.authorize_read(ctx, "list").await?;
        let text = Self::parent_text(parent)?;
        let limit = match request.num_items {
            0 => PageRequest::DEFAULT_ITEMS,
            n if n > PageRequest::MAX_ITEMS => {
                return Err(Error::ValidationFailed {
                    table: L::TABLE,
                    fields: vec![FieldError::new(
                        "num_items",
                        format!("at most {} entries per page", PageRequest::MAX_ITEMS),
                    )],
                })
            }
            n => n,
        };
        let mut from = match &request.cursor {
            Some(c) => Some(decode_cursor(L::TABLE, &text, backwards, c)?),
            None => None,
        };
        let logs = self.store.backend.logs();
        let mut entries = Vec::with_capacity(limit.min(64));
        let mut unreadable = Vec::new();
        let is_done = loop {
            let range = EntryRange {
                from,
                backwards,
                deleted: false,
            };
            let batch = logs.list(L::TABLE, &text, range, limit + 1).await?;
            let exhausted = batch.len() <= limit;
            let mut full_with_more = false;
            for raw in batch {
                if entries.len() == limit {
                    full_with_more = true;
                    break;
                }
                match decode_with::<L>(&raw, parent.clone()) {
                    Ok(entry) => entries.push(entry),
                    Err(Error::Unreadable {
                        version, reason, ..
                    }) => unreadable.push(UnreadableEntry {
                        seq: raw.seq,
                        version,
                        reason,
                    }),
                    Err(other) => return Err(other),
                }
                from = Some(raw.seq);
            }
            if full_with_more {
                break false;
            }
            if exhausted {
                break true;
            }
        };
        let continue_cursor = match (from, backwards, is_done) {
            (Some(seq), false, _) | (Some(seq), true, false) => {
                Some(encode_cursor(L::TABLE, &text, backwards, seq))
            }
            _ => None,
        };
        Ok(LogPage {
            entries,
            is_done,
            continue_cursor,
            unreadable,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn cursors_round_trip_and_refuse_others() {
        let c = encode_cursor("chat", "room 1", false, 42);
        assert_eq!(decode_cursor("chat", "room 1", false, &c).unwrap(), 42);
        let b = encode_cursor("chat", "room 1", true, 7);
        assert_eq!(decode_cursor("chat", "room 1", true, &b).unwrap(), 7);
        for (table, parent, backwards, cursor) in [
            ("chat", "room 1", true, c.clone()),
            ("chat", "room 2", false, c.clone()),
            ("other", "room 1", false, c.clone()),
            ("chat", "room 1", false, "garbage".to_owned()),
            ("chat", "room 1", false, c.replace(".f42", ".f")),
            ("chat", "room 1", false, c.replace(".f42", ".x42")),
            ("chat", "room 1", false, c.replace(".f42", ".f-1")),
            ("chat", "room 1", false, format!("{c}.more")),
            ("chat", "room 1", false, "e1.".repeat(500)),
            ("chat", "room 1", false, c.replace(".f42", ".é42")),
        ] {
            let err = decode_cursor(table, parent, backwards, &cursor).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidCursor, "{cursor}");
        }
    }
}
