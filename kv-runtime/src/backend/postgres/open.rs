//! Opening the backend: options, URL handling, the pool, and the schema.

use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts,
};
use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use super::errors::{pg_error, pool_error};
use super::{feed, sql, PostgresBackend};
use crate::backend::ChangeFeed;
use crate::error::{Error, Result};

/// The largest pool [`PostgresBackend::connect`] accepts.
pub const MAX_POOL_SIZE: usize = 1000;

/// How a [`PostgresBackend`] connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool (at least 1, at most [`MAX_POOL_SIZE`]).
    /// Calls beyond this many at once wait for a free connection.
    pub pool_size: usize,
    /// How long opening one connection may take (unless the URL sets
    /// `connect_timeout` itself).
    pub connect_timeout: Duration,
    /// How long a call may wait for a free connection of the pool.
    pub wait_timeout: Duration,
    /// The server cancels a statement running longer than this (say,
    /// waiting for a row lock that another program's transaction holds);
    /// the call then fails with [`Error::Backend`] and changes nothing.
    /// Set on each pooled connection as PostgreSQL's `statement_timeout`;
    /// `None` keeps the server's setting.
    pub statement_timeout: Option<Duration>,
    /// A bound on each whole call, kept by the client (waiting for a
    /// connection included). It also bounds calls to a server that stopped
    /// answering without closing connections (a paused process), which
    /// TCP keepalives do not notice. A write that times out this way may or
    /// may not have been applied. Off by default: every call then pays for
    /// no timer, and a server that goes away is noticed by the connection
    /// timeouts and TCP keepalives.
    pub op_timeout: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            op_timeout: None,
        }
    }
}

impl PostgresBackend {
    /// Opens the backend from a `postgres://` or `postgresql://` URL, with
    /// [`PostgresOptions::default`] except for `?pool_size=N` when the URL
    /// has it. See [`PostgresBackend::connect`].
    pub async fn open_url(url: &str) -> Result<PostgresBackend> {
        let (url, pool_size) = split_pool_size(url)?;
        let mut options = PostgresOptions::default();
        if let Some(n) = pool_size {
            options.pool_size = n;
        }
        PostgresBackend::connect(&url, options).await
    }

    /// Connects to the database at `url` (a URL or a `key=value` connection
    /// string, as PostgreSQL accepts them), creates or migrates the schema,
    /// and starts listening for changes. Must be called within a Tokio
    /// runtime, which then runs the pool's and the listener's tasks.
    ///
    /// A malformed URL, bad options, or a database migrated by a newer
    /// release is [`Error::Config`]; a server that cannot be reached is
    /// [`Error::Backend`].
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresBackend> {
        let shown = redact(url);
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::Config(format!("`{shown}` is not a valid PostgreSQL URL: {e}")))?;
        if options.pool_size == 0 || options.pool_size > MAX_POOL_SIZE {
            return Err(Error::Config(format!(
                "pool_size must be between 1 and {MAX_POOL_SIZE}, not {}",
                options.pool_size
            )));
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(Error::Config(format!(
                "`{shown}` names no host; use postgres://user:password@host:port/database"
            )));
        }
        if config.get_ssl_mode() != SslMode::Disable && config.get_ssl_mode() != SslMode::Prefer {
            return Err(Error::Config(format!(
                "`{shown}` requires TLS, which kv's PostgreSQL backend does not support; \
                 connect over a trusted network or a local tunnel, with sslmode=disable or \
                 prefer"
            )));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("kv");
        }
        // Notice a server that vanished without closing the connection:
        // idle (keepalives) or with a request in flight (user timeout).
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        let target = describe_target(&config);

        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(options.connect_timeout);
        // Fast recycling only checks that the connection is open (no I/O),
        // so it needs no timeout.
        let mut builder = Pool::builder(manager)
            .max_size(options.pool_size)
            .wait_timeout(Some(options.wait_timeout))
            .create_timeout(Some(connect_timeout))
            .runtime(Runtime::Tokio1);
        if let Some(limit) = options.statement_timeout {
            let millis = limit.as_millis().max(1).to_string();
            builder = builder.post_create(Hook::async_fn(move |client, _| {
                let millis = millis.clone();
                Box::pin(async move {
                    client
                        .execute(
                            "SELECT set_config('statement_timeout', $1::text, false)",
                            &[&millis],
                        )
                        .await
                        .map(drop)
                        .map_err(HookError::Backend)
                })
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the connection pool: {e}")))?;
        let mut free_now = Timeouts::new();
        free_now.wait = Some(Duration::ZERO);
        free_now.create = Some(connect_timeout);

        let mut client = pool
            .get()
            .await
            .map_err(|e| pool_error(&target, "connecting", e))?;
        migrate(&mut client, &target).await?;
        drop(client);

        let sender = ChangeFeed::new();
        let listener = feed::start(config, pool.clone(), sender.clone(), target.clone()).await?;
        Ok(PostgresBackend {
            pool,
            feed: sender,
            op_timeout: options.op_timeout,
            free_now,
            target,
            rate_hits: AtomicU64::new(0),
            _listener: listener,
        })
    }
}

/// Creates or migrates the schema, one process at a time.
async fn migrate(client: &mut deadpool_postgres::Object, target: &str) -> Result<()> {
    let fail = |e| pg_error(target, "creating or migrating the kv schema", e);
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::bigint)",
        &[&sql::SCHEMA_LOCK_KEY],
    )
    .await
    .map_err(fail)?;
    tx.batch_execute(sql::CREATE_META).await.map_err(fail)?;
    let version: i64 = match tx.query_opt(sql::READ_VERSION, &[]).await.map_err(fail)? {
        Some(row) => row.try_get(0).map_err(fail)?,
        None => 0,
    };
    if !(0..=sql::SCHEMA_VERSION).contains(&version) {
        return Err(Error::Config(format!(
            "the database at {target} has kv schema version {version}, but this release of \
             kv-runtime knows versions up to {}; upgrade kv-runtime (a newer release has \
             migrated this database)",
            sql::SCHEMA_VERSION
        )));
    }
    if version < sql::SCHEMA_VERSION {
        // `version` is within 0..SCHEMA_VERSION here, so the cast is exact.
        for migration in &sql::MIGRATIONS[version as usize..] {
            tx.batch_execute(migration).await.map_err(fail)?;
        }
        tx.execute(sql::WRITE_VERSION, &[&sql::SCHEMA_VERSION])
            .await
            .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}

/// `host:port/database` for messages (never the password).
fn describe_target(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts.join(",")
    };
    format!("{hosts}/{}", config.get_dbname().unwrap_or("(default db)"))
}

/// The URL with its password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // A key=value string may hold `password=...`: show none of it.
        return if url.contains("password") {
            "(connection string)".to_owned()
        } else {
            url.to_owned()
        };
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // `?password=...` in the query is as secret as `user:password@`.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => format!("{scheme}://{authority}{tail}"),
        },
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// Takes `pool_size=N` out of the URL's query (PostgreSQL would refuse it).
fn split_pool_size(url: &str) -> Result<(String, Option<usize>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut keep = Vec::new();
    let mut pool_size = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool_size", value)) => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "`{}`: pool_size must be a number from 1 to {MAX_POOL_SIZE}, not \
                             {value:?}",
                            redact(url)
                        ))
                    })?;
                pool_size = Some(n);
            }
            _ => keep.push(pair),
        }
    }
    let url = if keep.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", keep.join("&"))
    };
    Ok((url, pool_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_taken_from_the_query() {
        let (url, n) = split_pool_size("postgres://u@h:1/db?pool_size=4").unwrap();
        assert_eq!((url.as_str(), n), ("postgres://u@h:1/db", Some(4)));
        let (url, n) =
            split_pool_size("postgres://u@h/db?connect_timeout=2&pool_size=3&sslmode=disable")
                .unwrap();
        assert_eq!(
            (url.as_str(), n),
            (
                "postgres://u@h/db?connect_timeout=2&sslmode=disable",
                Some(3)
            )
        );
        let (url, n) = split_pool_size("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), n), ("postgres://u@h/db", None));
        for bad in ["0", "x", "", "1001", "-1"] {
            let err =
                split_pool_size(&format!("postgres://u:pw@h/db?pool_size={bad}")).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::Config);
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://ada:s3cret@db.example:5432/kv?x=1"),
            "postgres://ada:***@db.example:5432/kv?x=1"
        );
        assert_eq!(redact("postgres://ada@h/kv"), "postgres://ada@h/kv");
        assert_eq!(redact("postgres://h/kv"), "postgres://h/kv");
        assert_eq!(
            redact("postgres://ada@h/kv?sslmode=disable&password=s3cret"),
            "postgres://ada@h/kv?sslmode=disable&password=***"
        );
        assert_eq!(
            redact("postgres://ada:pw@h/kv?PASSWORD=s3cret"),
            "postgres://ada:***@h/kv?PASSWORD=***"
        );
        assert_eq!(
            redact("host=h password=secret"),
            "(connection string)".to_owned()
        );
    }

    #[test]
    fn target_names_host_port_and_database() {
        let config = tokio_postgres::Config::from_str("postgres://u:pw@127.0.0.1:6543/kv").unwrap();
        assert_eq!(describe_target(&config), "127.0.0.1:6543/kv");
    }
}
