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
    pub left_out: LeftOut,
}

/// What a transfer left behind: format 1 carries rows and floors only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeftOut {
    /// The history records and log entries it did not carry.
    Counted(OtherData),
    /// Counting them failed (the reason); the rows went across all the
    /// same.
    Unknown(String),
}

/// What of the snapshot a transfer of the tables `only` (all when empty)
/// leaves behind: the history records of those tables, and, when every
/// table goes, the entries of every log. Called after the rows are read:
/// a count that fails (a deadline on a large history, say) costs the note
/// its numbers, not the transfer, and cannot break the snapshot's reads.
pub async fn not_carried(snapshot: &mut dyn Snapshot, only: &[String]) -> LeftOut {
    let all = match snapshot.other_data().await {
        Ok(all) => all,
        Err(e) => return LeftOut::Unknown(e.to_string()),
    };
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
    LeftOut::Counted(OtherData::new(history, logs))
}

/// `n` and `one` or `many`, as the count asks.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The note a transfer (`what`: "export", "copy") prints when it left
/// data behind or could not tell, or `None`.
pub fn left_out_note(what: &str, left_out: &LeftOut) -> Option<String> {
    let left_out = match left_out {
        LeftOut::Counted(data) if data.is_empty() => return None,
        LeftOut::Counted(data) => data,
        LeftOut::Unknown(reason) => {
            return Some(format!(
                "note: the {what} carries rows and version floors only; history records and \
                 log entries the source may hold are not in it, and counting them failed: \
                 {reason}"
            ))
        }
    };
    let list = |items: &[(String, u64)]| -> (u64, String) {
        let total = items.iter().map(|(_, n)| n).sum();
        let named: Vec<String> = items.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        (total, named.join(", "))
    };
    let mut parts = Vec::new();
    if !left_out.history_records.is_empty() {
        let (n, named) = list(&left_out.history_records);
        parts.push(format!(
            "{} ({named})",
            counted(n, "history record", "history records")
        ));
    }
    if !left_out.log_entries.is_empty() {
        let (n, named) = list(&left_out.log_entries);
        parts.push(format!(
            "{} ({named})",
            counted(n, "log entry", "log entries")
        ));
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
    let left_out = not_carried(&mut *snapshot, only).await;
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

#[cfg(test)]
mod tests {
    use kv_runtime::backend::OtherData;

    use super::{left_out_note, LeftOut};

    #[test]
    fn the_note_names_what_was_left_and_says_when_it_could_not_count() {
        let none = LeftOut::Counted(OtherData::default());
        assert_eq!(left_out_note("export", &none), None);
        let one = LeftOut::Counted(OtherData::new(
            vec![("banners".to_owned(), 1)],
            vec![("chat".to_owned(), 1)],
        ));
        let note = left_out_note("copy", &one).unwrap();
        assert!(
            note.starts_with("note: the copy carries rows and version floors only; the source also holds 1 history record (banners: 1) and 1 log entry (chat: 1), which are not in it."),
            "{note}"
        );
        let many = LeftOut::Counted(OtherData::new(
            vec![("a".to_owned(), 2), ("b".to_owned(), 3)],
            vec![],
        ));
        let note = left_out_note("export", &many).unwrap();
        assert!(
            note.contains("holds 5 history records (a: 2, b: 3), which"),
            "{note}"
        );
        assert!(!note.contains("log"), "{note}");
        let unknown = LeftOut::Unknown("the deadline of 5s passed".to_owned());
        let note = left_out_note("export", &unknown).unwrap();
        assert!(
            note.contains("are not in it, and counting them failed: the deadline of 5s passed"),
            "{note}"
        );
    }
}
