//! Connections: opening them (TLS per `sslmode`, libpq's fallback to plain
//! for `prefer`), the read and write pools, and one checkout per call that
//! runs statements prepared or unnamed and, when the call's deadline cuts
//! a statement short, takes its connection out of the pool and cancels the
//! statement on the server.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Connection, Row, Socket};

use super::errors::{deadline_error, pool_error, Access};
use super::options::SslMode;
use super::settings::Endpoint;
use super::sql::{Statements, Stmt};
use super::tls::{self, MakeTls, TlsStream};
use crate::error::{Error, Result};

/// How long the cancel request for a statement cut short may take.
const CANCEL_BOUND: Duration = Duration::from_secs(10);

/// Opens connections to one endpoint.
#[derive(Clone, Debug)]
pub(super) struct Connector {
    tls: MakeTls,
    mode: SslMode,
    target: Arc<str>,
}

impl Connector {
    pub(super) fn new(endpoint: &Endpoint) -> Result<Connector> {
        Ok(Connector {
            tls: MakeTls::new(endpoint)?,
            mode: endpoint.ssl_mode,
            target: Arc::from(endpoint.target.as_str()),
        })
    }

    pub(super) fn tls(&self) -> &MakeTls {
        &self.tls
    }

    /// One connection. With `prefer`, a failed TLS handshake is tried
    /// again without TLS, as libpq does.
    pub(super) async fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> std::result::Result<(Client, Connection<Socket, TlsStream<Socket>>), tokio_postgres::Error>
    {
        match pg.connect(self.tls.clone()).await {
            Err(e) if self.mode == SslMode::Prefer && tls::handshake_failed(&e) => {
                tracing::warn!(
                    target: "kv_runtime::postgres",
                    "PostgreSQL ({}): the TLS handshake failed ({}); connecting without TLS, as \
                     sslmode=prefer allows (use sslmode=require or verify-full to insist)",
                    self.target,
                    super::errors::describe(&e)
                );
                let mut plain = pg.clone();
                plain.ssl_mode(tokio_postgres::config::SslMode::Disable);
                plain.connect(self.tls.clone()).await
            }
            other => other,
        }
    }
}

impl deadpool_postgres::Connect for Connector {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = std::result::Result<(Client, JoinHandle<()>), tokio_postgres::Error>,
                > + Send
                + '_,
        >,
    > {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, connection) = Connector::connect(self, &pg).await?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok((client, task))
        })
    }
}

/// A pool of `size` connections to `endpoint`, each with the session
/// settings `setup` (plain `SET` statements, sent once per connection).
pub(super) fn pool(
    endpoint: &Endpoint,
    connector: &Connector,
    size: usize,
    setup: String,
) -> Result<Pool> {
    let manager = Manager::from_connect(
        endpoint.pg.clone(),
        connector.clone(),
        // Fast recycling only checks that the connection is open (no I/O).
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .post_create(Hook::async_fn(move |client, _| {
            let setup = setup.clone();
            Box::pin(async move {
                client
                    .batch_execute(&setup)
                    .await
                    .map_err(HookError::Backend)
            })
        }));
    if let Some(limit) = endpoint.pg.get_connect_timeout() {
        builder = builder.create_timeout(Some(*limit));
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build the connection pool: {e}")))
}

/// The pools and what every call needs; shared by the backend and its
/// change feed.
pub(super) struct Core {
    /// Reads: `get`, `list`, `scan`, health checks, the feed's re-reads.
    pub(super) read: Pool,
    /// Writes, rate limits, purges, the feed's check notification.
    pub(super) write: Pool,
    pub(super) stmts: Statements,
    pub(super) endpoint: Endpoint,
    pub(super) op_timeout: Duration,
    pub(super) statement_timeout: Duration,
    pub(super) lock_timeout: Duration,
    pub(super) prepared: bool,
    pub(super) tls: MakeTls,
}

impl Core {
    /// `host:port/database`, for messages.
    pub(super) fn target(&self) -> &str {
        &self.endpoint.target
    }

    /// Runs one call on a connection of the pool for `access`, within the
    /// call's deadline (`op_timeout`), which covers the wait for the
    /// connection and the statements.
    pub(super) async fn run<T, F, Fut>(&self, access: Access, op: &str, work: F) -> Result<T>
    where
        F: FnOnce(Checkout) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.run_for(self.op_timeout, access, op, work).await
    }

    /// [`Core::run`] with another deadline (opening the store).
    pub(super) async fn run_for<T, F, Fut>(
        &self,
        limit: Duration,
        access: Access,
        op: &str,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce(Checkout) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let state = Arc::new(CallState::default());
        let call = async {
            let pool = match access {
                Access::Read => &self.read,
                Access::Write => &self.write,
            };
            let object = pool
                .get()
                .await
                .map_err(|e| pool_error(&self.endpoint, op, e))?;
            report(access, pool);
            let checkout =
                Checkout::new(object, Arc::clone(&state), self.prepared, self.tls.clone());
            work(checkout).await
        };
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(deadline_error(
                self.target(),
                op,
                access,
                state.sent(),
                limit,
            )),
        }
    }
}

/// The pool's connections, for the metrics (a few atomic loads).
fn report(access: Access, pool: &Pool) {
    let status = pool.status();
    let name = match access {
        Access::Read => "read",
        Access::Write => "write",
    };
    crate::telemetry::pool(
        name,
        status.size.saturating_sub(status.available),
        status.available,
        status.waiting,
    );
}

/// What a call has done so far, for the message when its deadline passes.
#[derive(Debug, Default)]
pub(super) struct CallState(AtomicU8);

const SENT: u8 = 1;
const BUSY: u8 = 2;

impl CallState {
    /// Whether a statement was sent (a write may have been applied).
    pub(super) fn sent(&self) -> bool {
        self.0.load(Ordering::Acquire) & SENT != 0
    }

    fn start(&self) {
        self.0.store(SENT | BUSY, Ordering::Release);
    }

    fn finish(&self) {
        self.0.store(SENT, Ordering::Release);
    }

    fn busy(&self) -> bool {
        self.0.load(Ordering::Acquire) & BUSY != 0
    }
}

/// A pooled connection for the length of one call.
pub(super) struct Checkout {
    object: Option<deadpool_postgres::Object>,
    state: Arc<CallState>,
    prepared: bool,
    tls: MakeTls,
}

impl Checkout {
    pub(super) fn new(
        object: deadpool_postgres::Object,
        state: Arc<CallState>,
        prepared: bool,
        tls: MakeTls,
    ) -> Checkout {
        Checkout {
            object: Some(object),
            state,
            prepared,
            tls,
        }
    }

    fn client(&self) -> &deadpool_postgres::Object {
        // Only `Drop` takes it.
        self.object
            .as_ref()
            .expect("a checkout holds its connection")
    }

    /// Runs `stmt`: prepared once per connection and cached, or unnamed
    /// with its parameter types in one message.
    pub(super) async fn query(
        &self,
        stmt: &Stmt,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        self.state.start();
        let client = self.client();
        let rows = if self.prepared {
            match client.prepare_cached(&stmt.text).await {
                Ok(prepared) => client.query(&prepared, params).await,
                Err(e) => Err(e),
            }
        } else {
            let typed: Vec<(&(dyn ToSql + Sync), tokio_postgres::types::Type)> = params
                .iter()
                .zip(stmt.types)
                .map(|(p, t)| (*p, t.clone()))
                .collect();
            client.query_typed(&stmt.text, &typed).await
        };
        self.state.finish();
        rows
    }

    /// `stmt`'s first row, if any.
    pub(super) async fn query_opt(
        &self,
        stmt: &Stmt,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
        Ok(self.query(stmt, params).await?.into_iter().next())
    }

    /// A statement without parameters, as a simple query, with its rows.
    pub(super) async fn simple_query(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error> {
        self.state.start();
        let done = self.client().simple_query(sql).await;
        self.state.finish();
        done
    }

    /// Statements without parameters, as a simple query.
    pub(super) async fn simple(&self, sql: &str) -> std::result::Result<(), tokio_postgres::Error> {
        self.state.start();
        let done = self.client().batch_execute(sql).await;
        self.state.finish();
        done
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.state.busy() {
            return;
        }
        // Dropped with a statement in flight: the call's deadline passed.
        // The connection may answer much later (or never): take it out of
        // the pool so that no other call queues behind it, and ask the
        // server to cancel the statement.
        let Some(object) = self.object.take() else {
            return;
        };
        let token = object.cancel_token();
        let client = deadpool_postgres::Object::take(object);
        let tls = self.tls.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(CANCEL_BOUND, token.cancel_query(tls)).await;
                drop(client);
            });
        }
    }
}
