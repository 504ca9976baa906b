//! A row's history, typed: what [`Table::history`](crate::Table::history)
//! returns.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::backend::HistoryOp;
use crate::schema::KvSchema;

/// One committed change of a row (see [History](crate#history)).
///
/// Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize",
    deserialize = "S: serde::de::DeserializeOwned"
))]
pub struct HistoryEntry<S: KvSchema> {
    /// The row's key.
    pub key: S::Key,
    /// The change's version: the row's `updated_at` after a `set`, a soft
    /// `rm` or a `restore` (for a hard `rm` and a `purge`, the version the
    /// row would have got). Pass it to
    /// [`Table::revert`](crate::Table::revert).
    pub version: i64,
    /// What the change was.
    pub op: HistoryOp,
    /// The row's value from this version on (`set`, `restore`), or the
    /// value it had when it was deleted (`rm`, `purge`). A value written
    /// by an older schema version is migrated to the current one, as reads
    /// of rows are.
    pub value: S,
    /// The schema version that wrote the value.
    pub schema_version: u32,
    /// When the change was made.
    pub at: i64,
    /// Who made it: the user id, `"internal"` for server calls and
    /// `purge`, or `None` for anonymous callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Arc<str>>,
}

/// One page of a row's history, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize",
    deserialize = "S: serde::de::DeserializeOwned"
))]
pub struct HistoryPage<S: KvSchema> {
    /// The changes, newest (highest version) first.
    pub entries: Vec<HistoryEntry<S>>,
    /// Whether no older records follow this page.
    pub is_done: bool,
    /// Pass to [`PageRequest::after`](crate::PageRequest::after) for the
    /// next (older) page; `None` when done. Stays valid while the row
    /// changes (new records are newer than the page).
    pub continue_cursor: Option<String>,
    /// Records in this page that this program cannot read (written by a
    /// newer schema version, or not decoding as their own): reported here
    /// instead of failing the page. They count towards the page's size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableEntry>,
}

/// A history record [`Table::history`](crate::Table::history) could not
/// read: see [`HistoryPage::unreadable`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableEntry {
    /// The change's version.
    pub version: i64,
    /// What the change was.
    pub op: HistoryOp,
    /// The schema version that wrote the value.
    pub schema_version: u32,
    /// Why it cannot be read.
    pub reason: String,
}
