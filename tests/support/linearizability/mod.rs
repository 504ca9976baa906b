//! A linearizability checker for histories of kv operations on a
//! soft-delete table: each key is a register holding a value with a
//! version (`updated_at`), live or soft-deleted, read and written by `get`,
//! `set`, `set_expecting`, `set_if_absent`, `rm` and `restore`.
//!
//! A history is linearizable when every operation can be given one instant
//! between its invocation and its return such that, taken in that order,
//! the operations give the answers they gave on a single copy of the table
//! that follows the documented semantics (`kv-runtime/docs/operations.md`).
//! Linearizability is compositional, so each key is checked on its own.
//!
//! Per key, the search is Wing and Gong's, with Lowe's memoisation: walk
//! the invocations and returns in time order; at each point, any operation
//! invoked before the earliest return still pending may be the next one to
//! take effect; try each whose answer the model state explains, and back
//! track when a pending operation's return is reached. A configuration
//! (operations taken, model state) already explored is not explored again.
//!
//! Operations whose outcome is unknown (a timeout, a lost connection, a
//! process killed mid-call) may or may not have taken effect, at any time
//! after their invocation: they have no return, and the search may take
//! them or leave them out. It tries to leave them out first.
//!
//! Versions are chosen by the store, not by the caller: an operation that
//! took effect without telling its new version leaves the model knowing
//! only a lower bound, which later answers narrow down.
//!
//! When a key's history is not linearizable, [`check`] reports the smallest
//! window of it that is not linearizable by itself: it ends at the first
//! return that no order of the operations before it explains, and starts
//! as late as a window starting from any state the earlier operations may
//! have left still fails.

mod model;
mod search;
mod window;

use std::collections::BTreeMap;

use super::history::{Call, OpId};
use model::State;
use search::{search, Verdict};

/// What an operation's answer tells the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A row: the value and the versions it came back with.
    Row {
        value: u64,
        created_at: i64,
        updated_at: i64,
    },
    /// `get`: no live row.
    NoRow,
    /// `rm`: whether a live row was deleted.
    Removed(bool),
    /// CONFLICT, carrying the live row's version (`None`: no live row).
    Conflict(Option<i64>),
    /// `restore`: NOT_FOUND.
    NotFound,
    /// No answer, or an error saying the write may or may not have been
    /// applied: it may take effect at any time after its invocation, or
    /// never.
    Unknown,
    /// An error saying nothing was written (or a read that failed): no
    /// effect, not checked, shown in reports.
    Failed,
}

/// One operation of a history.
#[derive(Clone, Debug)]
pub struct Op {
    pub id: OpId,
    pub key: String,
    pub call: Call,
    pub outcome: Outcome,
    /// When it was invoked (ns, on one clock for every process).
    pub invoked: u64,
    /// When it returned; `None` for [`Outcome::Unknown`] (open).
    pub completed: Option<u64>,
    /// For reports: what it returned, as recorded (an error's message).
    pub note: String,
}

/// What [`check`] checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Keys (each checked on its own).
    pub keys: usize,
    /// Operations checked.
    pub ops: usize,
    /// Of those, with an unknown outcome.
    pub unknown: usize,
    /// Operations not checked because they failed without effect.
    pub failed: usize,
    /// Configurations the searches explored, over all keys.
    pub states: usize,
}

/// A key whose history is not linearizable, with the smallest offending
/// window, printed.
#[derive(Clone, Debug)]
pub struct Violation {
    pub key: String,
    /// The operations of the window, by invocation.
    pub window: Vec<OpId>,
    /// The operation whose answer no order explains.
    pub culprit: OpId,
    /// The window as a table, and what is wrong.
    pub report: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.report)
    }
}

/// How many configurations one search may explore before it gives up
/// (and the check fails as inconclusive): a bound on memory and time
/// (about 100 bytes and well under a microsecond each). Operations whose
/// outcome is unknown (a lost connection, a crash) stay open to the end
/// of the history and multiply the configurations: one CI-sized history
/// with sessions terminated explored 72 747, so the budget leaves a wide
/// margin rather than failing a correct run as inconclusive.
pub const STATE_BUDGET: usize = 2_000_000;

/// Checks a whole history: `Ok` with what was checked when every key's
/// history is linearizable, else the first key found that is not.
pub fn check(history: &[Op]) -> Result<Summary, Box<Violation>> {
    check_with_budget(history, STATE_BUDGET)
}

/// [`check`] with another search budget.
pub fn check_with_budget(history: &[Op], budget: usize) -> Result<Summary, Box<Violation>> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut summary = Summary::default();
    for (key, mut ops) in by_key {
        ops.sort_by_key(|op| (op.invoked, op.id));
        summary.keys += 1;
        summary.failed += ops.iter().filter(|o| o.outcome == Outcome::Failed).count();
        let checked = checked_ops(&ops);
        summary.ops += checked.len();
        summary.unknown += checked.iter().filter(|o| o.optional).count();
        match search(&checked, State::absent(), None, budget) {
            Verdict::Linearizable { states } => summary.states += states,
            verdict => return Err(Box::new(window::explain(key, &ops, verdict, budget))),
        }
    }
    Ok(summary)
}

/// The operations of one key the search takes: everything but failures
/// and reads without an answer.
fn checked_ops(ops: &[&Op]) -> Vec<SearchOp> {
    ops.iter()
        .filter(|op| effective(op))
        .map(|op| SearchOp {
            id: op.id,
            call: op.call.clone(),
            outcome: op.outcome.clone(),
            invoked: op.invoked,
            completed: op.completed.filter(|_| op.outcome != Outcome::Unknown),
            optional: op.outcome == Outcome::Unknown,
        })
        .collect()
}

/// Whether an operation may have had an effect or told something.
fn effective(op: &Op) -> bool {
    match op.outcome {
        Outcome::Failed => false,
        Outcome::Unknown => op.call != Call::Get,
        _ => true,
    }
}

/// An operation as one search sees it.
#[derive(Clone, Debug)]
struct SearchOp {
    id: OpId,
    call: Call,
    outcome: Outcome,
    invoked: u64,
    /// The return; `None` when the search may leave the operation out.
    completed: Option<u64>,
    /// May be left out (unknown outcome, or begun before a window).
    optional: bool,
}

impl SearchOp {
    fn required(&self) -> bool {
        !self.optional && self.completed.is_some()
    }
}
