//! `web::Server` over real sockets on 127.0.0.1: slow and idle clients are
//! closed at their timeouts while others are served, the connection cap
//! holds, event streams are capped per client and in all and freed when
//! their client goes away, and shutdown lets requests in flight finish.
//!
//! Timeouts here are short; the tests assert what happens and that no
//! deadline fires early, never how fast anything is.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::routing::{get, put};
use axum::Router;
use kv_runtime::web::{self, ApiError, Server};
use kv_runtime::{Ctx, Kv, Store, Table};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner], write_role = admin, soft_delete)]
struct SiteBanner {
    active: bool,
    message: String,
}

/// Long enough that it never fires in a test that is not about it.
const LONG: Duration = Duration::from_secs(120);
/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running server, its address, and the way to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(server: impl FnOnce(TcpListener) -> Server) -> Running {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = server(listener).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(server.serve());
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A router with a few routes for the tests: `/ping`, `/peer` (the
/// client address the handler sees), `/hold` (waits for a permit of
/// `gate`, counting entries), and kv's router under `/api`.
fn app(table: &Table<SiteBanner>, gate: Arc<Semaphore>, entered: Arc<AtomicUsize>) -> Router {
    let ctx = |parts: &Parts| {
        let admin = parts.headers.contains_key("x-admin");
        async move {
            Ok::<_, ApiError>(if admin {
                Ctx::user("ada").with_role("admin")
            } else {
                Ctx::anonymous()
            })
        }
    };
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/hold",
            get(move || {
                let gate = gate.clone();
                let entered = entered.clone();
                async move {
                    entered.fetch_add(1, Ordering::SeqCst);
                    let _permit = gate.acquire().await;
                    "done"
                }
            }),
        )
        .route("/echo", put(|body: String| async move { body }))
        .nest(
            "/api",
            web::router(table.clone(), ctx)
                .max_event_streams(3)
                .max_event_streams_per_client(2)
                .build(),
        )
}

struct Fixture {
    table: Table<SiteBanner>,
    gate: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

impl Fixture {
    async fn new() -> Fixture {
        let store = Store::open("memory:").await.expect("memory store");
        Fixture {
            table: store.table(),
            gate: Arc::new(Semaphore::new(0)),
            entered: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn app(&self) -> Router {
        app(&self.table, self.gate.clone(), self.entered.clone())
    }

    async fn wait_entered(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.entered.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{n} requests never entered /hold"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A connection from `from` (any 127.x.y.z) to `to`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind the client address");
    socket.connect(to).await.expect("connect")
}

/// A parsed HTTP/1.1 response head and the body bytes read with it.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head from `stream`.
async fn read_head(stream: &mut TcpStream) -> Head {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("a response head in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before a response head: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    };
    let text = String::from_utf8_lossy(&seen[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Head {
        status,
        headers,
        rest: seen[end + 4..].to_vec(),
    }
}

/// Reads a response with a `Content-Length` body: (head, body).
async fn read_response(stream: &mut TcpStream) -> (Head, String) {
    let head = read_head(stream).await;
    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let mut body = head.rest.clone();
    let mut buf = [0u8; 4096];
    while body.len() < len {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the body in time")
            .expect("read");
        assert!(n > 0, "closed inside the body");
        body.extend_from_slice(&buf[..n]);
    }
    (head, String::from_utf8_lossy(&body).into_owned())
}

/// Reads until the server closes the connection (EOF, or a reset when
/// it closed with bytes unread); what it sent meanwhile.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open; it sent {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn fetch(addr: SocketAddr, path: &str) -> (Head, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    send_get(&mut stream, path, true).await;
    read_response(&mut stream).await
}

async fn send_get(stream: &mut TcpStream, path: &str, close: bool) {
    let connection = if close { "close" } else { "keep-alive" };
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: {connection}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_closed_at_the_header_timeout_while_others_are_served() {
    const SLOW: usize = 300;
    let header_timeout = Duration::from_secs(3);
    let f = Fixture::new().await;
    let server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(header_timeout)
            .idle_timeout(LONG)
            .max_connections(1000)
    })
    .await;

    // Each slow client sends a request line, then a header byte now and
    // then, until the server closes the connection.
    let started = Arc::new(AtomicUsize::new(0));
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let addr = server.addr;
        let started = started.clone();
        slow.push(tokio::spawn(async move {
            // Before connecting: the server's clock starts later.
            let opened = Instant::now();
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Slow: ")
                .await
                .expect("the request line");
            started.fetch_add(1, Ordering::SeqCst);
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    },
                    () = tokio::time::sleep(Duration::from_millis(250)) => {
                        if stream.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
                assert!(
                    opened.elapsed() < PATIENCE,
                    "a slow client was never closed"
                );
            }
            (opened.elapsed(), seen)
        }));
    }
    let deadline = Instant::now() + PATIENCE;
    while started.load(Ordering::SeqCst) < SLOW {
        assert!(
            Instant::now() < deadline,
            "the slow clients never connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A normal client is answered meanwhile.
    let (head, body) = fetch(server.addr, "/ping").await;
    assert_eq!((head.status, body.as_str()), (200, "pong"));

    for task in slow {
        let (held, seen) = task.await.expect("a slow client");
        assert!(
            held >= header_timeout,
            "a slow client was closed after {held:?}, before the header timeout"
        );
        assert!(
            !seen.starts_with(b"HTTP/1.1 200"),
            "a slow client was answered: {:?}",
            String::from_utf8_lossy(&seen)
        );
    }
    // And the server still answers.
    let (head, _) = fetch(server.addr, "/ping").await;
    assert_eq!(head.status, 200);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let idle_timeout = Duration::from_secs(1);
    let f = Fixture::new().await;
    let server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(LONG)
            .idle_timeout(idle_timeout)
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    // Before the request: the server's idle clock starts later.
    let idle = Instant::now();
    send_get(&mut stream, "/ping", false).await;
    let (head, body) = read_response(&mut stream).await;
    assert_eq!((head.status, body.as_str()), (200, "pong"));
    let rest = read_until_closed(&mut stream).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(
        idle.elapsed() >= idle_timeout,
        "closed before the idle timeout"
    );
}

#[tokio::test]
async fn the_header_timeout_does_not_cut_a_kept_alive_connection_short() {
    // The idle timeout governs between requests, even when it is longer
    // than the header timeout (hyper alone would close after the header
    // timeout).
    let header_timeout = Duration::from_millis(500);
    let f = Fixture::new().await;
    let server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(header_timeout)
            .idle_timeout(LONG)
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    send_get(&mut stream, "/ping", false).await;
    assert_eq!(read_response(&mut stream).await.0.status, 200);
    tokio::time::sleep(header_timeout * 4).await;
    send_get(&mut stream, "/ping", false).await;
    let (head, body) = read_response(&mut stream).await;
    assert_eq!((head.status, body.as_str()), (200, "pong"));
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let f = Fixture::new().await;
    let server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(LONG)
            .idle_timeout(LONG)
            .max_connections(3)
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        send_get(&mut stream, "/hold", true).await;
        held.push(stream);
    }
    f.wait_entered(3).await;

    // A fourth connection is not served while three are open.
    let mut waiting = TcpStream::connect(server.addr)
        .await
        .expect("connect (the kernel's backlog accepts it)");
    send_get(&mut waiting, "/hold", true).await;
    let mut buf = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the fourth connection was answered at the cap"
    );
    assert_eq!(f.entered.load(Ordering::SeqCst), 3, "served past the cap");

    // One request finishes and its connection closes: the fourth is served.
    f.gate.add_permits(1);
    let (head, body) = read_response(&mut held[0]).await;
    assert_eq!((head.status, body.as_str()), (200, "done"));
    f.wait_entered(4).await;
    f.gate.add_permits(3);
    let (head, body) = read_response(&mut waiting).await;
    assert_eq!((head.status, body.as_str()), (200, "done"));
}

/// Opens `GET /api/banner/events` from `from`: the response head.
async fn open_stream(from: Ipv4Addr, to: SocketAddr) -> (TcpStream, Head) {
    let mut stream = connect_from(from, to).await;
    send_get(&mut stream, "/api/banner/events", false).await;
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// Opens an event stream from `from` and waits for its first event.
async fn stream_opens(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let (stream, head) = open_stream(from, to).await;
    first_event(stream, head).await
}

/// Waits for the first event of a stream that answered `head`.
async fn first_event(mut stream: TcpStream, head: Head) -> TcpStream {
    assert_eq!(head.status, 200, "{:?}", head.headers);
    let mut seen = head.rest;
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data:") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the first event in time")
            .expect("read");
        assert!(n > 0, "the stream closed");
        seen.extend_from_slice(&buf[..n]);
    }
    stream
}

/// The error code of a refused stream, checking the 429 and Retry-After.
async fn stream_refused(from: Ipv4Addr, to: SocketAddr) -> serde_json::Value {
    let (mut stream, head) = open_stream(from, to).await;
    assert_eq!(head.status, 429);
    assert_eq!(head.header("retry-after"), Some("5"));
    let len: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let mut body = head.rest;
    let mut buf = [0u8; 1024];
    while body.len() < len {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0);
        body.extend_from_slice(&buf[..n]);
    }
    serde_json::from_slice(&body).expect("a JSON error")
}

/// Retries opening a stream from `from` until one opens (a freed slot).
async fn stream_opens_eventually(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (stream, head) = open_stream(from, to).await;
        if head.status == 200 {
            return first_event(stream, head).await;
        }
        assert_eq!(head.status, 429);
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_per_client_and_in_all() {
    let a = Ipv4Addr::new(127, 0, 0, 1);
    let b = Ipv4Addr::new(127, 0, 0, 2);
    let c = Ipv4Addr::new(127, 0, 0, 3);
    let f = Fixture::new().await;
    // The router allows 3 streams, 2 per client.
    let server = Running::start(|l| Server::new(l, f.app())).await;
    let a1 = stream_opens(a, server.addr).await;
    let _a2 = stream_opens(a, server.addr).await;
    let refused = stream_refused(a, server.addr).await;
    assert_eq!(refused["code"], "TOO_MANY_STREAMS");
    assert_eq!(refused["scope"], "client");
    assert_eq!(refused["limit"], 2);

    let b1 = stream_opens(b, server.addr).await;
    let refused = stream_refused(c, server.addr).await;
    assert_eq!(refused["code"], "TOO_MANY_STREAMS");
    assert_eq!(refused["scope"], "total");
    assert_eq!(refused["limit"], 3);

    // A client going away frees its slot: for itself, and in all.
    drop(a1);
    let _a3 = stream_opens_eventually(a, server.addr).await;
    drop(b1);
    let _c1 = stream_opens_eventually(c, server.addr).await;

    // Plain requests are not limited by the stream caps.
    let (head, _) = fetch(server.addr, "/ping").await;
    assert_eq!(head.status, 200);
}

#[tokio::test]
async fn handlers_see_the_client_address() {
    let f = Fixture::new().await;
    let server = Running::start(|l| Server::new(l, f.app())).await;
    let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 7), server.addr).await;
    let local = stream.local_addr().expect("the client's address");
    send_get(&mut stream, "/peer", true).await;
    let (head, body) = read_response(&mut stream).await;
    assert_eq!((head.status, body), (200, local.to_string()));
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_changes_nothing() {
    let f = Fixture::new().await;
    let server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(LONG)
            .idle_timeout(LONG)
            .body_timeout(Duration::from_millis(500))
    })
    .await;
    let body = r#"{"value":{"active":true,"message":"slow"}}"#;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "PUT /api/banner HTTP/1.1\r\nHost: test\r\nX-Admin: yes\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body.as_bytes()[..10])
        .await
        .expect("a part of the body");
    let (head, text) = read_response(&mut stream).await;
    assert_eq!(head.status, 408, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["code"], "REQUEST_TIMEOUT");
    assert_eq!(
        f.table.get(SiteBannerKey::Banner).await.expect("read"),
        None
    );

    // A body that arrives in time is read as usual.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let request = format!(
        "PUT /api/banner HTTP/1.1\r\nHost: test\r\nX-Admin: yes\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    assert_eq!(read_response(&mut stream).await.0.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish() {
    let f = Fixture::new().await;
    let mut server = Running::start(|l| {
        Server::new(l, f.app())
            .header_timeout(LONG)
            .idle_timeout(LONG)
            .shutdown_grace(LONG)
    })
    .await;
    // A request in flight, an idle kept-alive connection, an event stream.
    let mut in_flight = TcpStream::connect(server.addr).await.expect("connect");
    send_get(&mut in_flight, "/hold", false).await;
    f.wait_entered(1).await;
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    send_get(&mut idle, "/ping", false).await;
    assert_eq!(read_response(&mut idle).await.0.status, 200);
    let mut events = stream_opens(Ipv4Addr::LOCALHOST, server.addr).await;

    server.shut_down();
    // The idle connection and the event stream are closed; no new
    // connection is accepted.
    read_until_closed(&mut idle).await;
    read_until_closed(&mut events).await;
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(server.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!server.task.is_finished(), "did not wait for the request");

    // The request in flight finishes, told that the connection closes.
    f.gate.add_permits(1);
    let (head, body) = read_response(&mut in_flight).await;
    assert_eq!((head.status, body.as_str()), (200, "done"));
    assert_eq!(head.header("connection"), Some("close"));
    read_until_closed(&mut in_flight).await;
    let served = tokio::time::timeout(PATIENCE, &mut server.task)
        .await
        .expect("serve returns once the request is done");
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
}

#[tokio::test]
async fn shutdown_closes_what_is_left_after_the_grace_period() {
    let grace = Duration::from_millis(300);
    let f = Fixture::new().await;
    let mut server = Running::start(|l| Server::new(l, f.app()).shutdown_grace(grace)).await;
    let mut stuck = TcpStream::connect(server.addr).await.expect("connect");
    send_get(&mut stuck, "/hold", false).await;
    f.wait_entered(1).await;
    let asked = Instant::now();
    server.shut_down();
    let served = tokio::time::timeout(PATIENCE, &mut server.task)
        .await
        .expect("serve returns after the grace period");
    assert!(matches!(served, Ok(Ok(()))), "{served:?}");
    assert!(asked.elapsed() >= grace, "returned before the grace period");
    let rest = read_until_closed(&mut stuck).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

/// Keeps `echo` used: a plain route reads its body as usual under the body
/// timeout.
#[tokio::test]
async fn bodies_of_other_routes_are_read_as_usual() {
    let f = Fixture::new().await;
    let server = Running::start(|l| Server::new(l, f.app())).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"PUT /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .expect("send");
    let (head, body) = read_response(&mut stream).await;
    assert_eq!((head.status, body.as_str()), (200, "hello"));
}
