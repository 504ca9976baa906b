//! `kv export`: every row of a store (or of some tables), soft-deleted
//! ones included, with their versions, times and `updated_by`, as of one
//! moment ([`Backend::snapshot`]), in the [export format](crate::format).

use std::io::Write;

use kv_runtime::backend::{Backend, TableInfo};
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
