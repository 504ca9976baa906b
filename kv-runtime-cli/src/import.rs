//! `kv import FILE`: rows back exactly as exported (versions, times,
//! `deleted_at`, `updated_by`), through [`Backend::import`].
//!
//! The file is checked whole first ([`check`]): a line that does not
//! parse, a row of a table with no table line, a duplicate or out-of-order
//! key, a count that does not add up, a missing end line (a truncated
//! file) is `BAD_FILE` naming the line, and nothing is written. Then the
//! rows go in, a batch of [`crate::BATCH`] rows per atomic backend
//! call. A stored row newer than the file's is kept (unless `force`); an
//! identical one is left alone, so importing a file twice changes nothing.
//! Should the store fail midway, the error says which rows were applied;
//! running the import again finishes it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use kv_runtime::backend::{Backend, ImportMode, ImportOptions, RawRow, RowImport};
use kv_runtime::cli::{CliError, Exit};

use crate::format::{bad_line, parse_line, Line};
use crate::{progress, BATCH};

/// One table of a checked file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTable {
    /// The table.
    pub name: String,
    /// Its rows in the file.
    pub rows: u64,
    /// Its version floor in the file.
    pub version_floor: Option<i64>,
}

/// What a checked file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The tables, in file order.
    pub tables: Vec<PlannedTable>,
    /// Rows in all.
    pub rows: u64,
}

/// What an import did to one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub name: String,
    /// Rows written.
    pub written: u64,
    /// Rows already identical.
    pub unchanged: u64,
    /// Newer stored rows kept: key, stored version, the file's version
    /// (the first 20).
    pub kept: Vec<(String, i64, i64)>,
    /// How many were kept in all.
    pub kept_count: u64,
}

/// Reads `path` line by line, calling `each` with each line's number and
/// text (without its line break).
fn lines(
    path: &Path,
    mut each: impl FnMut(u64, &str) -> Result<(), CliError>,
) -> Result<u64, CliError> {
    let file = File::open(path).map_err(|e| {
        CliError::new(
            "USAGE",
            Exit::Usage,
            format!("cannot open {}: {e}", path.display()),
            "name a file written by `kv export`",
        )
    })?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut text = String::new();
    let mut n = 0;
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .map_err(|e| bad_line(n + 1, format!("cannot be read: {e}")))?;
        if read == 0 {
            return Ok(n);
        }
        n += 1;
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        each(n, line)?;
    }
}

/// Checks the whole file: its structure, every line, the counts and the
/// end line. Holds one table's state at a time, never the rows.
pub fn check(path: &Path) -> Result<Plan, CliError> {
    let mut tables: Vec<PlannedTable> = Vec::new();
    let mut seen_header = false;
    let mut ended = false;
    let mut in_table = 0u64;
    let mut last_key: Option<String> = None;
    let mut total = 0u64;
    let close = |tables: &[PlannedTable], in_table: u64, n: u64| -> Result<(), CliError> {
        match tables.last() {
            Some(t) if t.rows != in_table => Err(bad_line(
                n,
                format!(
                    "table `{}` has {in_table} rows before this line, but its table line says {} \
                     (a truncated or edited file)",
                    t.name, t.rows
                ),
            )),
            _ => Ok(()),
        }
    };
    let count = lines(path, |n, text| {
        if ended {
            return Err(bad_line(n, "a line after the end line"));
        }
        let line = parse_line(n, text)?;
        if !seen_header {
            return match line {
                Line::Header { .. } => {
                    seen_header = true;
                    Ok(())
                }
                _ => Err(bad_line(
                    n,
                    "the file must start with the export's header line",
                )),
            };
        }
        match line {
            Line::Header { .. } => Err(bad_line(n, "a second header line")),
            Line::Table {
                name,
                rows,
                version_floor,
            } => {
                close(&tables, in_table, n)?;
                if tables.iter().any(|t| t.name == name) {
                    return Err(bad_line(n, format!("table `{name}` appears twice")));
                }
                tables.push(PlannedTable {
                    name,
                    rows,
                    version_floor,
                });
                in_table = 0;
                last_key = None;
                Ok(())
            }
            Line::Row { table, row } => {
                let Some(current) = tables.last() else {
                    return Err(bad_line(
                        n,
                        format!("a row of table `{table}`, which no table line announced"),
                    ));
                };
                if current.name != table {
                    return Err(bad_line(
                        n,
                        format!(
                            "a row of table `{table}` among the rows of `{}` (a row of an \
                             unknown table, or out of place)",
                            current.name
                        ),
                    ));
                }
                if let Some(last) = &last_key {
                    if row.key.as_bytes() <= last.as_bytes() {
                        let what = if row.key == *last {
                            "a duplicate key"
                        } else {
                            "out of key order"
                        };
                        return Err(bad_line(
                            n,
                            format!("key {:?} of table `{table}`: {what}", row.key),
                        ));
                    }
                }
                in_table += 1;
                if in_table > current.rows {
                    return Err(bad_line(
                        n,
                        format!(
                            "table `{table}` has more rows than its table line says ({})",
                            current.rows
                        ),
                    ));
                }
                total += 1;
                last_key = Some(row.key);
                Ok(())
            }
            Line::End(totals) => {
                close(&tables, in_table, n)?;
                if totals.tables != tables.len() as u64 || totals.rows != total {
                    return Err(bad_line(
                        n,
                        format!(
                            "the end line counts {} tables and {} rows; the file has {} and {total}",
                            totals.tables,
                            totals.rows,
                            tables.len()
                        ),
                    ));
                }
                ended = true;
                Ok(())
            }
        }
    })?;
    if count == 0 {
        return Err(bad_line(1, "the file is empty"));
    }
    if !ended {
        return Err(bad_line(
            count,
            "the file ends without its end line: it is truncated",
        ));
    }
    Ok(Plan {
        tables,
        rows: total,
    })
}

/// Imports a file [`check`] accepted, batch by batch. On a backend failure
/// the error says what was applied.
pub async fn apply(
    backend: &dyn Backend,
    path: &Path,
    plan: &Plan,
    mode: ImportMode,
    show_progress: bool,
) -> Result<Vec<TableReport>, CliError> {
    let mut reports: Vec<TableReport> = Vec::new();
    let mut batch: Vec<RawRow> = Vec::with_capacity(BATCH);
    let mut current: Option<(PlannedTable, indicatif::ProgressBar, bool)> = None;
    // Lines are read synchronously; each batch is written before the next
    // is read, so memory holds one batch.
    let file = File::open(path)
        .map_err(|e| CliError::usage(format!("cannot open {}: {e}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut text = String::new();
    let mut n = 0u64;
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .map_err(|e| bad_line(n + 1, format!("cannot be read: {e}")))?;
        n += 1;
        let line = if read == 0 {
            None
        } else {
            let t = text.strip_suffix('\n').unwrap_or(&text);
            Some(parse_line(n, t.strip_suffix('\r').unwrap_or(t))?)
        };
        match line {
            Some(Line::Row { row, .. }) => {
                batch.push(row);
                if batch.len() == BATCH {
                    flush(backend, &mut current, &mut batch, &mut reports, mode).await?;
                }
            }
            Some(Line::Table { name, .. }) => {
                flush(backend, &mut current, &mut batch, &mut reports, mode).await?;
                finish(backend, &mut current, &mut reports, mode).await?;
                let planned = plan
                    .tables
                    .iter()
                    .find(|t| t.name == name)
                    .cloned()
                    .ok_or_else(|| bad_line(n, "the file changed since it was checked"))?;
                let bar = progress::bar(show_progress, planned.rows, &planned.name);
                reports.push(TableReport {
                    name: planned.name.clone(),
                    ..TableReport::default()
                });
                current = Some((planned, bar, false));
            }
            Some(Line::Header { .. }) => {}
            Some(Line::End(_)) | None => {
                flush(backend, &mut current, &mut batch, &mut reports, mode).await?;
                finish(backend, &mut current, &mut reports, mode).await?;
                return Ok(reports);
            }
        }
    }
}

/// Writes the batch of the current table.
async fn flush(
    backend: &dyn Backend,
    current: &mut Option<(PlannedTable, indicatif::ProgressBar, bool)>,
    batch: &mut Vec<RawRow>,
    reports: &mut [TableReport],
    mode: ImportMode,
) -> Result<(), CliError> {
    let Some((table, bar, floor_raised)) = current else {
        return Ok(());
    };
    if batch.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(batch);
    let keys: Vec<(String, i64)> = rows.iter().map(|r| (r.key.clone(), r.updated_at)).collect();
    let options = ImportOptions {
        mode,
        version_floor: if *floor_raised {
            None
        } else {
            table.version_floor
        },
    };
    let report = reports
        .last_mut()
        .ok_or_else(|| CliError::usage("no table"))?;
    let imported = backend
        .import(&table.name, rows, options)
        .await
        .map_err(|e| stopped(e.into(), reports_done(report), &table.name, keys.first()))?;
    *floor_raised = true;
    for (outcome, (key, file_version)) in imported.rows.iter().zip(keys) {
        match outcome {
            RowImport::Written => report.written += 1,
            RowImport::Unchanged => report.unchanged += 1,
            RowImport::KeptNewer { stored_updated_at } => {
                report.kept_count += 1;
                if report.kept.len() < 20 {
                    report.kept.push((key, *stored_updated_at, file_version));
                }
            }
        }
    }
    bar.inc(imported.rows.len() as u64);
    Ok(())
}

/// Ends the current table: raises its floor when it had no rows.
async fn finish(
    backend: &dyn Backend,
    current: &mut Option<(PlannedTable, indicatif::ProgressBar, bool)>,
    reports: &mut [TableReport],
    mode: ImportMode,
) -> Result<(), CliError> {
    if let Some((table, bar, floor_raised)) = current.take() {
        bar.finish_and_clear();
        if !floor_raised && table.version_floor.is_some() {
            let options = ImportOptions {
                mode,
                version_floor: table.version_floor,
            };
            backend
                .import(&table.name, Vec::new(), options)
                .await
                .map_err(|e| {
                    let done = reports.last().map(reports_done).unwrap_or_default();
                    stopped(e.into(), done, &table.name, None)
                })?;
        }
    }
    Ok(())
}

fn reports_done(report: &TableReport) -> u64 {
    report.written + report.unchanged + report.kept_count
}

/// The error of an import that stopped midway, saying what was applied.
fn stopped(e: CliError, done: u64, table: &str, from: Option<&(String, i64)>) -> CliError {
    let from = from.map_or(String::new(), |(k, _)| {
        format!(" (the batch from key {k:?} on)")
    });
    CliError {
        message: format!(
            "{}; the import stopped in table `{table}` after {done} of its rows{from}: the \
             tables before it and those {done} rows are imported, nothing after",
            e.message
        ),
        hint: format!(
            "{}; then run the same import again: rows already there are left alone",
            e.hint
        ),
        ..e
    }
}
