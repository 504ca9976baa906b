//! Concurrent histories on a real store, checked for linearizability:
//! worker processes (`kv-test-worker history`, several tasks each) run a
//! random mix of operations on the `Register` table while the test injects
//! faults, each recording when every operation was invoked and returned
//! and what it returned; then [`check`] runs the checker of
//! `linearizability/` on the whole history.
//!
//! `KV_LINEARIZABILITY_OPS` sets the operations per history and
//! `KV_LINEARIZABILITY_ROUNDS` the histories per scenario, each on a new
//! database with a new seed (a long campaign: see the README's Tests
//! section). Many histories rather than one very long one: an operation
//! with an unknown outcome stays open to the end of its history, so the
//! search grows with the history's length times its open operations.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::history::{clock_ns, Answer, Call, OpId, Record};
use super::linearizability::{self, Op, Outcome, Summary};
use super::process;
use super::rng::Rng;
use super::skip::loud;

/// Operations per history: `KV_LINEARIZABILITY_OPS`, else `default`.
pub fn scenario_ops(default: u32) -> u32 {
    env_number("KV_LINEARIZABILITY_OPS", default)
}

/// Histories per scenario: `KV_LINEARIZABILITY_ROUNDS`, else 1.
pub fn rounds() -> u32 {
    env_number("KV_LINEARIZABILITY_ROUNDS", 1).max(1)
}

fn env_number(var: &str, default: u32) -> u32 {
    match std::env::var(var) {
        Ok(n) if !n.trim().is_empty() => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={n:?} is not a number")),
        _ => default,
    }
}

/// Whether a BACKEND error says the write may have been applied: the
/// message says so (`kv-runtime/docs/errors.md`); any other BACKEND error
/// of a write promises that nothing was written.
pub fn outcome_unknown(message: &str) -> bool {
    message.contains("may or may not have been applied")
}

/// What a scenario runs: `processes` workers of `tasks` tasks each, `ops`
/// operations in all (split evenly), on the keys `k0..k<keys>`.
#[derive(Clone, Debug)]
pub struct Plan {
    pub url: String,
    pub processes: u32,
    pub tasks: u32,
    pub ops: u32,
    pub keys: u64,
}

impl Plan {
    fn ops_per_task(&self) -> u32 {
        (self.ops / (self.processes * self.tasks).max(1)).max(1)
    }
}

/// A worker process and the lines it printed.
struct Worker {
    process: u32,
    child: Option<Child>,
    killed: bool,
    reader: Option<JoinHandle<Vec<String>>>,
    returned: Arc<AtomicUsize>,
}

/// Workers running a [`Plan`].
pub struct Run {
    plan: Plan,
    seed: u64,
    workers: Vec<Worker>,
    /// What the test did to the store, and when (for the report).
    faults: Vec<(u64, String)>,
}

impl Run {
    /// Starts the plan's workers; they begin their operations together,
    /// once each has opened its store.
    pub fn start(plan: Plan) -> Run {
        let seed = Rng::from_time().next_u64();
        let mut run = Run {
            plan,
            seed,
            workers: Vec::new(),
            faults: Vec::new(),
        };
        let start_at = process::start_at(Duration::from_secs(1));
        for _ in 0..run.plan.processes {
            run.spawn_worker(&start_at);
        }
        run
    }

    /// Starts one more worker (the next process number), at once.
    pub fn add_worker(&mut self) -> u32 {
        self.spawn_worker(&process::start_at(Duration::ZERO))
    }

    fn spawn_worker(&mut self, start_at: &str) -> u32 {
        let number = u32::try_from(self.workers.len()).expect("few workers");
        let args = [
            self.plan.url.clone(),
            number.to_string(),
            self.plan.tasks.to_string(),
            self.plan.ops_per_task().to_string(),
            self.plan.keys.to_string(),
            (self.seed ^ u64::from(number)).to_string(),
            start_at.to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = process::spawn("history", &args);
        let stdout = child.stdout.take().expect("stdout is piped");
        let returned = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&returned);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut stdout = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match stdout.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    // A line cut short by a kill was not printed in full.
                    Ok(_) if buf.last() != Some(&b'\n') => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                if line.starts_with("{\"return\"") {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                lines.push(line);
            }
            lines
        });
        self.workers.push(Worker {
            process: number,
            child: Some(child),
            killed: false,
            reader: Some(reader),
            returned,
        });
        number
    }

    /// Operations returned so far, over every worker.
    pub fn returned(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.returned.load(Ordering::SeqCst))
            .sum()
    }

    /// The operations the plan's first workers run in all.
    pub fn planned(&self) -> usize {
        self.plan.ops_per_task() as usize * self.plan.tasks as usize * self.plan.processes as usize
    }

    /// Waits (bounded) until `n` operations returned, or every worker
    /// ended; whether `n` did.
    pub fn wait_for(&mut self, n: usize) -> bool {
        let deadline = Instant::now() + self.bound();
        loop {
            if self.returned() >= n {
                return true;
            }
            if !self.running() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "the workers did not make progress: {} operations returned in {:?}",
                self.returned(),
                self.bound()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether a worker is still running.
    pub fn running(&mut self) -> bool {
        self.workers.iter_mut().any(|w| {
            w.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        })
    }

    /// Kills worker `process` with SIGKILL, wherever it is.
    pub fn kill(&mut self, process: u32) {
        let worker = &mut self.workers[process as usize];
        let child = worker.child.as_mut().expect("a running worker");
        child.kill().expect("SIGKILL is delivered");
        child.wait().expect("the killed worker is reaped");
        worker.killed = true;
        let returned = worker.returned.load(Ordering::SeqCst);
        self.note(format!(
            "worker p{process} killed with SIGKILL after {returned} of its operations returned"
        ));
    }

    /// Records a fault the test injected, with the time, for the report.
    pub fn note(&mut self, what: String) {
        loud(&format!("fault: {what}"));
        self.faults.push((clock_ns(), what));
    }

    /// The faults injected so far.
    pub fn faults(&self) -> usize {
        self.faults.len()
    }

    fn bound(&self) -> Duration {
        // Hang detection only: generous for long campaigns on slow disks.
        Duration::from_secs(120) + Duration::from_millis(50) * self.plan.ops_per_task()
    }

    /// Waits (bounded) for every worker to end, checks that those not
    /// killed succeeded, and returns the history they recorded.
    pub fn finish(mut self) -> History {
        let bound = self.bound();
        let deadline = Instant::now() + bound;
        let mut lines = Vec::new();
        let mut killed = Vec::new();
        for worker in &mut self.workers {
            if let Some(mut child) = worker.child.take() {
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            assert!(
                                worker.killed || status.success(),
                                "worker p{} failed: {status}",
                                worker.process
                            );
                            break;
                        }
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => {
                            let _ = child.kill();
                            panic!("worker p{} did not finish within {bound:?}", worker.process);
                        }
                    }
                }
            }
            let reader = worker.reader.take().expect("one reader per worker");
            lines.extend(reader.join().expect("the reader thread ends at EOF"));
            if worker.killed {
                killed.push(worker.process);
            }
        }
        History::parse(lines, &killed, std::mem::take(&mut self.faults))
    }
}

/// A recorded history: its lines, and the operations the checker takes.
pub struct History {
    pub lines: Vec<String>,
    pub ops: Vec<Op>,
    faults: Vec<(u64, String)>,
}

impl History {
    /// Pairs each invocation with its return. An operation of a killed
    /// worker without a return has an unknown outcome; every other one
    /// must have returned.
    fn parse(lines: Vec<String>, killed: &[u32], faults: Vec<(u64, String)>) -> History {
        let mut calls: BTreeMap<OpId, (u64, String, Call)> = BTreeMap::new();
        let mut returns: BTreeMap<OpId, (u64, Answer)> = BTreeMap::new();
        for line in &lines {
            let record: Record = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a worker printed {line:?}, not a history record: {e}"));
            match record {
                Record::Invoke { id, at, key, call } => {
                    calls.insert(id, (at, key, call));
                }
                Record::Return { id, at, answer } => {
                    returns.insert(id, (at, answer));
                }
            }
        }
        let mut ops = Vec::with_capacity(calls.len());
        for (id, (invoked, key, call)) in calls {
            let (outcome, completed, note) = match returns.remove(&id) {
                Some((at, answer)) => {
                    let outcome = classify(id, &call, &answer);
                    let note = match &answer {
                        Answer::Error { code, message, .. } => format!("{code}: {message}"),
                        _ => String::new(),
                    };
                    let completed = (outcome != Outcome::Unknown).then_some(at);
                    (outcome, completed, note)
                }
                None => {
                    assert!(
                        killed.contains(&id.p),
                        "operation {id} of a worker that was not killed never returned"
                    );
                    (
                        Outcome::Unknown,
                        None,
                        "no answer: the process was killed".to_owned(),
                    )
                }
            };
            ops.push(Op {
                id,
                key,
                call,
                outcome,
                invoked,
                completed,
                note,
            });
        }
        assert!(
            returns.is_empty(),
            "returns without invocations: {returns:?}"
        );
        History { lines, ops, faults }
    }
}

/// What an answer tells the checker. Errors other than CONFLICT,
/// NOT_FOUND and BACKEND fail the test.
fn classify(id: OpId, call: &Call, answer: &Answer) -> Outcome {
    match answer {
        Answer::Row {
            value,
            created_at,
            updated_at,
        } => Outcome::Row {
            value: *value,
            created_at: *created_at,
            updated_at: *updated_at,
        },
        Answer::NoRow => Outcome::NoRow,
        Answer::Removed(removed) => Outcome::Removed(*removed),
        Answer::Error {
            code,
            current,
            message,
        } => match code.as_str() {
            "CONFLICT" => Outcome::Conflict(*current),
            "NOT_FOUND" => Outcome::NotFound,
            "BACKEND" if *call != Call::Get && outcome_unknown(message) => Outcome::Unknown,
            "BACKEND" => Outcome::Failed,
            other => panic!("operation {id} ({call:?}) failed with {other}: {message}"),
        },
    }
}

/// Checks `history` for linearizability, says loudly what was checked,
/// and fails with the smallest offending window when it is not (the whole
/// history is then written to a file named in the message).
pub fn check(scenario: &str, history: &History) -> Summary {
    let started = Instant::now();
    let result = linearizability::check(&history.ops);
    let took = started.elapsed();
    let faults: Vec<String> = history
        .faults
        .iter()
        .map(|(at, what)| format!("  at {:.3} s: {what}", *at as f64 / 1e9))
        .collect();
    match result {
        Ok(summary) => {
            loud(&format!(
                "{scenario}: linearizable: {} operations on {} keys ({} with an unknown \
                 outcome; {} more failed without effect), {} configurations explored in {:.2?}; \
                 {} faults injected",
                summary.ops,
                summary.keys,
                summary.unknown,
                summary.failed,
                summary.states,
                took,
                faults.len()
            ));
            summary
        }
        Err(violation) => {
            let path = std::env::temp_dir().join(format!(
                "kv-history-{}-{}.jsonl",
                scenario.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
                std::process::id()
            ));
            let saved = std::fs::write(&path, history.lines.join("\n"))
                .map(|()| format!("the whole history is in {}", path.display()))
                .unwrap_or_else(|e| format!("the history could not be saved: {e}"));
            panic!(
                "{scenario}: {violation}\nFaults injected (times on CLOCK_MONOTONIC):\n{}\n{saved}",
                faults.join("\n")
            );
        }
    }
}

/// Checks that a history exercised what it is meant to: conditional
/// writes that were accepted and refused, deletes, restores, and reads of
/// live and deleted rows (a history of failures alone would prove
/// nothing); prints how many operations of each kind returned what.
pub fn assert_exercised(scenario: &str, history: &History) {
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for op in &history.ops {
        let call = match op.call {
            Call::Get => "get",
            Call::Set { .. } => "set",
            Call::SetExpecting { .. } => "set_expecting",
            Call::SetIfAbsent { .. } => "set_if_absent",
            Call::Rm => "rm",
            Call::Restore => "restore",
        };
        let outcome = match op.outcome {
            Outcome::Row { .. } => "row",
            Outcome::NoRow => "none",
            Outcome::Removed(true) => "removed",
            Outcome::Removed(false) => "not removed",
            Outcome::Conflict(_) => "conflict",
            Outcome::NotFound => "not found",
            Outcome::Unknown => "unknown",
            Outcome::Failed => "failed",
        };
        *tally.entry(format!("{call} {outcome}")).or_default() += 1;
    }
    // The errors, by message with the numbers taken out.
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for op in &history.ops {
        if matches!(op.outcome, Outcome::Unknown | Outcome::Failed) {
            let shape: String = op
                .note
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .take(200)
                .collect();
            *errors.entry(shape).or_default() += 1;
        }
    }
    let errors: Vec<String> = errors
        .iter()
        .map(|(message, n)| format!("  {n} x {message}"))
        .collect();
    let errors = if errors.is_empty() {
        " none".to_owned()
    } else {
        format!("\n{}", errors.join("\n"))
    };
    loud(&format!("{scenario}: {tally:?}\nerrors:{errors}"));
    for needed in [
        "get row",
        "get none",
        "set_expecting row",
        "set_expecting conflict",
        "set_if_absent row",
        "rm removed",
        "restore row",
    ] {
        assert!(
            tally.contains_key(needed),
            "{scenario}: no `{needed}` in the history, which then proves little: {tally:?}"
        );
    }
}
