//! The PostgreSQL backend (feature `postgres`): for several app servers
//! sharing one database.
//!
//! Open it with [`Store::open`](crate::Store::open) and a
//! `postgres://user:password@host:port/database?option=value&...` URL (or
//! a libpq `key=value` connection string), or with
//! [`PostgresBackend::connect`], a URL and [`PostgresOptions`]: the same
//! settings, builder-style, which the URL's options override.
//!
//! # Options
//!
//! Every option of the URL, parsed once into a typed configuration with
//! libpq's names and meanings (kv's own are marked *kv*). Any other
//! option is refused with [`Error::Config`] naming it and listing these.
//! Percent-encode `@ : / ? # % &` and spaces in the user name, password
//! and option values.
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `host`, `hostaddr`, `port` | libpq's: server names (or socket folders), IP addresses, ports; comma-separated lists are tried in turn | port 5432 |
//! | `dbname`, `user`, `password` | libpq's | user: the OS user; database: the user's name |
//! | `sslmode` | `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (see [TLS](#tls)) | `prefer` |
//! | `sslrootcert` | a PEM file of the CA certificates to trust, or `system` (the system's trust store; needs `verify-full`, as in libpq) | `verify-ca`/`verify-full`: the system's trust store; `prefer`/`require`: none (no check) |
//! | `channel_binding` | `disable`, `prefer` or `require`: SCRAM-SHA-256-PLUS, binding the password exchange to the TLS connection | `prefer` |
//! | `connect_timeout` | whole seconds to open one connection (libpq's unit); `0`: no limit of its own | `5` |
//! | `application_name` | the name the server shows for these connections | `kv` |
//! | `options` | server options at connection start, e.g. `-c search_path=app` (percent-encode: `-c%20search_path%3Dapp`) | none |
//! | `target_session_attrs` | `any` or `read-write` (skip standbys in a host list) | `any` |
//! | `kv_schema` | *kv*: a schema of kv's own for its tables, created when missing; a lower-case identifier (`a-z`, digits, `_`, at most 48 bytes, not `pg_...`) | none: the first schema of the `search_path` |
//! | `pool_size` | *kv*: connections of the write pool (`set`, `rm`, `restore`, `purge`, rate limits), 1 to [`MAX_POOL_SIZE`] | `10` |
//! | `read_pool_size` | *kv*: connections of the read pool (`get`, `list`, `scan`, health checks, the feed's re-reads), which writes never take | `4` |
//! | `op_timeout` | *kv*: the deadline of every call, covering the wait for a connection and the statement | `5s` |
//! | `statement_timeout` | PostgreSQL's: the server cancels a statement running longer; at most `op_timeout` | `op_timeout` |
//! | `lock_timeout` | PostgreSQL's: a statement waiting longer for a lock (a row another transaction holds) fails with a retryable [`Error::Backend`] and writes nothing; at most `statement_timeout` | `2s` (or `statement_timeout` when shorter) |
//! | `listen_url` | *kv*: a percent-encoded connection string for the change feed's connection, direct or session-mode (see [Poolers](#poolers)); takes the connection options above, and the main URL's TLS options when it sets none | the main URL |
//! | `prepared_statements` | *kv*: `on` or `off`; `off` sends each statement unnamed with its parameters, for transaction-mode poolers that do not track prepared statements | `on` |
//!
//! Times (`op_timeout`, `statement_timeout`, `lock_timeout`) use
//! PostgreSQL's syntax: `500ms`, `2s`, `1min`, `1h`, or a bare number of
//! milliseconds. A process opens at most `pool_size + read_pool_size + 1`
//! connections (the one is the change feed's), each when first needed.
//!
//! Nothing kv prints holds the password: errors, `Debug` output and logs
//! name the server as `host:port/database`, and a URL that cannot be
//! parsed is described, never echoed (a password with a raw `@` or `/`
//! still parses: the last `@` before the host ends the credentials).
//!
//! # TLS
//!
//! TLS uses rustls (ring provider); no OpenSSL. `sslmode` has libpq's
//! meaning:
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default): TLS when the server offers it, else plain;
//!   when the handshake fails, plain again (logged). The certificate is
//!   checked against `sslrootcert` when one is given, not otherwise.
//! - `require`: TLS or no connection. As in libpq, the certificate is
//!   checked (CA only) when `sslrootcert` is given, and not at all
//!   otherwise; channel binding (on by default) still ties the password
//!   exchange to the server's certificate.
//! - `verify-ca`: TLS with a certificate signed by a trusted CA, for any
//!   host name.
//! - `verify-full`: TLS with a certificate signed by a trusted CA and valid
//!   for the host name (or IP address) connected to. Use this over any
//!   network you do not control.
//!
//! Trusted CAs are those of `sslrootcert`, or, for `verify-ca` and
//! `verify-full` without it, the system's trust store (read with
//! rustls-native-certs, as libpq's `sslrootcert=system` reads OpenSSL's).
//! This differs from libpq, which reads `~/.postgresql/root.crt` and
//! refuses `verify-*` without it; kv reads no files of its own. The
//! certificates are read once, when the backend opens.
//!
//! A certificate the settings refuse is [`Error::Config`] (not retryable)
//! saying which check failed: a CA not among the trusted ones (unknown
//! issuer), a certificate not valid for the host name, an expired one; so
//! is `require` (or `verify-*`) against a server that offers no TLS.
//! Client certificates (`sslcert`, `sslkey`) are not supported.
//!
//! # Poolers
//!
//! Through PgBouncer (or another pooler) in **session** mode everything
//! works as with a direct connection. In **transaction** mode:
//!
//! - Calls work: each is one statement. With PgBouncer before 1.21 (or
//!   `max_prepared_statements = 0`), add `prepared_statements=off`.
//!   Prefer `kv_schema` to a `search_path` set with `options`: kv names
//!   its tables with the schema in every statement, while settings made
//!   on a connection do not follow it from one transaction to the next.
//!   For the same reason `statement_timeout` and `lock_timeout` are not
//!   reliable there: set them on the role too (`ALTER ROLE app SET
//!   lock_timeout = '2s'`); `op_timeout` holds regardless.
//! - The change feed does not: LISTEN runs on whichever server
//!   connection is free, which then serves others. Point `listen_url` at
//!   the database directly (or at a session-mode pool). The feed checks
//!   itself at start and after every reconnect (below), so a feed through
//!   a transaction-mode pooler is reported, not silent.
//!
//! # Storage
//!
//! On open, the backend creates or migrates its tables (`kv_meta` with the
//! schema version, `kv_rows`, `kv_rate`, and `kv_tables` with each table's
//! version floor, added in schema version 2) in `kv_schema` (created when
//! missing), or else in the first schema of the connection's
//! `search_path`, under a transaction-scoped advisory lock so that
//! processes opening the database at once do it one at a time. A database
//! migrated by a newer release of `kv` is refused with [`Error::Config`].
//! Stores with different `kv_schema`s in one database are independent:
//! their rows, rate limits and change feeds (channel `kv_changes_<schema>`)
//! do not mix.
//!
//! Rows live in `kv_rows(tbl, key COLLATE "C", value JSONB, created_at,
//! updated_at, deleted_at, updated_by)`, keyed by `(tbl, key)`; `COLLATE
//! "C"` makes key order the byte order of UTF-8. Values are JSONB, so a
//! value reads back as equal JSON, though not as identical text (key order
//! and spacing are PostgreSQL's). JSONB cannot hold the NUL character
//! (`\u0000`) in strings: such a value is refused with
//! [`Error::ValidationFailed`].
//!
//! Every operation is one statement (two round trips never hold a lock
//! between them); see the statements in the source for how each one locks
//! the row it checks.
//!
//! # Change feed
//!
//! Every mutation notifies the schema's channel (`kv_changes`) in its own
//! statement, so the notification is delivered on commit, in commit order,
//! to every process listening on the database. Each backend keeps one
//! dedicated listening connection (to `listen_url` when given); when it is
//! lost the feed sends
//! [`FeedEvent::Resync`], reconnects with backoff, and
//! sends `Resync` again once it listens again.
//!
//! At start and after every reconnect, the feed sends a notification with
//! a fresh nonce through the write pool and waits (up to `op_timeout`) for
//! it to arrive on the listening connection. [`Backend::health`] (and
//! [`Store::health`](crate::Store::health)) reports the feed as
//! [`FeedHealth::Verified`] once it has, [`FeedHealth::Unverified`] with
//! the reason when it has not (checked again every 30 s; opening also
//! logs a warning with `tracing`), and [`FeedHealth::Disconnected`] while
//! the listening connection is lost and being reopened.
//!
//! # Failures
//!
//! Every call has one deadline, `op_timeout` (5 s by default), covering
//! the wait for a pooled connection and the statement; the server cancels
//! statements past `statement_timeout` (no longer than the deadline), and
//! writes waiting for a row lock past `lock_timeout`. A call that reaches
//! its deadline fails with [`Error::Backend`]; its message says whether
//! anything was sent, and for a write that was, that it **may or may not
//! have been applied** (read the row before retrying; a conditional write
//! retried then reports `CONFLICT` if the first one landed). Its
//! connection is taken out of the pool and the statement cancelled on the
//! server, so a paused or unreachable server costs each call its deadline,
//! not a hang. A write that fails with an error from the server (a lock
//! timeout, say) wrote nothing, and says so.
//!
//! Reads and writes use separate pools, so writes piling up behind a lock
//! (each for at most `lock_timeout`) never take the connections public
//! reads need. TCP keepalives and a TCP user timeout notice a server that
//! vanished without closing the connection. Broken connections are
//! replaced, so the store works again once the server is back.

mod errors;
mod feed;
mod open;
mod ops;
mod options;
mod pool;
mod settings;
mod snapshot;
#[doc(hidden)]
pub mod sql;
mod tls;
mod url;

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use self::pool::Core;
use super::ChangeFeed;
use crate::error::Result;

pub use self::options::{PostgresOptions, SslMode, SslRootCert, MAX_POOL_SIZE};

#[allow(unused_imports)] // for the docs' links
use {
    super::{Backend, FeedEvent, FeedHealth},
    crate::error::Error,
};

/// The TLS connector kv uses for a connection string's `sslmode` and
/// `sslrootcert`. Public (but hidden) so that benchmarks can run a raw
/// tokio-postgres client over exactly kv's TLS; not a stable API.
#[doc(hidden)]
pub use self::tls::MakeTls as RawTls;

/// The tokio-postgres configuration and TLS connector kv would use for
/// `url` (kv's own options are checked and left out). Hidden: for
/// benchmarks; not a stable API.
#[doc(hidden)]
pub fn raw_connection(url: &str) -> Result<(tokio_postgres::Config, RawTls)> {
    let settings = settings::resolve(url, PostgresOptions::default())?;
    let tls = RawTls::new(&settings.conn)?;
    Ok((settings.conn.pg, tls))
}

/// How many times the statement of a `set` ([`sql::PUT`]) that raced with
/// a concurrent insert of the same key is run again (each run takes a fresh
/// snapshot, so one retry normally suffices).
const PUT_ATTEMPTS: usize = 8;

/// Rows in a PostgreSQL database, shared by every process that opens it.
/// See the [module documentation](self).
pub struct PostgresBackend {
    core: Arc<Core>,
    feed: ChangeFeed,
    feed_state: Arc<feed::State>,
    /// Rate-limit hits admitted by this process (to sweep every so often).
    rate_hits: AtomicU64,
    /// The listener task; aborted when the backend is dropped.
    _listener: feed::AbortOnDrop,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &self.core;
        f.debug_struct("PostgresBackend")
            .field("target", &core.target())
            .field("schema", &core.stmts.schema)
            .field("pool_size", &core.write.status().max_size)
            .field("read_pool_size", &core.read.status().max_size)
            .field("op_timeout", &core.op_timeout)
            .field("statement_timeout", &core.statement_timeout)
            .field("lock_timeout", &core.lock_timeout)
            .field("feed", &self.feed_state.get())
            .finish()
    }
}

impl PostgresBackend {
    /// The schema version this release creates and understands.
    pub const SCHEMA_VERSION: i64 = sql::SCHEMA_VERSION;
}
