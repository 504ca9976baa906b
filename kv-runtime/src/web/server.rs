//! Serving a router over HTTP/1.1 on hyper, safe by default: a header
//! timeout, an idle timeout, a body timeout, a cap on open connections,
//! graceful shutdown, and the client address for handlers.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::schema::BoxFuture;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `router` on `listener` with [`Server`]'s defaults until SIGTERM or
/// Ctrl-C, then shuts down gracefully. Handlers can extract
/// [`ConnectInfo<SocketAddr>`](ConnectInfo). Shorthand for
/// `Server::new(listener, router).serve().await`.
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    Server::new(listener, router).serve().await
}

/// Completes on SIGTERM (Unix) or Ctrl-C: the signal [`Server`] shuts down
/// on by default. Combine it with your own when you pass one to
/// [`Server::with_graceful_shutdown`]. A signal whose handler cannot be
/// installed is logged and not waited for.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(target: "kv_runtime::web", "cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(target: "kv_runtime::web", "cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Serves an axum [`Router`] over plain HTTP/1.1 with limits that keep slow
/// or idle clients from holding the server: a header timeout, an idle
/// timeout, a body timeout and a cap on open connections, each with a
/// default (the [settings table](super#serving) lists them with the
/// router's own limits).
///
/// A connection is never closed for being idle while a response is in
/// flight: a server-sent event stream stays open as long as its client
/// reads it (cap those with [`KvRouter::max_event_streams`](super::KvRouter::max_event_streams)).
///
/// On the shutdown signal (SIGTERM or Ctrl-C unless
/// [`with_graceful_shutdown`](Self::with_graceful_shutdown) says
/// otherwise) the server stops accepting, closes idle connections, ends
/// the kv routers' event streams, lets requests in flight finish (their
/// answers carry `Connection: close`), and after the grace period closes
/// whatever is still open. Handlers can extract
/// [`ConnectInfo<SocketAddr>`](ConnectInfo), the client's address (what
/// per-client limits count).
///
/// ```no_run
/// use std::time::Duration;
/// use kv_runtime::web;
///
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// web::Server::new(listener, app)
///     .header_timeout(Duration::from_secs(5))
///     .max_connections(4096)
///     .serve()
///     .await
/// # }
/// ```
///
/// It speaks HTTP/1.1 only and has no TLS: put it behind the TLS
/// terminator or load balancer, which then also holds the clients' slow
/// connections.
pub struct Server {
    listener: TcpListener,
    router: Router,
    limits: Limits,
    max_connections: usize,
    shutdown_grace: Duration,
    signal: Option<BoxFuture<'static, ()>>,
}

#[derive(Clone, Copy)]
struct Limits {
    header: Duration,
    idle: Duration,
    body: Duration,
}

impl Server {
    /// Default [`header_timeout`](Self::header_timeout).
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default [`idle_timeout`](Self::idle_timeout).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default [`body_timeout`](Self::body_timeout).
    pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default [`max_connections`](Self::max_connections).
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Default [`shutdown_grace`](Self::shutdown_grace).
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

    /// A server for `router` on `listener`, with the defaults above.
    pub fn new(listener: TcpListener, router: Router) -> Self {
        Server {
            listener,
            router,
            limits: Limits {
                header: Self::DEFAULT_HEADER_TIMEOUT,
                idle: Self::DEFAULT_IDLE_TIMEOUT,
                body: Self::DEFAULT_BODY_TIMEOUT,
            },
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            signal: None,
        }
    }

    /// How long a new connection has to send its first complete request
    /// head (request line and headers); then it is closed without an
    /// answer. Bounds clients that connect and send nothing, or send a
    /// header byte now and then. Default 10 s.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "header_timeout must be more than zero");
        self.limits.header = timeout;
        self
    }

    /// How long a kept-alive connection may wait, after a response has been
    /// sent, for the next complete request head; then it is closed.
    /// Default 60 s.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "idle_timeout must be more than zero");
        self.limits.idle = timeout;
        self
    }

    /// How long a request's body may take to arrive, counted from its head;
    /// reading it then fails (the kv router answers 408 `REQUEST_TIMEOUT`;
    /// your own handlers see a body error). Default 30 s.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "body_timeout must be more than zero");
        self.limits.body = timeout;
        self
    }

    /// The most connections open at once. At the cap the server stops
    /// accepting; new connections wait in the kernel's listen backlog
    /// (and are refused by it once that is full) until one closes.
    /// Default 1024. Keep it below the process's open-file limit
    /// (`ulimit -n`) minus the files and database connections the app
    /// needs.
    ///
    /// # Panics
    ///
    /// If `max` is zero.
    pub fn max_connections(mut self, max: usize) -> Self {
        assert!(max > 0, "max_connections must be at least 1");
        self.max_connections = max.min(Semaphore::MAX_PERMITS);
        self
    }

    /// How long shutdown waits for requests in flight to finish before it
    /// closes the connections still open. Default 10 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Shuts down when `signal` completes, instead of on SIGTERM or Ctrl-C.
    /// To keep those too, wait for [`shutdown_signal`] inside `signal`.
    pub fn with_graceful_shutdown(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts and serves connections until the shutdown signal, then
    /// shuts down gracefully (see [`Server`]). Errors accepting a
    /// connection (say, out of file descriptors) are logged and retried,
    /// so this returns `Ok` once shut down.
    pub async fn serve(self) -> io::Result<()> {
        let Server {
            listener,
            router,
            limits,
            max_connections,
            shutdown_grace,
            signal,
        } = self;
        let mut signal = signal.unwrap_or_else(|| Box::pin(shutdown_signal()));
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        // hyper starts this timer when it begins reading a request head: on
        // a new connection, and when a kept-alive one goes idle. The
        // connection's watchdog enforces the shorter of the two limits; the
        // longer one here is the backstop.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header.max(limits.idle))
            .keep_alive(true);
        let builder = Arc::new(builder);
        let permits = Arc::new(Semaphore::new(max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();

        loop {
            while connections.try_join_next().is_some() {}
            let permit = tokio::select! {
                () = &mut signal => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // never closed
                },
            };
            let accepted = tokio::select! {
                () = &mut signal => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    // Out of file descriptors or memory: wait, then retry.
                    tracing::error!(target: "kv_runtime::web", "cannot accept a connection: {e}");
                    tokio::select! {
                        () = &mut signal => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            connections.spawn(connection(
                builder.clone(),
                stream,
                peer,
                router.clone(),
                limits,
                stop_rx.clone(),
                permit,
            ));
        }

        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(shutdown_grace, drain).await.is_err() {
            tracing::warn!(
                target: "kv_runtime::web",
                "closing {} connections still open after the shutdown grace period",
                connections.len()
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Accept errors that concern one connection only.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, its header or idle deadline passes,
/// or shutdown closes it. Holds its connection permit.
async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let service = ConnService {
        router,
        peer,
        activity: activity.clone(),
        stop: ServerStopping(stop.clone()),
        body_timeout: limits.body,
    };
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(target: "kv_runtime::web", %peer, "connection ended: {e}");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.deadline(limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(target: "kv_runtime::web", %peer, "closing a connection without a request head in time");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What one connection is doing, for its watchdog: requests in flight, and
/// since when it has had none.
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

struct ActivityState {
    in_flight: usize,
    idle_since: Instant,
    served_any: bool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: Instant::now(),
                served_any: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection must have its next request head, or `None`
    /// while a request is in flight.
    fn deadline(&self, limits: Limits) -> Option<Instant> {
        let state = self.lock();
        if state.in_flight > 0 {
            return None;
        }
        let wait = if state.served_any {
            limits.idle
        } else {
            limits.header
        };
        Some(state.idle_since + wait)
    }

    fn start(self: &Arc<Self>) -> InFlight {
        {
            let mut state = self.lock();
            state.in_flight += 1;
            state.served_any = true;
        }
        self.changed.notify_one();
        InFlight(self.clone())
    }
}

/// A request in flight, until its response body has been sent (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
            state.idle_since = Instant::now();
        }
        self.0.changed.notify_one();
    }
}

/// Set once the server is shutting down; the kv router's event streams end
/// on it.
#[derive(Clone)]
pub(crate) struct ServerStopping(watch::Receiver<bool>);

impl ServerStopping {
    /// Completes when the server starts shutting down.
    pub(crate) async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// The router, as one connection's service: adds the client address and
/// the shutdown flag to each request, bounds the time its body may take,
/// and tracks the request until its response is sent.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    stop: ServerStopping,
    body_timeout: Duration,
}

impl<B> tower_service::Service<Request<B>> for ConnService
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = self.activity.start();
        let deadline = self.body_timeout;
        let mut request = request.map(|body| TimedBody::new(body, deadline));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.stop.clone());
        let response = tower_service::Service::call(&mut self.router, request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Body::new(TrackedBody::new(body, in_flight))))
        })
    }
}

/// A response body that keeps its request counted as in flight until it
/// has been sent or dropped.
struct TrackedBody {
    body: Body,
    in_flight: Option<InFlight>,
}

impl TrackedBody {
    fn new(body: Body, in_flight: InFlight) -> Self {
        TrackedBody {
            body,
            in_flight: Some(in_flight),
        }
    }
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.in_flight = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The request body took longer than the server's
/// [`body_timeout`](Server::body_timeout) to arrive.
#[derive(Debug)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with [`BodyTimedOut`] when its deadline
/// passes before its end.
struct TimedBody<B> {
    body: B,
    deadline: Instant,
    /// The timer, made the first time the body is not ready.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    fn new(body: B, timeout: Duration) -> Self {
        TimedBody {
            body,
            deadline: Instant::now() + timeout,
            timer: None,
        }
    }
}

impl<B> HttpBody for TimedBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One connection served by hyper alone (no watchdog) with
    /// `header_read_timeout`.
    async fn hyper_only(timeout: Duration) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(true);
            let router = Router::new().route("/", get(|| async { "ok" }));
            let service = TowerToHyperService::new(router);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        TcpStream::connect(addr).await.expect("connect")
    }

    /// Sends a GET and reads its response (whose body is `ok`).
    async fn round_trip(client: &mut TcpStream) {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .expect("write");
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.ends_with(b"\r\n\r\nok") {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .expect("an answer within 10 s")
                .expect("read");
            assert!(n > 0, "closed before answering: {seen:?}");
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 200"), "{seen:?}");
    }

    /// What [`Server`] relies on in hyper 1.12: `header_read_timeout`
    /// starts again when a kept-alive connection goes idle after a
    /// response, so it also closes idle connections. If a hyper upgrade
    /// changes this, the server's backstop for idle connections is gone.
    #[tokio::test]
    async fn hyper_header_timeout_closes_an_idle_kept_alive_connection() {
        let timeout = Duration::from_millis(500);
        let mut client = hyper_only(timeout).await;
        // Before the request: hyper's timer starts later.
        let idle = Instant::now();
        round_trip(&mut client).await;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest))
            .await
            .expect("closed within 10 s")
            .expect("read to the end");
        assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
        assert!(idle.elapsed() >= timeout, "closed before the timeout");
    }

    /// ... and it counts each idle period afresh, not from the connection's
    /// start: requests spaced well within the timeout keep the connection
    /// open for longer than the timeout.
    #[tokio::test]
    async fn hyper_header_timeout_restarts_with_each_request() {
        let timeout = Duration::from_secs(2);
        let mut client = hyper_only(timeout).await;
        let start = Instant::now();
        while start.elapsed() < timeout * 2 {
            round_trip(&mut client).await;
            tokio::time::sleep(timeout / 4).await;
        }
        round_trip(&mut client).await;
    }
}
