//! The ops command line, embedded in the app's own binary (feature `cli`):
//! `myapp kv get siteConfig banner` when the admin page is down.
//!
//! Every command goes through the app's typed [`Table`](crate::Table)s, so
//! a write from the shell is checked like any other: the key enum, the
//! value's validation, hooks, rate limits, and `updated_by` (by default
//! `cli:<OS user>`, an internal caller; [`Cli::caller`] picks another).
//!
//! ```no_run
//! use kv_runtime::{cli::Cli, Kv, Store};
//! # #[derive(Kv, serde::Serialize, serde::Deserialize, Clone, Debug)]
//! # #[kv(keys = [banner], write_role = admin, soft_delete)]
//! # struct SiteConfig { message: String }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let url = std::env::var("KV_URL").unwrap_or_else(|_| "sqlite://app.db".into());
//!     let store = match Store::open(&url).await {
//!         Ok(store) => store,
//!         Err(e) => return kv_runtime::cli::fail(e.into(), false),
//!     };
//!     Cli::new(store).table::<SiteConfig>().run().await
//! }
//! ```
//!
//! An app with a command line of its own hands over the arguments after
//! its `kv` subcommand with [`Cli::run_from`], which returns the exit code.
//!
//! # Commands
//!
//! | command | what it does |
//! |---|---|
//! | `tables` | the registered tables: rows, deleted rows, soft delete, write role |
//! | `get TABLE KEY` | the live row (`NOT_FOUND` when there is none) |
//! | `list TABLE [--deleted]` | every live row in key order; with `--deleted`, soft-deleted rows too |
//! | `set TABLE KEY (JSON \| -) [--expect VERSION \| --if-absent]` | stores the value (`-`: read from stdin); `--expect` only if the row is still at that version, `--if-absent` only if there is no live row |
//! | `rm TABLE KEY` | deletes the live row (soft on `soft_delete` tables); `NOT_FOUND` when there is none |
//! | `restore TABLE KEY` | brings back a soft-deleted row (`soft_delete` tables only) |
//! | `watch TABLE [KEY]` | the current state, then one line per change, until Ctrl-C |
//! | `purge TABLE --older-than 30d` | removes rows soft-deleted longer ago (`s`, `m`, `h`, `d`) |
//!
//! Output is an aligned table (key, version, age, who wrote last, value)
//! for people; `--json` prints one JSON object per line (`key`, `value`,
//! `created_at`, `updated_at` — the version — `deleted_at`, `updated_by`),
//! and errors as `{"error": {"code", "exit", "message", "hint"}}` on
//! stderr.
//!
//! # Exit codes
//!
//! The same for this command line and the standalone `kv` binary
//! (`kv-runtime-cli`). Each error prints its code and what to do.
//!
//! | exit | [`Exit`] | codes | when |
//! |---|---|---|---|
//! | 0 | `Ok` | | done |
//! | 1 | `Internal` | `INTERNAL`, `UNREADABLE`, `NEWER_SCHEMA` | a bug, or a stored row that no longer reads with the schema, or that a newer version of the program wrote (upgrade this one) |
//! | 2 | `Usage` | `USAGE` | arguments the command does not take, an unknown table, `restore` on a table without soft delete |
//! | 3 | `NotFound` | `NOT_FOUND` | `get`, `rm` or `restore` of a key with no such row; `export` of a table the store does not have |
//! | 4 | `Conflict` | `CONFLICT` | a stale `--expect`, `--if-absent` with a live row, an import that kept newer rows |
//! | 5 | `Forbidden` | `FORBIDDEN` | the caller the app chose may not write or list this table |
//! | 6 | `Invalid` | `VALIDATION_FAILED`, `INVALID_JSON`, `INVALID_KEY`, `REJECTED`, `INVALID_CURSOR`, `BAD_FILE` | a value failing validation, JSON that does not parse or fit, a key the table does not declare, a hook's refusal, a truncated or corrupt export file |
//! | 7 | `Unavailable` | `BACKEND`, `RATE_LIMITED`, `CONTENDED` | the store is unavailable or busy: retry later |
//! | 8 | `Config` | `CONFIG` | the store URL or a setting cannot be used |

mod args;
mod exit;
mod output;
mod table;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

pub use exit::{CliError, Exit};
pub use output::printable;

use self::args::{Args, Command};
use self::output::Out;
use self::table::{CliTable, SetMode, Typed};
use crate::context::Ctx;
use crate::schema::{KvSchema, WriteRole};
use crate::store::Store;

/// The command line over the tables of one [`Store`]. See the
/// [module documentation](self).
pub struct Cli {
    store: Store,
    tables: Vec<Arc<dyn CliTable>>,
    caller: Ctx,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tables.iter().map(|t| t.name()).collect();
        f.debug_struct("Cli")
            .field("store", &self.store)
            .field("tables", &names)
            .field("caller", &self.caller)
            .finish()
    }
}

/// The caller the command line writes as by default: internal, named
/// `cli:<OS user>` in `updated_by` (`$USER`, `$LOGNAME` or `$USERNAME`).
pub fn default_caller() -> Ctx {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    Ctx::internal().with_actor(format!("cli:{user}"))
}

/// Prints `error` (as JSON with `json`) and returns its exit code: for
/// failures before a [`Cli`] exists, such as a store that does not open.
pub fn fail(error: CliError, json: bool) -> ExitCode {
    error.print(json);
    error.exit.into()
}

impl Cli {
    /// A command line with no tables yet, writing as [`default_caller`].
    pub fn new(store: Store) -> Self {
        Cli {
            store,
            tables: Vec::new(),
            caller: default_caller(),
        }
    }

    /// Adds table `S`; commands name it by its storage name
    /// ([`KvSchema::TABLE`]).
    pub fn table<S: KvSchema>(mut self) -> Self {
        self.tables
            .push(Arc::new(Typed::new(self.store.table::<S>())));
        self
    }

    /// The caller every command runs as (default: [`default_caller`]). A
    /// caller without a table's write role gets `FORBIDDEN` there.
    pub fn caller(mut self, ctx: Ctx) -> Self {
        self.caller = ctx;
        self
    }

    /// Runs the command in the process's arguments, and returns the exit
    /// code for `main` to return.
    pub async fn run(self) -> ExitCode {
        ExitCode::from(self.run_from(std::env::args_os()).await)
    }

    /// Runs the command in `args` (the first is the program's name, as
    /// clap takes them: pass `["myapp kv", "get", ...]` from an app's own
    /// `kv` subcommand) and returns the [exit code](self#exit-codes).
    pub async fn run_from<I, T>(self, args: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = match Args::try_parse_from(args) {
            Ok(args) => args,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    Exit::Usage.code()
                } else {
                    Exit::Ok.code()
                };
            }
        };
        let out = Out {
            json: args.json,
            now: self.store.now(),
        };
        match self.execute(args.command, out).await {
            Ok(()) => Exit::Ok.code(),
            Err(e) => {
                e.print(out.json);
                e.exit.code()
            }
        }
    }

    fn find(&self, name: &str) -> Result<&dyn CliTable, CliError> {
        self.tables
            .iter()
            .find(|t| t.name() == name)
            .map(|t| &**t)
            .ok_or_else(|| {
                let names: Vec<&str> = self.tables.iter().map(|t| t.name()).collect();
                CliError::usage(format!(
                    "no table `{name}`; the tables are: {}",
                    names.join(", ")
                ))
            })
    }

    async fn execute(&self, command: Command, out: Out) -> Result<(), CliError> {
        let ctx = &self.caller;
        match command {
            Command::Tables => self.tables(out).await,
            Command::Get { table, key } => {
                let row = self.find(&table)?.get(&key).await?.ok_or_else(|| {
                    CliError::new(
                        "NOT_FOUND",
                        Exit::NotFound,
                        format!("no live row {key:?} in table `{table}`"),
                        "`list TABLE --deleted` shows deleted rows; `restore` brings one back",
                    )
                })?;
                output::rows(out, &[row], false, None);
                Ok(())
            }
            Command::List { table, deleted } => {
                let rows = self.find(&table)?.list(ctx, deleted).await?;
                output::rows(out, &rows, deleted, Some(60));
                Ok(())
            }
            Command::Set {
                table,
                key,
                value,
                expect,
                if_absent,
            } => {
                let t = self.find(&table)?;
                let json = if value == "-" {
                    let mut text = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(
                        |e| {
                            CliError::new(
                                "INVALID_JSON",
                                Exit::Invalid,
                                format!("cannot read the value from stdin: {e}"),
                                "pipe the value's JSON in, as UTF-8",
                            )
                        },
                    )?;
                    text
                } else {
                    value
                };
                let mode = match (expect, if_absent) {
                    (Some(v), _) => SetMode::Expect(v),
                    (None, true) => SetMode::IfAbsent,
                    (None, false) => SetMode::Any,
                };
                let row = t.set(ctx, &key, &json, mode).await?;
                output::rows(out, &[row], false, None);
                Ok(())
            }
            Command::Rm { table, key } => {
                if !self.find(&table)?.rm(ctx, &key).await? {
                    return Err(CliError::new(
                        "NOT_FOUND",
                        Exit::NotFound,
                        format!("no live row {key:?} in table `{table}`; nothing was deleted"),
                        "check the key with `list TABLE`",
                    ));
                }
                if out.json {
                    output::json_line(&serde_json::json!({ "key": key, "deleted": true }));
                } else {
                    output::print(&format!("deleted {key:?} from `{table}`\n"));
                }
                Ok(())
            }
            Command::Restore { table, key } => {
                let row = self.find(&table)?.restore(ctx, &key).await?;
                output::rows(out, &[row], false, None);
                Ok(())
            }
            Command::Watch { table, key } => self.watch(&table, key.as_deref(), out).await,
            Command::Purge { table, older_than } => {
                let purged = self.find(&table)?.purge(older_than.0).await?;
                if out.json {
                    output::json_line(&serde_json::json!({ "table": table, "purged": purged }));
                } else {
                    output::print(&format!(
                        "purged {purged} rows of `{table}` deleted more than {} ago\n",
                        args::show_duration(older_than.0)
                    ));
                }
                Ok(())
            }
        }
    }

    async fn tables(&self, out: Out) -> Result<(), CliError> {
        let stored = self.store.backend.tables().await?;
        let mut cells = Vec::new();
        for t in &self.tables {
            let info = stored.iter().find(|i| i.name == t.name());
            let (rows, deleted) = info.map_or((0, 0), |i| (i.rows, i.deleted_rows));
            let role = match t.write_role() {
                WriteRole::Internal => "internal".to_owned(),
                WriteRole::Public => "public".to_owned(),
                WriteRole::Role(r) => r.to_owned(),
                WriteRole::Predicate(p) => format!("predicate {p}"),
            };
            if out.json {
                output::json_line(&serde_json::json!({
                    "table": t.name(),
                    "rows": rows - deleted,
                    "deleted_rows": deleted,
                    "soft_delete": t.soft_delete(),
                    "write_role": role,
                }));
            }
            cells.push(vec![
                t.name().to_owned(),
                (rows - deleted).to_string(),
                deleted.to_string(),
                if t.soft_delete() { "yes" } else { "no" }.to_owned(),
                role,
            ]);
        }
        if !out.json {
            output::print(&output::aligned(
                &["TABLE", "ROWS", "DELETED", "SOFT_DELETE", "WRITE_ROLE"],
                &cells,
            ));
        }
        Ok(())
    }

    async fn watch(&self, table: &str, key: Option<&str>, out: Out) -> Result<(), CliError> {
        let mut watch = self.find(table)?.watch(key).await?;
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            let state = tokio::select! {
                state = watch.next() => state?,
                _ = &mut stop => return Ok(()),
            };
            let Some((key, row)) = state else {
                return Ok(());
            };
            match (&row, out.json) {
                (Some(row), true) => output::json_line(row),
                (None, true) => {
                    output::json_line(&serde_json::json!({ "key": key, "value": null }))
                }
                (Some(row), false) => output::print(&format!(
                    "{}  version {}  by {}  {}\n",
                    printable(&key),
                    row.updated_at,
                    printable(row.updated_by.as_deref().unwrap_or("-")),
                    printable(&row.value.to_string())
                )),
                (None, false) => output::print(&format!("{}  (no live row)\n", printable(&key))),
            }
        }
    }
}
