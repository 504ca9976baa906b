//! Exit codes and the errors the command line prints.

use std::fmt;

use crate::error::{Error, ErrorCode};

/// The exit status of a command: one per kind of failure, so that a script
/// can tell them apart. The [table](crate::cli#exit-codes) lists which
/// error codes each one covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0: done.
    Ok,
    /// 1: a bug, or stored data this program cannot read or overwrite
    /// (`INTERNAL`, `UNREADABLE`, `NEWER_SCHEMA`).
    Internal,
    /// 2: arguments the command does not take, or an unknown table
    /// (`USAGE`).
    Usage,
    /// 3: no such row (`NOT_FOUND`).
    NotFound,
    /// 4: the row changed meanwhile, or exists already, or an import kept
    /// newer rows (`CONFLICT`).
    Conflict,
    /// 5: the caller may not do this (`FORBIDDEN`).
    Forbidden,
    /// 6: input that is refused: a value failing validation, JSON that
    /// does not parse, a key the table does not declare, a hook's refusal,
    /// a corrupt export file (`VALIDATION_FAILED`, `INVALID_JSON`,
    /// `INVALID_KEY`, `INVALID_CURSOR`, `REJECTED`, `BAD_FILE`).
    Invalid,
    /// 7: the store is unavailable or busy; retrying later may succeed
    /// (`BACKEND`, `RATE_LIMITED`, `CONTENDED`).
    Unavailable,
    /// 8: the store URL or a setting cannot be used (`CONFIG`).
    Config,
}

impl Exit {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::NotFound => 3,
            Exit::Conflict => 4,
            Exit::Forbidden => 5,
            Exit::Invalid => 6,
            Exit::Unavailable => 7,
            Exit::Config => 8,
        }
    }

    /// The exit status for a kv error code.
    pub const fn of(code: ErrorCode) -> Exit {
        match code {
            ErrorCode::NotFound => Exit::NotFound,
            ErrorCode::Conflict => Exit::Conflict,
            ErrorCode::Forbidden => Exit::Forbidden,
            ErrorCode::InvalidKey
            | ErrorCode::ValidationFailed
            | ErrorCode::InvalidCursor
            | ErrorCode::Rejected => Exit::Invalid,
            ErrorCode::Backend | ErrorCode::RateLimited | ErrorCode::Contended => Exit::Unavailable,
            ErrorCode::Config => Exit::Config,
            ErrorCode::Unreadable | ErrorCode::NewerSchema | ErrorCode::Internal => Exit::Internal,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// A failed command: a code (a kv [`ErrorCode`] or one of the command
/// line's own: `USAGE`, `INVALID_JSON`, `BAD_FILE`), what happened, and
/// what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// The code, as printed (`"CONFLICT"`, `"USAGE"`, ...).
    pub code: &'static str,
    /// The exit status.
    pub exit: Exit,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl CliError {
    /// An error with a code of the command line's own.
    pub fn new(
        code: &'static str,
        exit: Exit,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        CliError {
            code,
            exit,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Arguments the command does not take.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new("USAGE", Exit::Usage, message, "see `--help`")
    }

    /// The error as JSON: `{"error": {"code", "exit", "message", "hint"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": {
            "code": self.code,
            "exit": self.exit.code(),
            "message": self.message,
            "hint": self.hint,
        }})
    }

    /// Prints the error on stderr: as JSON, or as `error[CODE]: message`
    /// and the hint on the next line.
    pub fn print(&self, json: bool) {
        if json {
            eprintln!("{}", self.to_json());
        } else {
            eprintln!("{self}");
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote what the store holds (keys, names, stored text).
        let printable = super::output::printable;
        write!(f, "error[{}]: {}", self.code, printable(&self.message))?;
        if !self.hint.is_empty() {
            write!(f, "\n  what to do: {}", printable(&self.hint))?;
        }
        Ok(())
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let code = e.code();
        let hint = match code {
            ErrorCode::NotFound => "check the key; `list TABLE --deleted` shows deleted rows",
            ErrorCode::Conflict => {
                "read the row again (`get TABLE KEY`) and retry with its version in `--expect`"
            }
            ErrorCode::Forbidden => {
                "the command line writes as the caller the app chose, which lacks the write role"
            }
            ErrorCode::InvalidKey => "use one of the table's keys",
            ErrorCode::ValidationFailed => "fix the fields named and run the command again",
            ErrorCode::Rejected => "a hook of the app refused the write; change the value",
            ErrorCode::InvalidCursor => "start again without a cursor",
            ErrorCode::RateLimited | ErrorCode::Contended | ErrorCode::Backend => {
                "the store is unavailable or busy: retry later, and check it with `kv doctor`"
            }
            ErrorCode::Config => "check the store URL and its options",
            ErrorCode::Unreadable => "fix or remove the stored row, or make the schema accept it",
            _ => "this is a bug; please report it with the message",
        };
        CliError::new(code.as_str(), Exit::of(code), e.to_string(), hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_an_exit_status() {
        for code in ErrorCode::ALL {
            let exit = Exit::of(*code);
            assert_ne!(exit, Exit::Ok);
            assert_ne!(exit, Exit::Usage);
        }
        assert_eq!(Exit::of(ErrorCode::ValidationFailed).code(), 6);
        assert_eq!(Exit::of(ErrorCode::Conflict).code(), 4);
    }

    #[test]
    fn messages_print_without_raw_control_characters() {
        let e = CliError::new(
            "BACKEND",
            Exit::Unavailable,
            "stored text \u{1b}]0;owned\u{7} here",
            "hint \u{9b}2J",
        );
        let text = e.to_string();
        assert_eq!(
            text,
            "error[BACKEND]: stored text \\u{1b}]0;owned\\u{7} here\n  what to do: hint \\u{9b}2J"
        );
        // JSON keeps the text exactly (serde_json escapes what it must).
        assert_eq!(
            e.to_json()["error"]["message"],
            "stored text \u{1b}]0;owned\u{7} here"
        );
    }
}
