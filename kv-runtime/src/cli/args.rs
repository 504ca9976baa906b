//! The arguments, as clap derives them.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Inspect and edit the app's kv tables; writes go through the app's
/// typed tables (validation, hooks, `updated_by`).
#[derive(Debug, Parser)]
#[command(name = "kv", disable_help_subcommand = true)]
pub(super) struct Args {
    /// Print one JSON object per line (and errors as JSON) instead of a
    /// table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// List the tables: rows, deleted rows, soft delete, write role.
    Tables,
    /// Show the live row of KEY.
    Get { table: String, key: String },
    /// List the live rows in key order.
    List {
        table: String,
        /// Also the soft-deleted rows.
        #[arg(long)]
        deleted: bool,
    },
    /// Store a value (JSON, or `-` to read it from stdin).
    Set {
        table: String,
        key: String,
        /// The value as JSON, or `-` for stdin.
        value: String,
        /// Only if the row is still at this version (its updated_at).
        #[arg(long, conflicts_with = "if_absent")]
        expect: Option<i64>,
        /// Only if there is no live row.
        #[arg(long)]
        if_absent: bool,
    },
    /// Delete the live row (soft on soft_delete tables).
    Rm { table: String, key: String },
    /// Bring back a soft-deleted row.
    Restore { table: String, key: String },
    /// Print the current state, then one line per change, until Ctrl-C.
    Watch { table: String, key: Option<String> },
    /// Remove rows soft-deleted longer ago than --older-than.
    Purge {
        table: String,
        /// How long deleted rows are kept: 90s, 15m, 12h, 30d.
        #[arg(long, value_parser = parse_duration)]
        older_than: Age,
    },
}

/// A duration given as `30d`, `12h`, `15m` or `90s`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Age(pub Duration);

pub(super) fn parse_duration(text: &str) -> Result<Age, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; use 90s, 15m, 12h or 30d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: the unit must be s, m, h or d (e.g. 30d)"
            ))
        }
    };
    n.checked_mul(secs)
        .map(|s| Age(Duration::from_secs(s)))
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `d` in the largest whole unit it is a multiple of.
pub(super) fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap().0,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("90s").unwrap().0, Duration::from_secs(90));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3w").is_err());
        assert_eq!(show_duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
