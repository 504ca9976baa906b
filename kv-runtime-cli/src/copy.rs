//! `kv copy --from URL --to URL`: every table of one store into another, as
//! of one moment, exactly (the migration from SQLite to PostgreSQL). The
//! same as an export piped into an import, without the file.

use kv_runtime::backend::{Backend, ImportMode, ImportOptions};
use kv_runtime::cli::CliError;

use crate::export::{not_carried, select, LeftOut};
use crate::import::TableReport;
use crate::{progress, BATCH};

/// Copies the tables `only` (all when empty) of `from` into `to`, batch by
/// batch; stored rows newer than the source's are kept unless `mode` is
/// [`ImportMode::Overwrite`]. Returns what it did per table, and what of
/// the source it did not copy (history records and log entries).
pub async fn copy(
    from: &dyn Backend,
    to: &dyn Backend,
    only: &[String],
    mode: ImportMode,
    show_progress: bool,
) -> Result<(Vec<TableReport>, LeftOut), CliError> {
    let mut snapshot = from.snapshot().await?;
    let tables = select(snapshot.tables().await?, only)?;
    let mut reports = Vec::new();
    for table in &tables {
        let bar = progress::bar(show_progress, table.rows, &table.name);
        let mut report = TableReport {
            name: table.name.clone(),
            ..TableReport::default()
        };
        let mut after: Option<String> = None;
        let mut first = true;
        loop {
            let rows = snapshot.scan(&table.name, after.as_deref(), BATCH).await?;
            let last = rows.last().map(|r| r.key.clone());
            let full = rows.len() == BATCH;
            let versions: Vec<(String, i64)> =
                rows.iter().map(|r| (r.key.clone(), r.updated_at)).collect();
            if rows.is_empty() && !first {
                break;
            }
            let options = ImportOptions {
                mode,
                version_floor: if first { table.version_floor } else { None },
            };
            first = false;
            let imported = to.import(&table.name, rows, options).await.map_err(|e| {
                let e = CliError::from(e);
                CliError {
                    message: format!(
                        "{}; the copy stopped in table `{}` after {} of its rows",
                        e.message,
                        table.name,
                        report.written + report.unchanged + report.kept_count
                    ),
                    hint: format!("{}; then run the same copy again", e.hint),
                    ..e
                }
            })?;
            for (outcome, (key, version)) in imported.rows.iter().zip(versions) {
                match outcome {
                    kv_runtime::backend::RowImport::Written => report.written += 1,
                    kv_runtime::backend::RowImport::Unchanged => report.unchanged += 1,
                    kv_runtime::backend::RowImport::KeptNewer { stored_updated_at } => {
                        report.kept_count += 1;
                        if report.kept.len() < 20 {
                            report.kept.push((key, *stored_updated_at, version));
                        }
                    }
                }
            }
            bar.inc(imported.rows.len() as u64);
            match last {
                Some(last) if full => after = Some(last),
                _ => break,
            }
        }
        bar.finish_and_clear();
        reports.push(report);
    }
    let left_out = not_carried(&mut *snapshot, only).await;
    Ok((reports, left_out))
}
