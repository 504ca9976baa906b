//! Typed log entries and pages, and decoding stored entries into them.

use std::sync::Arc;

use serde::ser::SerializeStruct;
use serde::Serialize;

use super::LogSchema;
use crate::backend::RawEntry;
use crate::error::Result;
use crate::table::codec;

/// A stored log entry: its parent, its number, the value and bookkeeping
/// fields. Times are milliseconds since the Unix epoch.
///
/// Serializes as `{ parent, seq, value, created_at, author, deleted_at }`
/// with the parent as its text.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry<L: LogSchema> {
    /// The parent it belongs to.
    pub parent: L::Parent,
    /// Its number within the parent: 1, 2, 3, ... in append order, never
    /// reused.
    pub seq: u64,
    /// The value.
    pub value: L,
    /// When it was appended.
    pub created_at: i64,
    /// Who appended it: the user id, `"internal"` for server calls, `None`
    /// for anonymous callers.
    pub author: Option<Arc<str>>,
    /// When it was soft-deleted; `None` for live entries.
    pub deleted_at: Option<i64>,
}

impl<L: LogSchema> Serialize for LogEntry<L> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LogEntry", 6)?;
        s.serialize_field("parent", &self.parent.to_string())?;
        s.serialize_field("seq", &self.seq)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("created_at", &self.created_at)?;
        s.serialize_field("author", &self.author)?;
        s.serialize_field("deleted_at", &self.deleted_at)?;
        s.end()
    }
}

/// One page of live entries of a parent, from
/// [`Log::list`](crate::Log::list) (oldest first) or
/// [`Log::list_backwards`](crate::Log::list_backwards) (newest first).
#[derive(Clone, Debug, PartialEq)]
pub struct LogPage<L: LogSchema> {
    /// The entries, in the order of the call. Full unless `is_done`.
    pub entries: Vec<LogEntry<L>>,
    /// Whether no entry follows this page now. Going forwards, later
    /// appends may still come: `continue_cursor` picks them up.
    pub is_done: bool,
    /// Pass to [`PageRequest::after`](crate::PageRequest::after) for the
    /// next page. Going forwards it is there even when `is_done` (unless
    /// the log has no entry yet), so that a reader can ask again later for
    /// what was appended since; going backwards it is `None` once the first
    /// entry was reached. Cursors stay valid while entries are added and
    /// removed.
    pub continue_cursor: Option<String>,
    /// Entries in this page's range this program cannot read, reported
    /// here instead of failing the page, and not counted in it.
    pub unreadable: Vec<UnreadableEntry>,
}

/// An entry a page could not read: see [`LogPage::unreadable`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnreadableEntry {
    /// Its number.
    pub seq: u64,
    /// The schema version that wrote it.
    pub version: u32,
    /// Why it cannot be read.
    pub reason: String,
}

/// The key an entry is named by in messages: `parent#seq`.
pub(super) fn entry_name(parent: &str, seq: u64) -> String {
    format!("{parent}#{seq}")
}

/// Decodes a stored entry whose parent is known.
pub(super) fn decode_with<L: LogSchema>(raw: &RawEntry, parent: L::Parent) -> Result<LogEntry<L>> {
    let name = format_args!("{}#{}", raw.parent, raw.seq);
    let value = codec::decode_value::<L>(L::TABLE, name, &raw.value)?;
    Ok(LogEntry {
        parent,
        seq: raw.seq,
        value,
        created_at: raw.created_at,
        author: raw.author.clone(),
        deleted_at: raw.deleted_at,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::{Deserialize, Serialize};

    use super::decode_with;
    use crate::backend::{Payload, RawEntry};
    use crate::error::Error;

    #[derive(crate::Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[log(table = "unitChat")]
    struct Line {
        text: String,
    }

    fn raw(json: &str) -> RawEntry {
        RawEntry {
            parent: "lobby".to_owned(),
            seq: 3,
            value: Payload::from_json(json.to_owned()),
            created_at: 1,
            author: Some(Arc::from("ada")),
            deleted_at: None,
        }
    }

    #[test]
    fn an_entry_decodes_and_an_unreadable_one_is_named_parent_hash_seq() {
        let entry = decode_with::<Line>(&raw(r#"{"text":"hi"}"#), "lobby".to_owned()).unwrap();
        assert_eq!((entry.seq, entry.value.text.as_str()), (3, "hi"));
        assert_eq!(entry.author.as_deref(), Some("ada"));
        match decode_with::<Line>(&raw(r#"{"text":7}"#), "lobby".to_owned()) {
            Err(Error::Unreadable { table, key, .. }) => {
                assert_eq!((table, key.as_str()), ("unitChat", "lobby#3"));
            }
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }
}
