//! Child processes of a test: the `kv-test-worker` binary
//! (`tests/worker/kv-test-worker.rs`), one subcommand per role. Cargo
//! builds it before the integration tests and gives them its path.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::rng::Rng;
use super::wait::BOUND;

/// The worker binary, built by cargo for the integration tests.
pub const WORKER: &str = env!("CARGO_BIN_EXE_kv-test-worker");

/// `kv-test-worker ROLE ARGS...`, with stdin closed, stdout piped (the
/// worker's reports) and stderr inherited (its panics show in the test's
/// output).
pub fn worker(role: &str, args: &[&str]) -> Command {
    let mut command = Command::new(WORKER);
    command
        .arg(role)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// Starts `kv-test-worker ROLE ARGS...` (see [`worker`]).
pub fn spawn(role: &str, args: &[&str]) -> Child {
    worker(role, args)
        .spawn()
        .unwrap_or_else(|e| panic!("the worker {WORKER} starts: {e}"))
}

/// The wall-clock instant `after` from now, in ms since the epoch: the
/// argument that makes several workers start their work together, once
/// each has started up.
pub fn start_at(after: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970");
    (now + after).as_millis().to_string()
}

/// Waits for a worker to finish, checks that it succeeded, and returns
/// what it printed.
pub fn finish(child: Child) -> String {
    let out = child
        .wait_with_output()
        .expect("the worker runs to its end");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "a worker failed ({}); it printed:\n{stdout}",
        out.status
    );
    stdout
}

/// The value of the report line `word VALUE` in `stdout`.
pub fn reported<'a>(stdout: &'a str, word: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(word)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("the worker reports {word:?}; it printed:\n{stdout}"))
}

/// The worker's report lines, as they come, on a channel (read by a thread).
pub fn lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("the worker's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits (bounded) for the worker to exit, and checks that it succeeded.
pub fn wait(mut child: Child) {
    let deadline = Instant::now() + BOUND;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "the worker failed: {status}");
                return;
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                panic!("the worker did not finish within {BOUND:?}");
            }
        }
    }
}

/// Starts `kv-test-worker ROLE ARGS...`, waits for its `ready` line, lets
/// it work for a random 50 to 400 ms, kills it with SIGKILL, and returns
/// the report lines it printed in full (a line cut short by the kill was
/// not printed whole, and acknowledges nothing) and how long it worked, in
/// ms.
pub fn run_until_killed(role: &str, args: &[&str], rng: &mut Rng) -> (Vec<String>, u64) {
    let mut child = spawn(role, args);
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut stdout = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match stdout.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) if buf.last() != Some(&b'\n') => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
            if line == "ready" {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    ready_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker opens the store and starts writing");
    let delay = rng.range(50, 400);
    std::thread::sleep(Duration::from_millis(delay));
    child.kill().expect("SIGKILL is delivered");
    let status = child.wait().expect("the killed worker is reaped");
    assert!(!status.success(), "the worker was killed, not finished");
    let lines = reader.join().expect("the reader thread ends at EOF");
    (lines, delay)
}
