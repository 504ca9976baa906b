//! What backends store for tables with history: one record per committed
//! change of a row.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{next_version, Payload};

/// The kind of change a history record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryOp {
    /// `set` (also `set_expecting`, `set_if_absent`, `revert`): the row
    /// holds the recorded value from this version on.
    Set,
    /// `rm`, soft or hard: the row was deleted; the record holds the value
    /// it had.
    Rm,
    /// `restore`: a soft-deleted row is live again, with the recorded value.
    Restore,
    /// `purge`: a soft-deleted row was removed for good; the record holds
    /// the value it had.
    Purge,
}

impl HistoryOp {
    /// The operation's name, as stored and as the web layer sends it
    /// (`"set"`, `"rm"`, `"restore"`, `"purge"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            HistoryOp::Set => "set",
            HistoryOp::Rm => "rm",
            HistoryOp::Restore => "restore",
            HistoryOp::Purge => "purge",
        }
    }

    /// The operation named `text` (as [`HistoryOp::as_str`] writes it).
    pub fn parse(text: &str) -> Option<HistoryOp> {
        match text {
            "set" => Some(HistoryOp::Set),
            "rm" => Some(HistoryOp::Rm),
            "restore" => Some(HistoryOp::Restore),
            "purge" => Some(HistoryOp::Purge),
            _ => None,
        }
    }
}

impl fmt::Display for HistoryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One committed change of a row, as backends keep it (see
/// [`Write::history`](super::Write::history)).
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRecord {
    /// The row's key text.
    pub key: String,
    /// The change's version: the row's new `updated_at` for `set`, a soft
    /// `rm` and `restore`; for a hard `rm` and a `purge`, which leave no
    /// row, [`removal_version`] of the removed row. Unique per key, and
    /// increasing in the order of the changes.
    pub version: i64,
    /// What the change was.
    pub op: HistoryOp,
    /// The row's value from this version on (`set`, `restore`), or the
    /// value it had when it was deleted (`rm`, `purge`), with its schema
    /// version ([`Payload::schema`]).
    pub value: Payload,
    /// When the change was made: the writer's `now`, ms since the epoch.
    pub at: i64,
    /// Who made it (the write's `updated_by`).
    pub updated_by: Option<Arc<str>>,
}

/// The version of the history record of a change that removes a row (a
/// hard `rm`, a `purge`) whose last version was `updated_at`: the version
/// the row would have got, `max(now, updated_at + 1)`. The table's version
/// floor is raised to it in the same step, so a row created later under the
/// key gets a greater version than the record.
pub fn removal_version(updated_at: i64, now: i64) -> i64 {
    next_version(Some(updated_at), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_their_names() {
        for op in [
            HistoryOp::Set,
            HistoryOp::Rm,
            HistoryOp::Restore,
            HistoryOp::Purge,
        ] {
            assert_eq!(HistoryOp::parse(op.as_str()), Some(op));
            assert_eq!(
                serde_json::to_string(&op).unwrap(),
                format!("\"{}\"", op.as_str())
            );
        }
        assert_eq!(HistoryOp::parse("delete"), None);
    }

    #[test]
    fn a_removal_is_versioned_after_the_row() {
        assert_eq!(removal_version(10, 5), 11);
        assert_eq!(removal_version(10, 50), 50);
    }
}
