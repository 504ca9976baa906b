//! Child processes of a test: this test binary run again (the re-exec
//! trick), asked to run only one worker test, which reads its instructions
//! from the environment.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::wait::BOUND;

/// Protocol lines from a child start with this (libtest prints its own
/// lines on the same stdout).
pub const LINE: &str = "KVW ";

/// This test binary, running only the test `test_name`, with `env` set so
/// that the test acts as a worker. Stdout is piped; stderr is inherited.
pub fn worker_command(test_name: &str, env: &[(&str, &str)]) -> Command {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts [`worker_command`].
pub fn spawn_child(test_name: &str, env: &[(&str, &str)]) -> Child {
    worker_command(test_name, env)
        .spawn()
        .expect("the child test process starts")
}

/// The child's protocol lines, as they come, on a channel (read by a thread).
pub fn child_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print "test name ... " just before the first line.
            if let Some(at) = line.find(LINE) {
                if tx.send(line[at + LINE.len()..].to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits (bounded) for the child to exit, and checks that it succeeded.
pub fn wait_child(mut child: Child) {
    let deadline = Instant::now() + BOUND;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "the child test process failed: {status}");
                return;
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                panic!("the child test process did not finish within {BOUND:?}");
            }
        }
    }
}
