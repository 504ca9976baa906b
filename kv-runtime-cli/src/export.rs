//! `kv export`: every row of a store (or of some tables), soft-deleted
//! ones included, with their versions, times and `updated_by`, as of one
//! moment ([`Backend::snapshot`]), in the [export format](crate::format).

use std::io::Write;

use kv_runtime::backend::{Backend, OtherData, Snapshot, TableInfo};
use kv_runtime::cli::{CliError, Exit};

use crate::format::{self, End, Header, TableLine, Totals};
use crate::{progress, BATCH};

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The tables, as the snapshot had them.
    pub tables: Vec<TableInfo>,
    /// Rows written.
    pub rows: u64,
    /// What the export did not carry (see [`not_carried`]).
    pub left_out: OtherData,
}

/// What of the snapshot a transfer of the tables `only` (all when empty)
/// leaves behind: the history records of those tables, and, when every
/// table goes, the entries of every log. Format 1 carries rows only.
pub async fn not_carried(
    snapshot: &mut dyn Snapshot,
    only: &[String],
) -> Result<OtherData, CliError> {
    let all = snapshot.other_data().await?;
    let history = all
        .history_records
        .into_iter()
        .filter(|(t, _)| only.is_empty() || only.contains(t))
        .collect();
    let logs = if only.is_empty() {
        all.log_entries
    } else {
        Vec::new()
    };
    Ok(OtherData::new(history, logs))
}

/// The note a transfer prints when it left data behind, or `None`.
pub fn left_out_note(what: &str, left_out: &OtherData) -> Option<String> {
    if left_out.is_empty() {
        return None;
    }
    let list = |items: &[(String, u64)]| -> (u64, String) {
        let total = items.iter().map(|(_, n)| n).sum();
        let named: Vec<String> = items.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        (total, named.join(", "))
    };
    let mut parts = Vec::new();
    if !left_out.history_records.is_empty() {
        let (n, named) = list(&left_out.history_records);
        parts.push(format!("{n} history records ({named})"));
    }
    if !left_out.log_entries.is_empty() {
        let (n, named) = list(&left_out.log_entries);
        parts.push(format!("{n} log entries ({named})"));
    }
    Some(format!(
        "note: the {what} carries rows and version floors only; the source also holds {}, \
         which are not in it. Keep the source store (or a copy of its file or database) for \
         them.",
        parts.join(" and ")
    ))
}

/// The tables of `all` named in `only` (every table when `only` is empty),
/// or `NOT_FOUND` naming one the store does not have.
pub fn select(all: Vec<TableInfo>, only: &[String]) -> Result<Vec<TableInfo>, CliError> {
    if only.is_empty() {
        return Ok(all);
    }
    for name in only {
        if !all.iter().any(|t| &t.name == name) {
            let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
            return Err(CliError::new(
                "NOT_FOUND",
                Exit::NotFound,
                format!(
                    "the store has no table `{name}`; its tables are: {}",
                    names.join(", ")
                ),
                "name tables as `kv tables` lists them",
            ));
        }
    }
    Ok(all.into_iter().filter(|t| only.contains(&t.name)).collect())
}

/// Writes the tables `only` (all when empty) of `backend` to `out`, as of
/// one moment; `now` is the time to record. Memory use does not grow with
/// the number of rows (one page at a time).
pub async fn export(
    backend: &dyn Backend,
    only: &[String],
    now: i64,
    out: &mut dyn Write,
    show_progress: bool,
) -> Result<Exported, CliError> {
    let mut snapshot = backend.snapshot().await?;
    let tables = select(snapshot.tables().await?, only)?;
    let left_out = not_carried(&mut *snapshot, only).await?;
    let mut buf = Vec::with_capacity(1 << 16);
    format::write_line(
        &mut buf,
        &Header {
            kv_export: format::FORMAT,
            exported_at: now,
            source: backend.name(),
        },
    );
    let mut total = 0u64;
    for table in &tables {
        format::write_line(
            &mut buf,
            &TableLine {
                table: &table.name,
                rows: table.rows,
                version_floor: table.version_floor,
            },
        );
        let bar = progress::bar(show_progress, table.rows, &table.name);
        let mut after: Option<String> = None;
        let mut written = 0u64;
        loop {
            let rows = snapshot.scan(&table.name, after.as_deref(), BATCH).await?;
            for row in &rows {
                format::write_row(&mut buf, &table.name, row)?;
            }
            written += rows.len() as u64;
            bar.set_position(written);
            out.write_all(&buf).map_err(write_error)?;
            buf.clear();
            match rows.last() {
                Some(last) if rows.len() == BATCH => after = Some(last.key.clone()),
                _ => break,
            }
        }
        bar.finish_and_clear();
        if written != table.rows {
            return Err(CliError::new(
                "INTERNAL",
                Exit::Internal,
                format!(
                    "the snapshot counted {} rows in `{}` but read {written}",
                    table.rows, table.name
                ),
                "the backend broke its snapshot contract; this is a bug, please report it",
            ));
        }
        total += written;
    }
    format::write_line(
        &mut buf,
        &End {
            kv_export_end: Totals {
                tables: tables.len() as u64,
                rows: total,
            },
        },
    );
    out.write_all(&buf).map_err(write_error)?;
    out.flush().map_err(write_error)?;
    Ok(Exported {
        tables,
        rows: total,
        left_out,
    })
}

fn write_error(e: std::io::Error) -> CliError {
    CliError::new(
        "USAGE",
        Exit::Usage,
        format!("cannot write the export: {e}"),
        "check the output file's folder and free space",
    )
}
