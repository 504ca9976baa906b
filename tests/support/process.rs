//! Child processes of a test: the `kv-test-worker` binary
//! (`tests/worker/kv-test-worker.rs`), one subcommand per role. Cargo
//! builds it before the integration tests and gives them its path.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
