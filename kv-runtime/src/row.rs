//! Stored rows and list pages.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::schema::KvSchema;

/// A stored row: the value and its bookkeeping fields.
///
/// Times are milliseconds since the Unix epoch. `updated_at` is also the
/// row's version: every mutation makes it strictly greater, so it can be
/// passed back to [`Table::set_expecting`](crate::Table::set_expecting) to
/// detect a concurrent change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize",
    deserialize = "S: serde::de::DeserializeOwned"
))]
pub struct Row<S: KvSchema> {
    /// The row's key.
    pub key: S::Key,
    /// The stored value.
    pub value: S,
    /// When the row was first inserted.
    pub created_at: i64,
    /// When the row was last written (set, soft rm or restore); its version.
    pub updated_at: i64,
    /// When the row was soft-deleted; `None` for live rows. Rows returned by
    /// `get`, `list`, `set` and `restore` are always live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
    /// Who made the last write: the user id, `"internal"` for server calls,
    /// or `None` for anonymous callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<Arc<str>>,
}

/// What page of a table to read with [`Table::list`](crate::Table::list).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// The `continue_cursor` of the previous page; `None` for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// How many rows to return, 1 to [`PageRequest::MAX_ITEMS`]; 0 means the
    /// default of [`PageRequest::DEFAULT_ITEMS`].
    #[serde(default)]
    pub num_items: usize,
}

impl PageRequest {
    /// Page size used when `num_items` is 0.
    pub const DEFAULT_ITEMS: usize = 100;
    /// Largest page size accepted.
    pub const MAX_ITEMS: usize = 1000;

    /// The first page, of `num_items` rows.
    pub fn first(num_items: usize) -> Self {
        PageRequest {
            cursor: None,
            num_items,
        }
    }

    /// The page after the one that returned `cursor`.
    pub fn after(cursor: impl Into<String>, num_items: usize) -> Self {
        PageRequest {
            cursor: Some(cursor.into()),
            num_items,
        }
    }
}

/// One page of live rows in key order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize",
    deserialize = "S: serde::de::DeserializeOwned"
))]
pub struct Page<S: KvSchema> {
    /// The rows, in key order (byte order of the key text). Full unless this
    /// is the last page.
    pub page: Vec<Row<S>>,
    /// Whether no rows follow this page.
    pub is_done: bool,
    /// Pass to [`PageRequest::after`] for the next page; `None` when done.
    /// Stays valid while rows are added or removed.
    pub continue_cursor: Option<String>,
    /// Rows in this page's range that this program cannot read (written by
    /// a newer schema version, or not decoding as their own): reported
    /// here instead of failing the page, and not counted in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadableRow>,
}

/// A row [`Table::list`](crate::Table::list) could not read: see
/// [`Page::unreadable`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableRow {
    /// The row's key text.
    pub key: String,
    /// The schema version that wrote it.
    pub version: u32,
    /// Why it cannot be read.
    pub reason: String,
}
