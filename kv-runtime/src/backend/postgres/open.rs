//! Opening the backend: settings, pools, the schema, the change feed.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use super::errors::{pg_error, Access};
use super::options::PostgresOptions;
use super::pool::{self, Checkout, Connector, Core};
use super::settings;
use super::sql::{self, Statements};
use super::{feed, PostgresBackend};
use crate::backend::ChangeFeed;
use crate::error::{Error, Result};

/// The least time opening allows for creating or migrating the schema
/// (more when `op_timeout` is longer): other processes may hold the schema
/// lock meanwhile.
const MIGRATION_BOUND: Duration = Duration::from_secs(30);

impl PostgresBackend {
    /// Opens the backend from a `postgres://` or `postgresql://` URL (or a
    /// `key=value` connection string) and its options (see the options
    /// table in the [module documentation](super)). See
    /// [`PostgresBackend::connect`].
    pub async fn open_url(url: &str) -> Result<PostgresBackend> {
        PostgresBackend::connect(url, PostgresOptions::default()).await
    }

    /// Connects to the database at `url` (a URL or a `key=value` connection
    /// string; its options override those of `options`), creates or
    /// migrates the schema, starts listening for changes and checks that
    /// changes arrive (see "Change feed" in the [module
    /// documentation](super)). Must be called within a Tokio runtime, which
    /// then runs the pools' and the listener's tasks.
    ///
    /// A malformed URL, an unknown or bad option, a certificate the TLS
    /// settings refuse, or a database migrated by a newer release is
    /// [`Error::Config`]; a server that cannot be reached is
    /// [`Error::Backend`]. No message holds the password.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresBackend> {
        let settings = settings::resolve(url, options)?;
        PostgresBackend::open(settings, None).await
    }

    /// Like [`PostgresBackend::connect`], over a connection pool the app
    /// already has for the same database, so that it does not open a
    /// second one: kv's reads and writes take connections from `pool`.
    /// `url` names the same database (credentials included): kv opens the
    /// change feed's own connection from it (or from its `listen_url`), and
    /// takes its kv options (`kv_schema`, `op_timeout`, ...) from it and
    /// `options`; `pool_size`, `read_pool_size` and the TLS options then
    /// apply to the feed's connection only.
    ///
    /// Two things kv's own pools do that yours may not: reads do not have
    /// connections of their own that stuck writes cannot take (give kv its
    /// own pool where that matters), and `statement_timeout` and
    /// `lock_timeout` are not set on your connections (set them on the
    /// role, `ALTER ROLE app SET lock_timeout = '2s'`; kv's per-call
    /// deadline, `op_timeout`, holds regardless).
    pub async fn with_pool(
        pool: deadpool_postgres::Pool,
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresBackend> {
        let settings = settings::resolve(url, options)?;
        PostgresBackend::open(settings, Some(pool)).await
    }

    async fn open(
        settings: settings::Settings,
        pool: Option<deadpool_postgres::Pool>,
    ) -> Result<PostgresBackend> {
        let connector = Connector::new(&settings.conn)?;
        let (read, write) = match pool {
            Some(pool) => (pool.clone(), pool),
            None => {
                // Plain `SET`s (integers of our own): one round trip per new
                // connection, and no prepared statement.
                let setup = format!(
                    "SET statement_timeout = {}; SET lock_timeout = {}",
                    millis(settings.statement_timeout),
                    millis(settings.lock_timeout)
                );
                let write = pool::pool(
                    &settings.conn,
                    &connector,
                    settings.pool_size,
                    setup.clone(),
                )?;
                let read = pool::pool(&settings.conn, &connector, settings.read_pool_size, setup)?;
                (read, write)
            }
        };
        let core = Arc::new(Core {
            read,
            write,
            stmts: Statements::new(settings.kv_schema.as_deref()),
            endpoint: settings.conn,
            op_timeout: settings.op_timeout,
            statement_timeout: settings.statement_timeout,
            lock_timeout: settings.lock_timeout,
            prepared: settings.prepared_statements,
            tls: connector.tls().clone(),
        });
        let bound = core.op_timeout.max(MIGRATION_BOUND);
        core.run_for(
            bound,
            Access::Write,
            "creating or migrating the kv schema",
            |c| migrate(c, &core, bound),
        )
        .await?;

        let sender = ChangeFeed::new();
        let (listener, feed_state) =
            feed::start(Arc::clone(&core), settings.listen, sender.clone()).await?;
        Ok(PostgresBackend {
            core,
            feed: sender,
            feed_state,
            rate_hits: AtomicU64::new(0),
            _listener: listener,
        })
    }
}

fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

/// Creates or migrates the schema, one process at a time, in one
/// transaction of simple statements (so that it also runs through a
/// transaction-mode pooler).
async fn migrate(c: Checkout, core: &Core, bound: Duration) -> Result<()> {
    let target = core.target();
    let fail = |e| pg_error(target, "creating or migrating the kv schema", e);
    let stmts = &core.stmts;
    let limit = millis(bound);
    c.simple(&format!(
        "BEGIN; SET LOCAL statement_timeout = {limit}; SET LOCAL lock_timeout = {limit}; \
         SELECT pg_advisory_xact_lock({})",
        sql::SCHEMA_LOCK_KEY
    ))
    .await
    .map_err(fail)?;
    let done = async {
        if let Some(schema) = &stmts.schema {
            // Checked first: CREATE SCHEMA needs a privilege that using an
            // existing one does not.
            let exists = c
                .simple_query(&format!(
                    "SELECT 1 FROM pg_namespace WHERE nspname = '{schema}'"
                ))
                .await
                .map_err(fail)?;
            if !exists
                .iter()
                .any(|m| matches!(m, SimpleQueryMessage::Row(_)))
            {
                c.simple(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .map_err(fail)?;
            }
        }
        c.simple(&stmts.qualify(sql::CREATE_META))
            .await
            .map_err(fail)?;
        let version = c
            .simple_query(&stmts.qualify(sql::READ_VERSION))
            .await
            .map_err(fail)?
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            });
        let version: i64 = match version {
            None => 0,
            Some(text) => text.parse().map_err(|_| {
                Error::backend_msg(format!(
                    "PostgreSQL ({target}): the kv schema version {text:?} is not a number"
                ))
            })?,
        };
        if !(0..=sql::SCHEMA_VERSION).contains(&version) {
            return Err(Error::Config(format!(
                "the database at {target} has kv schema version {version}, but this release \
                 of kv-runtime knows versions up to {}; upgrade kv-runtime (a newer release \
                 has migrated this database)",
                sql::SCHEMA_VERSION
            )));
        }
        if version < sql::SCHEMA_VERSION {
            // `version` is within 0..SCHEMA_VERSION here, so the cast is exact.
            for migration in &sql::MIGRATIONS[version as usize..] {
                c.simple(&stmts.qualify(migration)).await.map_err(fail)?;
            }
            let write = sql::WRITE_VERSION.replace("$1::bigint", &sql::SCHEMA_VERSION.to_string());
            c.simple(&stmts.qualify(&write)).await.map_err(fail)?;
        }
        c.simple("COMMIT").await.map_err(fail)
    }
    .await;
    if done.is_err() {
        // Leave no open transaction on a pooled connection.
        let _ = c.simple("ROLLBACK").await;
    }
    done
}
