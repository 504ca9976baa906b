//! Fan-out: 10 000 watchers of one key, in process (`Table::watch`
//! streams, each read by its own task) and over HTTP (`GET /{key}/events`
//! server-sent events from `web::Server` on loopback, each read by its
//! own client connection). For each change: the time from `set` returning
//! to the last of the watchers receiving it; and the memory each idle
//! watcher holds.
//!
//! Each part has a raw baseline run after it in the same process: a Tokio
//! `watch` channel read by as many tasks, and a hand-written HTTP/1.1
//! event-stream server fed by one, serving the same client process.
//!
//! `cargo bench -p kv-runtime --features web --bench fanout` (all parts;
//! `FANOUT_WATCHERS=2000` for another number of watchers than 10 000),
//! or `... --bench fanout -- sse raw-sse` (some of `watch`, `raw-watch`,
//! `sse`, `raw-sse`).
//!
//! Not criterion: one run of 30 changes per part, printed as `fanout/`
//! lines. The store is the memory backend (its change feed is the
//! in-process one every backend feeds); the bench process runs it on one
//! Tokio runtime with 2 workers (the machine's two cores). The SSE clients
//! run in a child process (the same binary, `--sse-clients`), so that
//! each process holds 10 000 sockets, and share the two cores with the
//! server: the SSE figures are an upper bound of the server's. Both
//! processes read `CLOCK_MONOTONIC`, one clock for the machine.
//!
//! Memory is counted by a counting allocator (bytes allocated and not
//! freed): per in-process watcher, its task, stream and follower; per SSE
//! connection, the server's connection, stream and watcher (kernel socket
//! buffers not included).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_runtime::web::{self, Server};
use kv_runtime::{Ctx, Kv, Store, Table};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live bytes once no thread has allocated or freed for 100 ms.
async fn settled_bytes() -> isize {
    let mut last = LIVE.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = LIVE.load(Ordering::Relaxed);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "fanoutBanner", keys = [banner], write_role = admin)]
struct Banner {
    text: String,
    round: u64,
}

fn banner(round: u64) -> Banner {
    Banner {
        text: format!("Maintenance tonight at 22:00 UTC, round-{round:04}."),
        round,
    }
}

/// How many watchers: 10 000, or `FANOUT_WATCHERS` (the child process
/// inherits it).
fn watchers() -> usize {
    static WATCHERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WATCHERS.get_or_init(|| {
        std::env::var("FANOUT_WATCHERS")
            .ok()
            .map(|n| n.parse().expect("FANOUT_WATCHERS is a number"))
            .unwrap_or(10_000)
    })
}

/// `CLOCK_MONOTONIC` in ns: one clock for both processes.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
const ROUNDS: u64 = 30;

/// What the watchers report per round: how many received it, and the
/// latest time one did (ns since `base`).
struct Arrivals {
    count: Vec<AtomicUsize>,
    last: Vec<AtomicU64>,
    /// Every watcher's delay (ns after its round's `set` returned), for the
    /// per-watcher percentiles.
    set_at: Vec<AtomicU64>,
    delays: std::sync::Mutex<Vec<u64>>,
}

impl Arrivals {
    fn new() -> Arc<Self> {
        Arc::new(Arrivals {
            count: (0..=ROUNDS).map(|_| AtomicUsize::new(0)).collect(),
            last: (0..=ROUNDS).map(|_| AtomicU64::new(0)).collect(),
            set_at: (0..=ROUNDS).map(|_| AtomicU64::new(0)).collect(),
            delays: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn now(&self) -> u64 {
        monotonic_ns()
    }

    fn arrived(&self, round: u64, local: &mut Vec<u64>) {
        let r = round as usize;
        if r > ROUNDS as usize {
            return;
        }
        let now = self.now();
        self.last[r].fetch_max(now, Ordering::Relaxed);
        self.count[r].fetch_add(1, Ordering::Release);
        let set = self.set_at[r].load(Ordering::Acquire);
        if set != 0 {
            local.push(now.saturating_sub(set));
        }
    }

    fn flush(&self, local: Vec<u64>) {
        self.delays.lock().unwrap().extend(local);
    }
}

/// Writes `ROUNDS` changes with `write(round)`, one at a time, each once
/// every watcher has received the previous one; `last_arrival(round,
/// set_at)` waits until all have received `round` and returns when the
/// last did (monotonic ns). Prints the time from the write returning to
/// that last arrival.
async fn rounds<W, WFut, F, Fut>(name: &str, mut write: W, mut last_arrival: F)
where
    W: FnMut(u64) -> WFut,
    WFut: std::future::Future<Output = ()>,
    F: FnMut(u64, u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut to_last = Vec::new();
    for round in 1..=ROUNDS {
        tokio::time::sleep(Duration::from_millis(50)).await;
        write(round).await;
        let set_at = monotonic_ns();
        let last = last_arrival(round, set_at).await;
        to_last.push(Duration::from_nanos(last.saturating_sub(set_at)));
    }
    to_last.sort();
    let at = |q: f64| to_last[((to_last.len() - 1) as f64 * q).round() as usize];
    println!(
        "fanout/{name}: {} watchers, {ROUNDS} changes: write returned -> last watcher \
         received: min {:?}, p50 {:?}, p99 {:?}, max {:?}",
        watchers(),
        to_last[0],
        at(0.5),
        at(0.99),
        to_last[to_last.len() - 1]
    );
}

/// `write` for [`rounds`] through kv: a typed `set` of the key.
fn kv_set(table: &Table<Banner>) -> impl FnMut(u64) -> BoxFuture<'static, ()> {
    let table = table.clone();
    move |round| {
        let table = table.clone();
        Box::pin(async move {
            let admin = Ctx::user("ada").with_role("admin");
            table
                .set(&admin, BannerKey::Banner, banner(round))
                .await
                .expect("set");
        })
    }
}

/// `write` for [`rounds`] in the raw baselines: a send of `value(round)`
/// on a Tokio `watch` channel.
fn raw_send<T: Send + Sync + 'static>(
    tx: &watch::Sender<T>,
    value: fn(u64) -> T,
) -> impl FnMut(u64) -> BoxFuture<'static, ()> {
    let tx = tx.clone();
    move |round| {
        tx.send_replace(value(round));
        Box::pin(async {})
    }
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Waits until every watcher has reported `round`; the last arrival.
async fn all_arrived(arrivals: &Arrivals, round: u64, set_at: u64) -> u64 {
    arrivals.set_at[round as usize].store(set_at, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.count[round as usize].load(Ordering::Acquire) < watchers() {
        assert!(
            Instant::now() < deadline,
            "every watcher receives round {round}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    arrivals.last[round as usize].load(Ordering::Relaxed)
}

fn print_delays(name: &str, arrivals: &Arrivals) {
    let mut delays = std::mem::take(&mut *arrivals.delays.lock().unwrap());
    delays.sort_unstable();
    if delays.is_empty() {
        return;
    }
    let at = |q: f64| Duration::from_nanos(delays[((delays.len() - 1) as f64 * q) as usize]);
    println!(
        "fanout/{name}: per watcher and change ({} deliveries): p50 {:?}, p99 {:?}, max {:?}",
        delays.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn in_process(store: &Store) {
    let table = store.table::<Banner>();
    let arrivals = Arrivals::new();
    let before = settled_bytes().await;
    let mut tasks = Vec::with_capacity(watchers());
    for _ in 0..watchers() {
        let table = table.clone();
        let arrivals = Arc::clone(&arrivals);
        tasks.push(tokio::spawn(async move {
            let mut watch = table.watch(BannerKey::Banner).await.expect("watch");
            let mut local = Vec::new();
            while let Some(state) = watch.next().await {
                let state = state.expect("a readable state");
                let round = state.row.map_or(0, |r| r.value.round);
                arrivals.arrived(round, &mut local);
                if round == ROUNDS {
                    break;
                }
            }
            arrivals.flush(local);
        }));
    }
    let held = "task, stream, follower";
    watchers_report("watch", held, before, &arrivals, tasks, kv_set(&table)).await;
}

/// Once every in-process watcher (`tasks`) has its first state: reports
/// the memory they hold (`held` says what that is; `before` is the live
/// bytes before they started), runs the rounds with `write` and the
/// watchers to their end, and prints the delays.
async fn watchers_report<W>(
    name: &str,
    held: &str,
    before: isize,
    arrivals: &Arrivals,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    write: W,
) where
    W: FnMut(u64) -> BoxFuture<'static, ()>,
{
    while arrivals.count[0].load(Ordering::Acquire) < watchers() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let idle = settled_bytes().await - before;
    println!(
        "fanout/{name}: memory per idle watcher ({held}): {} B",
        idle / watchers() as isize
    );
    rounds(name, write, |round, set_at| {
        all_arrived(arrivals, round, set_at)
    })
    .await;
    for task in tasks {
        task.await.expect("a watcher ends");
    }
    print_delays(name, arrivals);
}

/// One SSE client: connects from `source`, asks for the key's events, then
/// reports each round it sees (the first event is the current state).
async fn sse_client(
    addr: std::net::SocketAddr,
    source: std::net::IpAddr,
    arrivals: Arc<Arrivals>,
    ready: Arc<AtomicUsize>,
) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .expect("bind a source address");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(
            b"GET /banner/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .expect("request");
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let mut local = Vec::new();
    let mut headers_seen = false;
    loop {
        if filled == buf.len() {
            filled = 0; // only the tail matters; markers are short
        }
        let n = stream.read(&mut buf[filled..]).await.expect("read");
        assert!(n > 0, "the server keeps the stream open");
        filled += n;
        let text = &buf[..filled];
        if !headers_seen {
            if !text.windows(4).any(|w| w == b"\r\n\r\n") {
                continue;
            }
            assert!(
                text.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(text)
            );
            headers_seen = true;
        }
        // Each event carries `"round":N`; the first one is the current state.
        let mut done = false;
        let mut consumed = 0;
        while let Some(pos) = find(&text[consumed..], b"\"round\":") {
            let start = consumed + pos + 8;
            let end = start
                + text[start..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
            if end == filled {
                break; // the number may go on in the next read
            }
            let round: u64 = std::str::from_utf8(&text[start..end])
                .expect("ascii")
                .parse()
                .expect("a round");
            if round == 0 {
                ready.fetch_add(1, Ordering::Release);
            }
            arrivals.arrived(round, &mut local);
            done = round == ROUNDS;
            consumed = end;
        }
        if done {
            break;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
    }
    arrivals.flush(local);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn over_sse(store: &Store) {
    let table = store.table::<Banner>();
    // The state every stream starts from: round 0.
    table
        .set(&Ctx::internal(), BannerKey::Banner, banner(0))
        .await
        .expect("set");
    let api = web::router(table.clone(), |_: &axum::http::request::Parts| async {
        Ok::<_, web::ApiError>(Ctx::anonymous())
    })
    .max_event_streams(2 * watchers())
    .max_event_streams_per_client(2 * watchers())
    .build::<()>();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new(listener, api)
            .max_connections(2 * watchers())
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .shutdown_grace(Duration::from_millis(100))
            .serve(),
    );
    clients_report("sse", addr, kv_set(&table)).await;
    let _ = stop.send(());
    let _ = server.await;
}

/// Starts the client process against `addr`, reports the memory the
/// server's side of the idle streams holds, then runs the rounds with
/// `write`.
async fn clients_report<W>(name: &str, addr: std::net::SocketAddr, write: W)
where
    W: FnMut(u64) -> BoxFuture<'static, ()>,
{
    let before = settled_bytes().await;
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("this binary"))
        .arg("--sse-clients")
        .arg(addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the client process starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = lines
        .next_line()
        .await
        .expect("read")
        .expect("the clients report");
    assert_eq!(line, "ready", "the clients connect");
    let idle = settled_bytes().await - before;
    println!(
        "fanout/{name}: memory per idle SSE stream on the server (connection, stream, watcher): {} B",
        idle / watchers() as isize
    );
    let lines = tokio::sync::Mutex::new(lines);
    rounds(name, write, |round, _| {
        let lines = &lines;
        async move {
            let line = lines
                .lock()
                .await
                .next_line()
                .await
                .expect("read")
                .expect("the clients report each round");
            let (r, last) = line.split_once(' ').expect("ROUND LAST_NS");
            assert_eq!(r.parse::<u64>().expect("a round"), round);
            last.parse().expect("ns")
        }
    })
    .await;
    let status = child.wait().await.expect("the clients end");
    assert!(status.success(), "the client process succeeded");
}

/// The raw baseline of [`in_process`]: a Tokio `watch` channel of the
/// value, each of [`watchers`] tasks waiting for a change and cloning the
/// value, as a hand-written fan-out would.
async fn raw_in_process() {
    let (tx, _) = watch::channel(banner(0));
    let arrivals = Arrivals::new();
    let before = settled_bytes().await;
    let mut tasks = Vec::with_capacity(watchers());
    for _ in 0..watchers() {
        let mut rx = tx.subscribe();
        let arrivals = Arc::clone(&arrivals);
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            loop {
                let value = rx.borrow_and_update().clone();
                arrivals.arrived(value.round, &mut local);
                if value.round == ROUNDS || rx.changed().await.is_err() {
                    break;
                }
            }
            arrivals.flush(local);
        }));
    }
    watchers_report(
        "raw-watch",
        "task, receiver",
        before,
        &arrivals,
        tasks,
        raw_send(&tx, banner),
    )
    .await;
}

/// The raw baseline of [`over_sse`]: a hand-written HTTP/1.1 server on a
/// Tokio listener, one task per connection, writing each change as a chunk
/// of `data: JSON` (no routing, caps, limits, keep-alive comments or
/// shutdown), to the same client process. The chunk is encoded once per
/// change and shared by every connection (a `watch` channel of it), so
/// this is the floor of what a server can do on this machine.
async fn raw_over_sse() {
    let (tx, rx) = watch::channel(sse_chunk(&banner(0)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((socket, _)) => {
                    tokio::spawn(raw_sse_connection(socket, rx.clone()));
                }
                // Out of descriptors, say: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    let write = raw_send(&tx, |round| sse_chunk(&banner(round)));
    clients_report("raw-sse", addr, write).await;
    server.abort();
}

/// An event-stream chunk carrying `value` as `data: JSON`, in HTTP/1.1's
/// chunked framing.
fn sse_chunk(value: &Banner) -> Arc<[u8]> {
    let json = serde_json::to_string(value).expect("json");
    let event = format!("data: {json}\n\n");
    format!("{:x}\r\n{event}\r\n", event.len())
        .into_bytes()
        .into()
}

/// One connection of the raw SSE server: reads the request head, answers
/// 200 with a chunked event stream, then writes each chunk.
async fn raw_sse_connection(mut socket: TcpStream, mut rx: watch::Receiver<Arc<[u8]>>) {
    let _ = socket.set_nodelay(true);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                   cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    if socket.write_all(answer).await.is_err() {
        return;
    }
    loop {
        let chunk = Arc::clone(&rx.borrow_and_update());
        if socket.write_all(&chunk).await.is_err() || rx.changed().await.is_err() {
            return;
        }
    }
}

/// The child process: [`watchers`] SSE clients of the server at `addr`.
/// Prints `ready` once all have their first event, then per round
/// `ROUND LAST_NS` once all have received it, and the per-client delay
/// percentiles at the end (on stderr).
fn sse_clients(addr: std::net::SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let arrivals = Arrivals::new();
        let ready = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::with_capacity(watchers());
        for i in 0..watchers() {
            // Several loopback source addresses (127.0.0.1-4), as clients
            // on different hosts would have.
            let source = std::net::IpAddr::from([127, 0, 0, 1 + (i % 4) as u8]);
            clients.push(tokio::spawn(sse_client(
                addr,
                source,
                Arc::clone(&arrivals),
                Arc::clone(&ready),
            )));
            if i % 500 == 499 {
                // Let the server accept; the listen backlog is finite.
                while ready.load(Ordering::Acquire) + 500 < i {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        while ready.load(Ordering::Acquire) < watchers() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("ready");
        for round in 1..=ROUNDS {
            let deadline = Instant::now() + Duration::from_secs(120);
            while arrivals.count[round as usize].load(Ordering::Acquire) < watchers() {
                assert!(
                    Instant::now() < deadline,
                    "every client receives round {round}"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            println!(
                "{round} {}",
                arrivals.last[round as usize].load(Ordering::Relaxed)
            );
        }
        for client in clients {
            client.await.expect("a client ends");
        }
    });
}

fn raise_open_files(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a valid pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if limit.rlim_cur >= want {
        return;
    }
    limit.rlim_cur = want.min(limit.rlim_max);
    // SAFETY: a valid resource and a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 || limit.rlim_cur < want {
        eprintln!(
            "fanout: cannot raise the open-file limit to {want} ({}); the SSE part may fail",
            std::io::Error::last_os_error()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches: nothing to list
    }
    raise_open_files(watchers() as u64 + 2_000);
    if let Some(i) = args.iter().position(|a| a == "--sse-clients") {
        sse_clients(args[i + 1].parse().expect("an address"));
        return;
    }
    // `cargo bench ... --bench fanout -- sse raw-sse` runs only those parts.
    let parts: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    const PARTS: [&str; 4] = ["watch", "raw-watch", "sse", "raw-sse"];
    if let Some(unknown) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        eprintln!("fanout: no part {unknown:?}; the parts are {PARTS:?}");
        std::process::exit(2);
    }
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| *p == part);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("fanout: load average {}", load.trim());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::memory();
        store
            .table::<Banner>()
            .set(&Ctx::internal(), BannerKey::Banner, banner(0))
            .await
            .expect("set");
        if wanted("watch") {
            in_process(&store).await;
        }
        if wanted("raw-watch") {
            raw_in_process().await;
        }
        if wanted("sse") {
            over_sse(&Store::memory()).await;
        }
        if wanted("raw-sse") {
            raw_over_sse().await;
        }
    });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("fanout: load average {}", load.trim());
}
