//! The one error type of `kv`, with stable codes.

use std::fmt;
use std::time::Duration;

/// Result alias used throughout `kv`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stable, machine-readable error code.
///
/// Codes never change meaning between releases; match on them (or on
/// [`ErrorCode::as_str`]) rather than on messages. Each maps to exactly one
/// HTTP status ([`ErrorCode::http_status`]) and is retryable or not
/// ([`ErrorCode::is_retryable`]). The [error table](crate#errors) says, for
/// every code, its status, whether to retry, when it happens and the
/// details it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The key is not one of the table's keys, or is not an acceptable key text.
    InvalidKey,
    /// The value broke a field constraint or the table's size limit, or
    /// would not read back; or a request parameter (a page size) is out of
    /// range.
    ValidationFailed,
    /// The caller may not perform this operation.
    Forbidden,
    /// The stored row's `updated_at` differs from the one the caller expected.
    Conflict,
    /// The row does not exist (`restore`), or its history holds no such
    /// version (`revert`).
    NotFound,
    /// A pagination cursor that is malformed or belongs to another table.
    InvalidCursor,
    /// Too many writes by this caller in the table's window.
    RateLimited,
    /// A hook registered on the table refused the write.
    Rejected,
    /// Other writers kept changing the row while the write's before-hooks
    /// ran; nothing was written. Retryable.
    Contended,
    /// A stored row cannot be read with the table's schema (its value no
    /// longer decodes, or its key is no longer declared). Not retryable: the
    /// data or the schema must change.
    Unreadable,
    /// A write would overwrite a row that a newer version of the table's
    /// schema wrote (and drop the fields this program does not know);
    /// nothing was written. Not retryable: deploy the newer code.
    NewerSchema,
    /// A URL, option or setting cannot be used; fix the configuration.
    Config,
    /// A bug: a hook panicked, or a backend broke its contract. Not
    /// retryable.
    Internal,
    /// The storage backend is unavailable or failed; the call may be retried.
    Backend,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"INVALID_KEY"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidKey => "INVALID_KEY",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidCursor => "INVALID_CURSOR",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Rejected => "REJECTED",
            ErrorCode::Contended => "CONTENDED",
            ErrorCode::Unreadable => "UNREADABLE",
            ErrorCode::NewerSchema => "NEWER_SCHEMA",
            ErrorCode::Config => "CONFIG",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::Backend => "BACKEND",
        }
    }

    /// The HTTP status the web layer answers with for this code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidKey | ErrorCode::InvalidCursor => 400,
            ErrorCode::ValidationFailed | ErrorCode::Rejected => 422,
            ErrorCode::Forbidden => 403,
            ErrorCode::Conflict | ErrorCode::NewerSchema => 409,
            ErrorCode::NotFound => 404,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unreadable | ErrorCode::Config | ErrorCode::Internal => 500,
            ErrorCode::Contended | ErrorCode::Backend => 503,
        }
    }

    /// Whether retrying the same call later may succeed without changing
    /// it: a storage outage, a rate limit, contention on the row.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Backend | ErrorCode::RateLimited | ErrorCode::Contended
        )
    }

    /// Every code, in the order of the reference table.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::InvalidKey,
        ErrorCode::InvalidCursor,
        ErrorCode::ValidationFailed,
        ErrorCode::Forbidden,
        ErrorCode::Conflict,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::Rejected,
        ErrorCode::Contended,
        ErrorCode::Unreadable,
        ErrorCode::NewerSchema,
        ErrorCode::Config,
        ErrorCode::Internal,
        ErrorCode::Backend,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken constraint of a value, named by its field path (`"message"`,
/// `"items[2].name"`; empty for the value as a whole).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Path of the field within the value.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error for `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Why a call failed. Every variant has a stable [`ErrorCode`] (see
/// [`Error::code`]); a failed write never changes a row. The
/// [error table](crate#errors) lists the codes, when each happens and
/// the fields each variant carries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorCode::InvalidKey`].
    #[error("invalid key {key:?} for table `{table}`: {reason}")]
    InvalidKey {
        /// The table the key was meant for.
        table: &'static str,
        /// The offending key text (shortened when long).
        key: String,
        /// What is wrong and what to use instead.
        reason: String,
    },
    /// See [`ErrorCode::ValidationFailed`].
    #[error("value for table `{table}` is invalid: {}", summarize(fields))]
    ValidationFailed {
        /// The table written to.
        table: &'static str,
        /// Every broken constraint, by field.
        fields: Vec<FieldError>,
    },
    /// See [`ErrorCode::Forbidden`].
    #[error("{op} on table `{table}` is not allowed for this caller: {required}")]
    Forbidden {
        /// The table.
        table: &'static str,
        /// The refused operation (`"set"`, `"rm"`, `"restore"`, `"list"`,
        /// `"history"`, `"revert"`).
        op: &'static str,
        /// Who may perform it, e.g. "requires role `admin`".
        required: String,
    },
    /// See [`ErrorCode::Conflict`].
    #[error("{}", conflict_message(table, key, *current_updated_at))]
    Conflict {
        /// The table.
        table: &'static str,
        /// The key written.
        key: String,
        /// The stored row's `updated_at`, or `None` when no live row exists.
        current_updated_at: Option<i64>,
    },
    /// See [`ErrorCode::NotFound`].
    #[error("no row with key {key:?} in table `{table}`")]
    NotFound {
        /// The table.
        table: &'static str,
        /// The missing key.
        key: String,
    },
    /// See [`ErrorCode::NotFound`]: a `revert` to a version the row's
    /// history does not hold.
    #[error(
        "row {key:?} of table `{table}` has no version {version} in its history (it was never \
         a version of this row, or its record was trimmed); read the history for the versions \
         it holds"
    )]
    NoSuchVersion {
        /// The table.
        table: &'static str,
        /// The key (shortened when long).
        key: String,
        /// The version asked for.
        version: i64,
    },
    /// See [`ErrorCode::InvalidCursor`].
    #[error("invalid cursor for table `{table}`: {reason}; start again without a cursor")]
    InvalidCursor {
        /// The table listed.
        table: &'static str,
        /// What is wrong with the cursor.
        reason: String,
    },
    /// See [`ErrorCode::RateLimited`].
    #[error("too many writes to table `{table}`; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        /// The table.
        table: &'static str,
        /// How long until the next write will be admitted.
        retry_after: Duration,
    },
    /// See [`ErrorCode::Rejected`].
    #[error("hook `{hook}` on table `{table}` refused the {op}: {message}")]
    Rejected {
        /// The table.
        table: &'static str,
        /// The refused operation (`"set"`, `"rm"` or `"revert"`).
        op: &'static str,
        /// The name the hook was registered under.
        hook: String,
        /// The hook's reason.
        message: String,
    },
    /// See [`ErrorCode::Internal`].
    #[error(
        "hook `{hook}` on table `{table}` panicked ({message}); nothing was written. \
             This is a bug in the hook"
    )]
    HookPanicked {
        /// The table.
        table: &'static str,
        /// The name the hook was registered under.
        hook: String,
        /// The panic message.
        message: String,
    },
    /// See [`ErrorCode::Contended`].
    #[error(
        "{op} of key {key:?} in table `{table}` gave up after {attempts} attempts: other writers \
         kept changing the row while its before-hooks ran; nothing was written, retry later"
    )]
    Contended {
        /// The table.
        table: &'static str,
        /// The key written.
        key: String,
        /// The operation (`"set"` or `"rm"`).
        op: &'static str,
        /// How many times the row was read and the hooks run.
        attempts: usize,
    },
    /// See [`ErrorCode::Unreadable`].
    #[error(
        "the stored row {key:?} of table `{table}` (written by schema version {version}) cannot \
         be read by this program: {reason}; fix or remove the row, or make the schema accept it"
    )]
    Unreadable {
        /// The table.
        table: &'static str,
        /// The row's key text (shortened when long).
        key: String,
        /// The schema version that wrote the row.
        version: u32,
        /// Why it cannot be read (the decoder's message).
        reason: String,
    },
    /// See [`ErrorCode::NewerSchema`].
    #[error(
        "row {key:?} of table `{table}` was written by schema version {stored}, newer than this \
         program's {known}; overwriting it would drop what that version added, so nothing was \
         written: deploy the newer code (or delete the row)"
    )]
    NewerSchema {
        /// The table.
        table: &'static str,
        /// The key written (shortened when long).
        key: String,
        /// The schema version of the stored row.
        stored: u32,
        /// This program's schema version.
        known: u32,
    },
    /// See [`ErrorCode::Config`].
    #[error("{0}")]
    Config(String),
    /// See [`ErrorCode::Internal`]: a backend broke its contract.
    #[error("internal error: {0}; this is a bug, please report it")]
    Internal(String),
    /// See [`ErrorCode::Backend`].
    #[error("storage backend failed: {message}; the call can be retried")]
    Backend {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

fn summarize(fields: &[FieldError]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.path.is_empty() {
                f.message.clone()
            } else {
                format!("{}: {}", f.path, f.message)
            }
        })
        .collect();
    parts.join("; ")
}

fn conflict_message(table: &str, key: &str, current: Option<i64>) -> String {
    match current {
        Some(at) => format!(
            "row {key:?} in table `{table}` was changed by someone else (now at updated_at {at}); \
             read it again and retry with that updated_at"
        ),
        None => format!(
            "row {key:?} in table `{table}` does not exist (or is deleted), so no expected \
             updated_at can match; write without an expected updated_at to create it"
        ),
    }
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidKey { .. } => ErrorCode::InvalidKey,
            Error::ValidationFailed { .. } => ErrorCode::ValidationFailed,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::NotFound { .. } | Error::NoSuchVersion { .. } => ErrorCode::NotFound,
            Error::InvalidCursor { .. } => ErrorCode::InvalidCursor,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Rejected { .. } => ErrorCode::Rejected,
            Error::Contended { .. } => ErrorCode::Contended,
            Error::Unreadable { .. } => ErrorCode::Unreadable,
            Error::NewerSchema { .. } => ErrorCode::NewerSchema,
            Error::HookPanicked { .. } | Error::Internal(_) => ErrorCode::Internal,
            Error::Config(_) => ErrorCode::Config,
            Error::Backend { .. } => ErrorCode::Backend,
        }
    }

    /// Whether retrying the same call later may succeed without changing it
    /// ([`ErrorCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.code().is_retryable()
    }

    /// A backend error with a message and an underlying cause.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A backend error with only a message.
    pub fn backend_msg(message: impl Into<String>) -> Self {
        Error::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// Names `table` in an error a backend raised without knowing the typed
    /// table (backends see table names as plain text).
    pub(crate) fn in_table(self, table: &'static str) -> Self {
        match self {
            Error::ValidationFailed { table: "", fields } => {
                Error::ValidationFailed { table, fields }
            }
            other => other,
        }
    }

    /// An [`Error::Unreadable`] for the row `key` of `table`.
    pub(crate) fn unreadable(
        table: &'static str,
        key: &str,
        version: u32,
        reason: impl fmt::Display,
    ) -> Self {
        Error::Unreadable {
            table,
            key: shorten(key),
            version,
            reason: reason.to_string(),
        }
    }

    /// An [`Error::InvalidKey`]; the key text is shortened for the message.
    pub fn invalid_key(table: &'static str, key: &str, reason: impl Into<String>) -> Self {
        Error::InvalidKey {
            table,
            key: shorten(key),
            reason: reason.into(),
        }
    }
}

/// Shortens user-supplied text for error messages, on a char boundary.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_stable() {
        let table = [
            (ErrorCode::InvalidKey, "INVALID_KEY", 400),
            (ErrorCode::ValidationFailed, "VALIDATION_FAILED", 422),
            (ErrorCode::Forbidden, "FORBIDDEN", 403),
            (ErrorCode::Conflict, "CONFLICT", 409),
            (ErrorCode::NotFound, "NOT_FOUND", 404),
            (ErrorCode::InvalidCursor, "INVALID_CURSOR", 400),
            (ErrorCode::RateLimited, "RATE_LIMITED", 429),
            (ErrorCode::Rejected, "REJECTED", 422),
            (ErrorCode::Contended, "CONTENDED", 503),
            (ErrorCode::Unreadable, "UNREADABLE", 500),
            (ErrorCode::NewerSchema, "NEWER_SCHEMA", 409),
            (ErrorCode::Config, "CONFIG", 500),
            (ErrorCode::Internal, "INTERNAL", 500),
            (ErrorCode::Backend, "BACKEND", 503),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        for (code, text, status) in table {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.http_status(), status);
            assert!(ErrorCode::ALL.contains(&code));
        }
        let retryable: Vec<ErrorCode> = ErrorCode::ALL
            .iter()
            .copied()
            .filter(|c| c.is_retryable())
            .collect();
        assert_eq!(
            retryable,
            [
                ErrorCode::RateLimited,
                ErrorCode::Contended,
                ErrorCode::Backend
            ]
        );
    }

    #[test]
    fn shorten_respects_char_boundaries() {
        let long = "é".repeat(100);
        let s = shorten(&long);
        assert!(s.ends_with("..."));
        assert!(s.len() <= 83);
        assert_eq!(shorten("abc"), "abc");
    }
}
