//! Turning driver and pool errors into [`Error`]s that say what failed,
//! whether a write may have been applied, and, for TLS, which check
//! refused the server. No message holds a password: they name the
//! endpoint by `host:port/database` only.

use std::time::Duration;

use deadpool_postgres::{HookError, PoolError};
use tokio_postgres::error::SqlState;

use super::settings::Endpoint;
use super::tls;
use crate::error::{Error, FieldError};

/// A database or connection error of a read, with the server's message
/// when it sent one.
pub(super) fn pg_error(target: &str, op: &str, e: tokio_postgres::Error) -> Error {
    Error::backend(
        format!("PostgreSQL ({target}): {op} failed: {}", describe(&e)),
        e,
    )
}

/// An error of a write. Text PostgreSQL cannot store (NUL in a JSONB
/// string or in text) is the caller's value at fault: VALIDATION_FAILED
/// (the table name is left empty for the table layer to fill in). An
/// error the server reported means the statement failed and changed
/// nothing; a lost connection leaves the outcome unknown, and says so.
pub(super) fn write_error(
    target: &str,
    op: &str,
    lock_timeout: Duration,
    e: tokio_postgres::Error,
) -> Error {
    let Some(code) = e.as_db_error().map(|db| db.code().clone()) else {
        return Error::backend(
            format!(
                "PostgreSQL ({target}): {op} failed: {}; the write may or may not have been \
                 applied: read the row before retrying",
                describe(&e)
            ),
            e,
        );
    };
    match code {
        SqlState::UNTRANSLATABLE_CHARACTER => Error::ValidationFailed {
            table: "",
            fields: vec![FieldError::new(
                "",
                "PostgreSQL cannot store the NUL character (\\u0000) in JSON text",
            )],
        },
        SqlState::CHARACTER_NOT_IN_REPERTOIRE => Error::ValidationFailed {
            table: "",
            fields: vec![FieldError::new(
                "",
                "PostgreSQL cannot store the NUL character in text",
            )],
        },
        SqlState::LOCK_NOT_AVAILABLE => Error::backend(
            format!(
                "PostgreSQL ({target}): {op} waited longer than lock_timeout ({lock_timeout:?}) \
                 for a row lock that another transaction holds ({}); nothing was written, retry \
                 later",
                describe(&e)
            ),
            e,
        ),
        _ => Error::backend(
            format!(
                "PostgreSQL ({target}): {op} failed: {}; nothing was written",
                describe(&e)
            ),
            e,
        ),
    }
}

/// A failure to get a pooled connection: a certificate problem (or TLS
/// required from a server without it) is [`Error::Config`], anything
/// else [`Error::Backend`].
pub(super) fn pool_error(endpoint: &Endpoint, op: &str, e: PoolError) -> Error {
    let target = &endpoint.target;
    match e {
        PoolError::Backend(pg) => connect_error(endpoint, &format!("{op}: connecting"), pg),
        PoolError::PostCreateHook(HookError::Backend(pg)) => Error::backend(
            format!(
                "PostgreSQL ({target}): {op}: setting up a new connection failed: {}",
                describe(&pg)
            ),
            pg,
        ),
        other => Error::backend(
            format!("PostgreSQL ({target}): {op}: cannot get a connection: {other}"),
            other,
        ),
    }
}

/// A failure to open a connection.
pub(super) fn connect_error(endpoint: &Endpoint, what: &str, e: tokio_postgres::Error) -> Error {
    let target = &endpoint.target;
    match tls::problem(&e, endpoint) {
        Some(problem) => Error::Config(format!("PostgreSQL ({target}): {what}: {problem}")),
        None => Error::backend(
            format!("PostgreSQL ({target}): {what} failed: {}", describe(&e)),
            e,
        ),
    }
}

/// What a call is, for the message when its deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads: the read pool.
    Read,
    /// Writes (and rate-limit hits, purges): the write pool.
    Write,
}

/// A call that reached its deadline (`op_timeout`). `sent`: whether a
/// statement had gone to the server.
pub(super) fn deadline_error(
    target: &str,
    op: &str,
    access: Access,
    sent: bool,
    limit: Duration,
) -> Error {
    let pool = match access {
        Access::Read => "read",
        Access::Write => "write",
    };
    let message = match (access, sent) {
        (Access::Write, false) => format!(
            "PostgreSQL ({target}): {op} did not start within op_timeout ({limit:?}): no \
             connection of the {pool} pool became free (all busy, or the server is slow to \
             accept connections); nothing was written, retry later"
        ),
        (Access::Write, true) => format!(
            "PostgreSQL ({target}): {op} did not finish within op_timeout ({limit:?}); the \
             server may be paused, unreachable or overloaded. The write may or may not have \
             been applied: read the row before retrying"
        ),
        (Access::Read, false) => format!(
            "PostgreSQL ({target}): {op} did not start within op_timeout ({limit:?}): no \
             connection of the {pool} pool became free (all busy, or the server is slow to \
             accept connections); retry later"
        ),
        (Access::Read, true) => format!(
            "PostgreSQL ({target}): {op} did not finish within op_timeout ({limit:?}); the \
             server may be paused, unreachable or overloaded; retry later"
        ),
    };
    Error::backend_msg(message)
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
