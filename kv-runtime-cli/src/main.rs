//! `kv`: what needs no types. Export, import, copy and check a kv store.
//! Exit codes are those of `kv_runtime::cli` (see its docs).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kv_runtime::backend::{CheckState, ImportMode};
use kv_runtime::cli::{printable, CliError, Exit};
use kv_runtime::Store;
use kv_runtime_cli::import::TableReport;

/// Export, import, copy and check kv stores (SQLite, PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "kv", version, disable_help_subcommand = true)]
struct Args {
    /// The store: sqlite://path/to/file.db or postgres://user@host/db.
    #[arg(long, env = "KV_URL", global = true, hide_env_values = true)]
    url: Option<String>,
    /// Print JSON (one object per line; errors as JSON on stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The store's tables (rows, soft-deleted rows, version floor, history
    /// records) and logs (entries).
    Tables,
    /// Every row (soft-deleted ones too) as JSON Lines, as of one moment.
    Export {
        /// Only these tables (default: all).
        tables: Vec<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Restore the rows of an export exactly; a newer stored row is kept.
    Import {
        /// A file written by `kv export`.
        file: PathBuf,
        /// Overwrite stored rows even when they are newer than the file's.
        #[arg(long)]
        force: bool,
    },
    /// Copy every table of one store into another, as of one moment.
    Copy {
        /// The source store's URL.
        #[arg(long)]
        from: String,
        /// The target store's URL.
        #[arg(long)]
        to: String,
        /// Only these tables (default: all).
        tables: Vec<String>,
        /// Overwrite stored rows even when they are newer than the source's.
        #[arg(long)]
        force: bool,
    },
    /// Check the store: schema, integrity, versions and floors, change feed.
    Doctor,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    let json = args.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return kv_runtime::cli::fail(
                CliError::new("INTERNAL", Exit::Internal, e.to_string(), ""),
                json,
            )
        }
    };
    match runtime.block_on(run(args)) {
        Ok(exit) => exit.into(),
        Err(e) => kv_runtime::cli::fail(e, json),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn open(url: Option<&str>) -> Result<Store, CliError> {
    let url = url.ok_or_else(|| {
        CliError::usage("no store: give `--url sqlite://path.db` (or postgres://...) or set KV_URL")
    })?;
    Ok(Store::open(url).await?)
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn json_line(value: serde_json::Value) {
    print(&format!("{value}\n"));
}

async fn run(args: Args) -> Result<Exit, CliError> {
    let json = args.json;
    match args.command {
        Command::Tables => {
            let store = open(args.url.as_deref()).await?;
            // One snapshot: the counts agree with each other.
            let mut snapshot = store.backend().snapshot().await?;
            let tables = snapshot.tables().await?;
            let other = snapshot.other_data().await?;
            drop(snapshot);
            let history = |name: &str| {
                other
                    .history_records
                    .iter()
                    .find(|(t, _)| t == name)
                    .map_or(0, |(_, n)| *n)
            };
            if json {
                for t in &tables {
                    json_line(serde_json::json!({
                        "table": t.name, "rows": t.rows - t.deleted_rows,
                        "deleted_rows": t.deleted_rows, "version_floor": t.version_floor,
                        "history_records": history(&t.name),
                    }));
                }
                for (log, entries) in &other.log_entries {
                    json_line(serde_json::json!({ "log": log, "entries": entries }));
                }
            } else {
                print("TABLE\tROWS\tDELETED\tVERSION_FLOOR\tHISTORY\n");
                for t in &tables {
                    let floor = t.version_floor.map_or("-".to_owned(), |f| f.to_string());
                    print(&format!(
                        "{}\t{}\t{}\t{floor}\t{}\n",
                        printable(&t.name),
                        t.rows - t.deleted_rows,
                        t.deleted_rows,
                        history(&t.name)
                    ));
                }
                if !other.log_entries.is_empty() {
                    print("\nLOG\tENTRIES\n");
                    for (log, entries) in &other.log_entries {
                        print(&format!("{}\t{entries}\n", printable(log)));
                    }
                }
            }
            Ok(Exit::Ok)
        }
        Command::Export { tables, output } => {
            let store = open(args.url.as_deref()).await?;
            let exported = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path).map_err(|e| {
                        CliError::usage(format!("cannot create {}: {e}", path.display()))
                    })?;
                    let mut out = std::io::BufWriter::new(file);
                    let done = kv_runtime_cli::export::export(
                        &**store.backend(),
                        &tables,
                        now_ms(),
                        &mut out,
                        true,
                    )
                    .await?;
                    out.into_inner()
                        .map_err(|e| CliError::usage(format!("cannot write the export: {e}")))?
                        .sync_all()
                        .map_err(|e| CliError::usage(format!("cannot write the export: {e}")))?;
                    done
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    kv_runtime_cli::export::export(
                        &**store.backend(),
                        &tables,
                        now_ms(),
                        &mut out,
                        true,
                    )
                    .await?
                }
            };
            let summary = format!(
                "exported {} rows of {} tables",
                exported.rows,
                exported.tables.len()
            );
            if output.is_some() && !json {
                print(&format!("{summary}\n"));
            } else {
                eprintln!("{summary}");
            }
            if let Some(note) = kv_runtime_cli::export::left_out_note("export", &exported.left_out)
            {
                eprintln!("{}", printable(&note));
            }
            Ok(Exit::Ok)
        }
        Command::Import { file, force } => {
            let plan = kv_runtime_cli::import::check(&file)?;
            let store = open(args.url.as_deref()).await?;
            let mode = if force {
                ImportMode::Overwrite
            } else {
                ImportMode::KeepNewer
            };
            let reports =
                kv_runtime_cli::import::apply(&**store.backend(), &file, &plan, mode, true).await?;
            report(&reports, json, "import")
        }
        Command::Copy {
            from,
            to,
            tables,
            force,
        } => {
            let source = open(Some(&from)).await?;
            let target = open(Some(&to)).await?;
            let mode = if force {
                ImportMode::Overwrite
            } else {
                ImportMode::KeepNewer
            };
            let (reports, left_out) = kv_runtime_cli::copy::copy(
                &**source.backend(),
                &**target.backend(),
                &tables,
                mode,
                true,
            )
            .await?;
            if let Some(note) = kv_runtime_cli::export::left_out_note("copy", &left_out) {
                eprintln!("{}", printable(&note));
            }
            report(&reports, json, "copy")
        }
        Command::Doctor => {
            let store = open(args.url.as_deref()).await?;
            let checks = kv_runtime_cli::doctor::doctor(&store, now_ms()).await;
            let mut worst = Exit::Ok;
            for c in &checks {
                let state = match c.state {
                    CheckState::Ok => "ok",
                    CheckState::Warning => "warning",
                    CheckState::Failed => {
                        worst = Exit::Internal;
                        "FAILED"
                    }
                };
                if json {
                    json_line(serde_json::json!({
                        "check": c.name, "state": state, "detail": c.detail,
                    }));
                } else {
                    print(&format!(
                        "{state:8} {:20} {}\n",
                        printable(&c.name),
                        printable(&c.detail)
                    ));
                }
            }
            Ok(worst)
        }
    }
}

/// Prints what an import or copy did per table; kept newer rows are a
/// `CONFLICT` naming them.
fn report(reports: &[TableReport], json: bool, what: &str) -> Result<Exit, CliError> {
    if json {
        for r in reports {
            let kept: Vec<serde_json::Value> = r
                .kept
                .iter()
                .map(|(k, stored, file)| {
                    serde_json::json!({"key": k, "stored_version": stored, "file_version": file})
                })
                .collect();
            json_line(serde_json::json!({
                "table": r.name, "written": r.written, "unchanged": r.unchanged,
                "kept": r.kept_count, "kept_rows": kept,
            }));
        }
    } else {
        print("TABLE\tWRITTEN\tUNCHANGED\tKEPT_NEWER\n");
        for r in reports {
            print(&format!(
                "{}\t{}\t{}\t{}\n",
                printable(&r.name),
                r.written,
                r.unchanged,
                r.kept_count
            ));
        }
    }
    let kept: u64 = reports.iter().map(|r| r.kept_count).sum();
    if kept == 0 {
        return Ok(Exit::Ok);
    }
    let examples: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.kept.iter().map(move |(k, stored, file)| {
                format!("`{}` {k:?} (stored version {stored}, given {file})", r.name)
            })
        })
        .take(5)
        .collect();
    Err(CliError::new(
        "CONFLICT",
        Exit::Conflict,
        format!(
            "the {what} kept {kept} stored rows that are newer than the ones given: {}; \
             everything else was applied",
            examples.join(", ")
        ),
        "leave them (they changed after the export), or run again with --force to overwrite them",
    ))
}
