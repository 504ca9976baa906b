//! The export file: JSON Lines, one object per line.
//!
//! ```text
//! {"kv_export":1,"exported_at":1764480000000,"source":"sqlite"}
//! {"table":"siteConfig","rows":2,"version_floor":null}
//! {"table":"siteConfig","key":"banner","value":{"active":true,"message":"Back at 5pm"},"schema":1,"created_at":1764470000000,"updated_at":1764479000000,"deleted_at":null,"updated_by":"cli:alice"}
//! {"table":"siteConfig","key":"maintenance","value":{...},...,"deleted_at":1764479500000,...}
//! {"kv_export_end":{"tables":1,"rows":2}}
//! ```
//!
//! A header, then per table a table line (its row count and version floor)
//! followed by its rows in key order, soft-deleted ones included, then an
//! end line with the totals. The value is the stored JSON as it is, with
//! the version of the table's schema that wrote it (`schema`; 1 when
//! absent), so that an import keeps what the program reading it migrates
//! from (`#[kv(version = N, from = ...)]`). The
//! counts and the end line let an import tell a whole file from a
//! truncated one; the key order lets it find a duplicate key without
//! holding the keys.

use std::sync::Arc;

use kv_runtime::backend::{Payload, RawRow};
use kv_runtime::cli::{CliError, Exit};
use kv_runtime::KvKey;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The version of the file format this release writes and reads.
pub const FORMAT: u32 = 1;

/// The first line.
#[derive(Debug, Serialize)]
pub struct Header<'a> {
    /// [`FORMAT`].
    pub kv_export: u32,
    /// When the snapshot was taken, ms since the epoch.
    pub exported_at: i64,
    /// The backend exported (`"sqlite"`, `"postgres"`, `"memory"`).
    pub source: &'a str,
}

/// The line before a table's rows.
#[derive(Debug, Serialize)]
pub struct TableLine<'a> {
    /// The table.
    pub table: &'a str,
    /// How many row lines follow.
    pub rows: u64,
    /// The table's version floor.
    pub version_floor: Option<i64>,
}

/// One row.
#[derive(Debug, Serialize)]
pub struct RowLine<'a> {
    /// The table.
    pub table: &'a str,
    /// The key.
    pub key: &'a str,
    /// The stored value, as JSON.
    pub value: &'a RawValue,
    /// The version of the table's schema that wrote the value.
    pub schema: u32,
    /// First written, ms since the epoch.
    pub created_at: i64,
    /// The version.
    pub updated_at: i64,
    /// Set when soft-deleted.
    pub deleted_at: Option<i64>,
    /// Who wrote last.
    pub updated_by: Option<&'a str>,
}

/// The totals of the end line.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Tables in the file.
    pub tables: u64,
    /// Rows in the file.
    pub rows: u64,
}

/// The last line.
#[derive(Debug, Serialize)]
pub struct End {
    /// The totals.
    pub kv_export_end: Totals,
}

/// Writes `row` of `table` as a row line (with its newline) to `out`.
pub fn write_row(out: &mut Vec<u8>, table: &str, row: &RawRow) -> Result<(), CliError> {
    let json = row.value.json();
    let owned;
    // A value stored with line breaks between its tokens would break the
    // file into lines: write it compact.
    let text = if json.contains(['\n', '\r']) {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad_value(table, row, e))?;
        owned = value.to_string();
        owned.as_str()
    } else {
        json
    };
    let value: &RawValue = serde_json::from_str(text).map_err(|e| bad_value(table, row, e))?;
    let line = RowLine {
        table,
        key: &row.key,
        value,
        schema: row.value.schema(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
        updated_by: row.updated_by.as_deref(),
    };
    serde_json::to_writer(&mut *out, &line).map_err(|e| bad_value(table, row, e))?;
    out.push(b'\n');
    Ok(())
}

fn bad_value(table: &str, row: &RawRow, e: serde_json::Error) -> CliError {
    CliError::new(
        "UNREADABLE",
        Exit::Internal,
        format!(
            "the stored value of {:?} in table `{table}` is not JSON: {e}",
            row.key
        ),
        "fix or remove the row in the source store",
    )
}

/// Writes any line (with its newline).
pub fn write_line(out: &mut Vec<u8>, line: &impl Serialize) {
    // The line types serialize infallibly (no maps with non-string keys).
    if serde_json::to_writer(&mut *out, line).is_ok() {
        out.push(b'\n');
    }
}

/// Any line, as read: which fields it has says what it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnyLine<'a> {
    kv_export: Option<u32>,
    exported_at: Option<i64>,
    source: Option<String>,
    kv_export_end: Option<Totals>,
    table: Option<String>,
    rows: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    version_floor: Option<Option<i64>>,
    key: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    schema: Option<u32>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    deleted_at: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    updated_by: Option<Option<String>>,
}

/// A field that may be `null`: `Some(None)` when present and null.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A line of a file, checked on its own.
#[derive(Debug)]
pub enum Line {
    /// The header.
    Header {
        /// When exported.
        exported_at: i64,
        /// From which backend.
        source: String,
    },
    /// A table line.
    Table {
        /// The table.
        name: String,
        /// Its row count.
        rows: u64,
        /// Its floor.
        version_floor: Option<i64>,
    },
    /// A row.
    Row {
        /// The table.
        table: String,
        /// The row.
        row: RawRow,
    },
    /// The end line.
    End(Totals),
}

/// A `BAD_FILE` error about line `n` (1-based).
pub fn bad_line(n: u64, what: impl std::fmt::Display) -> CliError {
    CliError::new(
        "BAD_FILE",
        Exit::Invalid,
        format!("line {n}: {what}; nothing was imported"),
        "use a file written by `kv export`, whole and unedited (or fix the line named)",
    )
}

/// Parses line `n` (1-based) of a file.
pub fn parse_line(n: u64, text: &str) -> Result<Line, CliError> {
    let line: AnyLine<'_> = serde_json::from_str(text)
        .map_err(|e| bad_line(n, format!("not a line of an export: {e}")))?;
    let missing = |kind: &str, field: &str| bad_line(n, format!("a {kind} line needs `{field}`"));
    if let Some(version) = line.kv_export {
        if version != FORMAT {
            return Err(bad_line(
                n,
                format!("export format {version}; this release reads format {FORMAT}"),
            ));
        }
        return Ok(Line::Header {
            exported_at: line
                .exported_at
                .ok_or_else(|| missing("header", "exported_at"))?,
            source: line.source.unwrap_or_default(),
        });
    }
    if let Some(totals) = line.kv_export_end {
        return Ok(Line::End(totals));
    }
    let table = line.table.ok_or_else(|| {
        bad_line(
            n,
            "neither a header, a table, a row nor an end line (no `table`)",
        )
    })?;
    if let Err(e) = String::parse_key("table name", &table) {
        return Err(bad_line(n, format!("table name {table:?}: {e}")));
    }
    let Some(key) = line.key else {
        return Ok(Line::Table {
            rows: line.rows.ok_or_else(|| missing("table", "rows"))?,
            version_floor: line.version_floor.flatten(),
            name: table,
        });
    };
    if let Err(e) = String::parse_key("import", &key) {
        return Err(bad_line(n, format!("key {key:?}: {e}")));
    }
    let value = line.value.ok_or_else(|| missing("row", "value"))?;
    let schema = line.schema.unwrap_or(1);
    if schema == 0 {
        return Err(bad_line(
            n,
            format!("key {key:?}: schema 0; schema versions start at 1"),
        ));
    }
    let created_at = line
        .created_at
        .ok_or_else(|| missing("row", "created_at"))?;
    let updated_at = line
        .updated_at
        .ok_or_else(|| missing("row", "updated_at"))?;
    let deleted_at = line
        .deleted_at
        .ok_or_else(|| missing("row", "deleted_at"))?;
    let updated_by = line
        .updated_by
        .ok_or_else(|| missing("row", "updated_by"))?;
    if created_at > updated_at {
        return Err(bad_line(
            n,
            format!("key {key:?}: created_at {created_at} is after updated_at {updated_at}"),
        ));
    }
    if deleted_at.is_some_and(|d| d > updated_at) {
        return Err(bad_line(
            n,
            format!("key {key:?}: deleted_at is after updated_at {updated_at}"),
        ));
    }
    Ok(Line::Row {
        table,
        row: RawRow {
            key,
            value: Payload::versioned(value.get(), schema),
            created_at,
            updated_at,
            deleted_at,
            updated_by: updated_by.map(Arc::from),
        },
    })
}
