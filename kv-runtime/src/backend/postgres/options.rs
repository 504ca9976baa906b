//! The typed configuration that [`PostgresOptions`] builds; the URL's
//! parameters are folded over it in `settings.rs`. See the options table
//! in the [module documentation](super).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::url::Secret;

/// The largest pool [`PostgresBackend::connect`](super::PostgresBackend::connect)
/// accepts (each of the write and read pools).
pub const MAX_POOL_SIZE: usize = 1000;

/// Whether and how to use TLS: libpq's `sslmode`. See the module
/// documentation, "TLS".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is
    /// checked against `sslrootcert` only when one is given, and a failed
    /// handshake falls back to plain (libpq's meaning). The default.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked against `sslrootcert`
    /// only when one is given (libpq's meaning), else not at all.
    Require,
    /// TLS, with a certificate signed by a trusted CA (`sslrootcert`, or
    /// the system's trust store); any host name.
    VerifyCa,
    /// TLS, with a certificate signed by a trusted CA and valid for the
    /// host name connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode as libpq spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted CA certificates come from: libpq's `sslrootcert`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslRootCert {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// The system's trust store (`sslrootcert=system`); requires
    /// [`SslMode::VerifyFull`], as in libpq.
    System,
}

/// How a [`PostgresBackend`](super::PostgresBackend) connects and bounds
/// its calls. Every setting has a URL parameter of the same name (see the
/// options table in the [module documentation](super)); parameters in the
/// URL override what is set here.
///
/// ```
/// use std::time::Duration;
/// use kv_runtime::backend::postgres::{PostgresOptions, SslMode};
///
/// let options = PostgresOptions::default()
///     .ssl_mode(SslMode::VerifyFull)
///     .ssl_root_cert("/etc/kv/db-ca.pem")
///     .op_timeout(Duration::from_secs(3))
///     .lock_timeout(Duration::from_secs(1))
///     .kv_schema("kv");
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    pub(super) pool_size: usize,
    pub(super) read_pool_size: usize,
    pub(super) connect_timeout: Option<Duration>,
    pub(super) op_timeout: Duration,
    pub(super) statement_timeout: Option<Duration>,
    pub(super) lock_timeout: Option<Duration>,
    pub(super) application_name: String,
    pub(super) options: Option<String>,
    pub(super) kv_schema: Option<String>,
    pub(super) ssl_mode: Option<SslMode>,
    pub(super) ssl_root_cert: Option<SslRootCert>,
    pub(super) listen_url: Option<Secret>,
    pub(super) prepared_statements: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 10,
            read_pool_size: 4,
            connect_timeout: Some(Duration::from_secs(5)),
            op_timeout: Duration::from_secs(5),
            statement_timeout: None,
            lock_timeout: None,
            application_name: "kv".to_owned(),
            options: None,
            kv_schema: None,
            ssl_mode: None,
            ssl_root_cert: None,
            listen_url: None,
            prepared_statements: true,
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("pool_size", &self.pool_size)
            .field("read_pool_size", &self.read_pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("op_timeout", &self.op_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("kv_schema", &self.kv_schema)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("listen_url", &self.listen_url.as_ref().map(|_| "***"))
            .field("prepared_statements", &self.prepared_statements)
            .finish()
    }
}

impl PostgresOptions {
    /// Connections of the write pool (default 10): writes, `list`, rate
    /// limits, purges. Calls beyond this many at once wait for one, within
    /// their deadline.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// Connections of the read pool (default 4), which only `get` (the
    /// public reads), health checks and the change feed's re-reads use, so
    /// that writes stuck behind a lock never take the capacity reads need.
    pub fn read_pool_size(mut self, n: usize) -> Self {
        self.read_pool_size = n;
        self
    }

    /// How long opening one connection may take (default 5 s; `None`: no
    /// limit of its own, the call's deadline still applies).
    pub fn connect_timeout(mut self, limit: Option<Duration>) -> Self {
        self.connect_timeout = limit;
        self
    }

    /// The deadline of every call (default 5 s): the wait for a pooled
    /// connection and the statement together. A call that reaches it fails
    /// with [`Error::Backend`](crate::Error::Backend); its message says whether a write may have
    /// been applied.
    pub fn op_timeout(mut self, limit: Duration) -> Self {
        self.op_timeout = limit;
        self
    }

    /// PostgreSQL's `statement_timeout` on every connection: the server
    /// cancels a statement running longer (default: `op_timeout`; at most
    /// `op_timeout`).
    pub fn statement_timeout(mut self, limit: Duration) -> Self {
        self.statement_timeout = Some(limit);
        self
    }

    /// PostgreSQL's `lock_timeout` on the write pool: a write waiting
    /// longer for a row lock fails with a retryable [`Error::Backend`](crate::Error::Backend) and
    /// changes nothing (default 2 s, or `statement_timeout` when shorter).
    pub fn lock_timeout(mut self, limit: Duration) -> Self {
        self.lock_timeout = Some(limit);
        self
    }

    /// The `application_name` the server shows for these connections
    /// (default `kv`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// libpq's `options`: command-line options sent at connection start,
    /// e.g. `-c search_path=app`.
    pub fn options(mut self, options: impl Into<String>) -> Self {
        self.options = Some(options.into());
        self
    }

    /// A schema of kv's own for its tables, created when missing (a
    /// lower-case identifier: letters, digits, `_`, at most 48 bytes, not
    /// starting with `pg_`). Default: the first schema of the connection's
    /// `search_path`.
    pub fn kv_schema(mut self, schema: impl Into<String>) -> Self {
        self.kv_schema = Some(schema.into());
        self
    }

    /// libpq's `sslmode` (default [`SslMode::Prefer`]).
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// libpq's `sslrootcert`: a PEM file of trusted CA certificates.
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(SslRootCert::File(path.into()));
        self
    }

    /// `sslrootcert=system`: trust the system's CA certificates (requires
    /// [`SslMode::VerifyFull`]).
    pub fn ssl_root_cert_system(mut self) -> Self {
        self.ssl_root_cert = Some(SslRootCert::System);
        self
    }

    /// A separate connection string for the change feed's listening
    /// connection: a direct (or session-mode) connection to the same
    /// database, when the main URL goes through a pooler in transaction
    /// mode. It takes the connection options (`host`, `port`, `user`,
    /// `password`, `dbname`, `ssl*`, `connect_timeout`, `application_name`,
    /// `options`); unset TLS options are taken from the main URL.
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(Secret(url.into()));
        self
    }

    /// Whether statements are prepared once per connection and cached
    /// (default `true`). Turn off behind a transaction-mode pooler that
    /// does not track prepared statements (PgBouncer before 1.21, or with
    /// `max_prepared_statements = 0`): each statement is then sent with
    /// its parameters in one message, unnamed.
    pub fn prepared_statements(mut self, on: bool) -> Self {
        self.prepared_statements = on;
        self
    }
}
