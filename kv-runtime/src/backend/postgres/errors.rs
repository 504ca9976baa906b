//! Turning driver and pool errors into [`Error`]s that say what failed.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::{Error, FieldError};

/// A database or connection error, with the server's message when it sent one.
pub(super) fn pg_error(target: &str, op: &str, e: tokio_postgres::Error) -> Error {
    Error::backend(
        format!("PostgreSQL ({target}): {op} failed: {}", describe(&e)),
        e,
    )
}

/// Like [`pg_error`], but text PostgreSQL cannot store (NUL in a JSONB
/// string or in text) is the caller's value at fault: VALIDATION_FAILED.
/// The table name is left empty for the table layer to fill in.
pub(super) fn write_error(target: &str, op: &str, e: tokio_postgres::Error) -> Error {
    let code = e.as_db_error().map(|db| db.code().clone());
    match code {
        Some(SqlState::UNTRANSLATABLE_CHARACTER) => Error::ValidationFailed {
            table: "",
            fields: vec![FieldError::new(
                "",
                "PostgreSQL cannot store the NUL character (\\u0000) in JSON text",
            )],
        },
        Some(SqlState::CHARACTER_NOT_IN_REPERTOIRE) => Error::ValidationFailed {
            table: "",
            fields: vec![FieldError::new(
                "",
                "PostgreSQL cannot store the NUL character in text",
            )],
        },
        _ => pg_error(target, op, e),
    }
}

pub(super) fn pool_error(target: &str, op: &str, e: PoolError) -> Error {
    let detail = match &e {
        PoolError::Backend(pg) => describe(pg),
        PoolError::Timeout(_) => format!("{e} (all connections busy, or the server is slow)"),
        other => other.to_string(),
    };
    Error::backend(
        format!("PostgreSQL ({target}): {op}: cannot get a connection: {detail}"),
        e,
    )
}

pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
