//! The table the TypeScript client's tests write besides the demo's
//! banner: free keys, no soft delete, and a value that uses what ts-rs
//! has to follow serde for (renamed fields, an optional field, a
//! lowercase enum, an internally tagged enum, 64-bit integers).
//!
//! Shared by `examples/ts_test_server.rs` (which serves it) and
//! `tests/ts_bindings.rs` (which keeps `clients/ts/test/bindings/tables.ts`
//! current).

use kv_runtime::ts::TS;
use kv_runtime::Kv;
use serde::{Deserialize, Serialize};

/// A note: any key, written by callers with the `editor` role.
#[derive(Kv, TS, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[ts(crate = "kv_runtime::ts::ts_rs")]
#[kv(table = "notes", write_role = editor)]
#[serde(rename_all = "camelCase")]
pub struct Note {
    /// The title, 1 to 100 characters.
    #[garde(length(chars, min = 1, max = 100))]
    pub title: String,
    /// Free text; absent when there is none.
    #[garde(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[garde(skip)]
    pub tags: Vec<String>,
    #[garde(skip)]
    pub priority: Priority,
    /// Until when the note stays pinned, in milliseconds since the epoch.
    #[garde(skip)]
    pub pinned_until: Option<u64>,
    #[garde(skip)]
    pub status: Status,
}

/// How urgent a note is.
#[derive(TS, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[ts(crate = "kv_runtime::ts::ts_rs")]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
}

/// Where a note is in its life.
#[derive(TS, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[ts(crate = "kv_runtime::ts::ts_rs")]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Draft,
    Published { at: u64 },
    Archived { reason: String },
}
