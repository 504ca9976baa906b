//! What moving rows between stores needs from a backend: the tables it
//! holds ([`Backend::tables`](super::Backend::tables)), a consistent read
//! view of all of them ([`Backend::snapshot`](super::Backend::snapshot)),
//! an exact restore of rows with their bookkeeping
//! ([`Backend::import`](super::Backend::import)), and self-checks for an
//! operator ([`Backend::diagnose`](super::Backend::diagnose)).
//!
//! Rows travel as [`RawRow`]s: the value is an opaque [`Payload`](super::Payload)
//! handed on as it was read, so whatever a payload carries reaches the
//! other store unchanged.

use async_trait::async_trait;

use super::RawRow;
use crate::error::Result;

/// One table as a backend holds it ([`Backend::tables`](super::Backend::tables)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableInfo {
    /// The table's storage name.
    pub name: String,
    /// Stored rows, live and soft-deleted.
    pub rows: u64,
    /// Of those, the soft-deleted ones.
    pub deleted_rows: u64,
    /// The table's version floor: at least the highest `updated_at` of a
    /// row hard-deleted or purged from it (or given to
    /// [`ImportOptions::version_floor`]); `None` when there is none.
    pub version_floor: Option<i64>,
}

impl TableInfo {
    /// A table `name` with `rows` rows, `deleted_rows` of them
    /// soft-deleted, and its version floor.
    pub fn new(name: impl Into<String>, rows: u64, deleted_rows: u64, floor: Option<i64>) -> Self {
        TableInfo {
            name: name.into(),
            rows,
            deleted_rows,
            version_floor: floor,
        }
    }
}

/// What [`Backend::import`](super::Backend::import) does with a stored row
/// that is newer than the one given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Keep a stored row whose `updated_at` is at least the given row's
    /// (and that differs from it): [`RowImport::KeptNewer`]. The default:
    /// an import never undoes a later change.
    #[default]
    KeepNewer,
    /// Write the given row whatever is stored (a roll-back to a backup).
    /// The table's floor rises to the version of every newer row replaced,
    /// but the row itself goes back to the older version: its next write
    /// gets `max(now, that version + 1)`, which repeats a version the
    /// replaced row had only if the clock is behind that version. Use it
    /// when the store's clients can re-read, not as a routine import.
    Overwrite,
}

/// The options of one [`Backend::import`](super::Backend::import) call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// What to do with stored rows newer than the given ones.
    pub mode: ImportMode,
    /// Raise the table's version floor to at least this (the floor of the
    /// table the rows come from), in the same atomic step.
    pub version_floor: Option<i64>,
}

/// What [`Backend::import`](super::Backend::import) did with one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowImport {
    /// Stored exactly as given (there was no row, an older one, or the mode
    /// was [`ImportMode::Overwrite`]); published on the change feed.
    Written,
    /// The stored row was already identical (value equal as JSON, and every
    /// bookkeeping field equal); nothing changed.
    Unchanged,
    /// The stored row is newer (its `updated_at` is at least the given
    /// row's, and it differs) and the mode is [`ImportMode::KeepNewer`]:
    /// it was kept.
    KeptNewer {
        /// The stored row's `updated_at`.
        stored_updated_at: i64,
    },
}

/// What [`Backend::import`](super::Backend::import) did: one [`RowImport`]
/// per row given, in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// One outcome per row, in the order the rows were given.
    pub rows: Vec<RowImport>,
}

impl Imported {
    /// How many rows were written.
    pub fn written(&self) -> usize {
        self.count(|r| matches!(r, RowImport::Written))
    }

    /// How many rows were already identical.
    pub fn unchanged(&self) -> usize {
        self.count(|r| matches!(r, RowImport::Unchanged))
    }

    /// How many newer stored rows were kept.
    pub fn kept(&self) -> usize {
        self.count(|r| matches!(r, RowImport::KeptNewer { .. }))
    }

    fn count(&self, f: impl Fn(&RowImport) -> bool) -> usize {
        self.rows.iter().filter(|r| f(r)).count()
    }
}

/// The verdict of [`Backend::import`](super::Backend::import) for `given`
/// against the `stored` row with the same key; `same_value` says whether
/// their values are equal as JSON (backends compare in their own way: as
/// text, or as JSONB). The schema versions that wrote them
/// ([`Payload::schema`](super::Payload::schema)) must be equal too for the
/// rows to be identical. Every backend decides with this function.
pub fn import_verdict(
    stored: Option<&RawRow>,
    given: &RawRow,
    same_value: bool,
    mode: ImportMode,
) -> RowImport {
    let Some(stored) = stored else {
        return RowImport::Written;
    };
    let identical = same_value
        && stored.value.schema() == given.value.schema()
        && stored.created_at == given.created_at
        && stored.updated_at == given.updated_at
        && stored.deleted_at == given.deleted_at
        && stored.updated_by == given.updated_by;
    if identical {
        RowImport::Unchanged
    } else if mode == ImportMode::KeepNewer && stored.updated_at >= given.updated_at {
        RowImport::KeptNewer {
            stored_updated_at: stored.updated_at,
        }
    } else {
        RowImport::Written
    }
}

/// The version floor an import leaves: at least `options.version_floor`,
/// and at least the `updated_at` of every stored row it replaced with an
/// older version (an [`ImportMode::Overwrite`] of a newer row), as a hard
/// delete would.
pub fn import_floor(
    options: ImportOptions,
    replaced_newer: impl IntoIterator<Item = i64>,
) -> Option<i64> {
    replaced_newer
        .into_iter()
        .chain(options.version_floor)
        .max()
}

/// What a store holds besides its tables' rows and floors, counted by
/// [`Snapshot::other_data`]: the records of tables declared with `history`
/// and the entries of logs. Neither travels in an export (format 1) or a
/// `kv copy`, which say so when there are any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtherData {
    /// History records per table, in byte order of the names; tables
    /// without records are left out.
    pub history_records: Vec<(String, u64)>,
    /// Entries per log (live and soft-deleted), in byte order of the names;
    /// logs without entries are left out.
    pub log_entries: Vec<(String, u64)>,
}

impl OtherData {
    /// Counts of `history_records` per table and `log_entries` per log.
    pub fn new(history_records: Vec<(String, u64)>, log_entries: Vec<(String, u64)>) -> Self {
        OtherData {
            history_records,
            log_entries,
        }
    }

    /// Whether there is nothing besides rows.
    pub fn is_empty(&self) -> bool {
        self.history_records.is_empty() && self.log_entries.is_empty()
    }
}

/// A consistent read view of every table of a backend
/// ([`Backend::snapshot`](super::Backend::snapshot)): every read sees the
/// rows as they were at one moment, whatever is written meanwhile, so an
/// export made from it is the store as of that moment. Drop it promptly: it
/// holds a connection (and, on PostgreSQL, an open transaction).
#[async_trait]
pub trait Snapshot: Send {
    /// The tables of the snapshot, as [`Backend::tables`](super::Backend::tables).
    async fn tables(&mut self) -> Result<Vec<TableInfo>>;

    /// Up to `limit` rows, live or soft-deleted, with keys greater than
    /// `after`, in key order, as [`Backend::scan`](super::Backend::scan).
    async fn scan(&mut self, table: &str, after: Option<&str>, limit: usize)
        -> Result<Vec<RawRow>>;

    /// How many history records and log entries the store holds (as of
    /// the snapshot where the backend can; the memory backend counts its
    /// logs when the snapshot is taken). Exports and copies report them,
    /// since they carry rows only.
    async fn other_data(&mut self) -> Result<OtherData>;
}

/// How a [`Check`] came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckState {
    /// As it should be.
    Ok,
    /// Works, but needs a look.
    Warning,
    /// Broken: something must be done.
    Failed,
}

/// One self-check of a backend ([`Backend::diagnose`](super::Backend::diagnose)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `"schema version"`.
    pub name: String,
    /// How it came out.
    pub state: CheckState,
    /// What was found, and for a warning or failure what to do.
    pub detail: String,
}

impl Check {
    /// A check named `name` in `state`.
    pub fn new(name: impl Into<String>, state: CheckState, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            state,
            detail: detail.into(),
        }
    }

    /// A passed check.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check::new(name, CheckState::Ok, detail)
    }

    /// A failed check.
    pub fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check::new(name, CheckState::Failed, detail)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::Payload;

    fn row(updated_at: i64, value: &str) -> RawRow {
        RawRow {
            key: "k".into(),
            value: Payload::from_json(value),
            created_at: 1,
            updated_at,
            deleted_at: None,
            updated_by: Some(Arc::from("ada")),
        }
    }

    #[test]
    fn verdicts() {
        let given = row(5, "1");
        let keep = ImportMode::KeepNewer;
        assert_eq!(
            import_verdict(None, &given, false, keep),
            RowImport::Written
        );
        assert_eq!(
            import_verdict(Some(&row(5, "1")), &given, true, keep),
            RowImport::Unchanged
        );
        assert_eq!(
            import_verdict(Some(&row(4, "2")), &given, false, keep),
            RowImport::Written
        );
        // Same version, other content: which one is right is unknown; kept.
        assert_eq!(
            import_verdict(Some(&row(5, "2")), &given, false, keep),
            RowImport::KeptNewer {
                stored_updated_at: 5
            }
        );
        assert_eq!(
            import_verdict(Some(&row(6, "2")), &given, false, ImportMode::Overwrite),
            RowImport::Written
        );
        let mut deleted = row(5, "1");
        deleted.deleted_at = Some(5);
        assert_eq!(
            import_verdict(Some(&deleted), &given, true, keep),
            RowImport::KeptNewer {
                stored_updated_at: 5
            }
        );
    }

    #[test]
    fn floors() {
        let options = ImportOptions {
            mode: ImportMode::Overwrite,
            version_floor: Some(3),
        };
        assert_eq!(import_floor(options, [7, 2]), Some(7));
        assert_eq!(import_floor(options, []), Some(3));
        assert_eq!(import_floor(ImportOptions::default(), []), None);
    }
}
