//! The smallest window of a history that is not linearizable by itself,
//! and its report.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::super::history::{Call, OpId};
use super::model::State;
use super::search::{search, Verdict};
use super::{checked_ops, effective, Op, Outcome, SearchOp, Violation};

/// The operations of a key as they were known at `t`: those invoked by
/// then, the ones still running at `t` with an unknown outcome.
fn known_at(ops: &[&Op], t: u64) -> Vec<SearchOp> {
    let mut out = checked_ops(ops);
    out.retain(|op| op.invoked <= t);
    out.retain_mut(|op| {
        if op.completed.is_some_and(|c| c <= t) {
            return true;
        }
        if op.call == Call::Get {
            return false;
        }
        op.outcome = Outcome::Unknown;
        op.completed = None;
        op.optional = true;
        true
    });
    out
}

/// The operations of `ops` (see [`known_at`]) from `start` on: those
/// returned before it are left out, those running at `start` may have
/// taken effect before it (optional).
fn window_from(ops: &[SearchOp], start: u64) -> Vec<SearchOp> {
    ops.iter()
        .filter(|op| op.completed.is_none_or(|c| c >= start))
        .cloned()
        .map(|mut op| {
            if op.invoked < start {
                op.optional = true;
                op.completed = None;
            }
            op
        })
        .collect()
}

/// The smallest offending window of a key whose history `verdict` says is
/// not linearizable, as a report.
pub(super) fn explain(key: &str, ops: &[&Op], verdict: Verdict, budget: usize) -> Violation {
    // A probe budget below the whole check's: a window is found by many
    // probes, each of which must exhaust its search to fail.
    let probe_budget = (budget / 4).max(1000);
    let fails = |checked: &[SearchOp], init: State, allowed: Option<&HashSet<u64>>| {
        !matches!(
            search(checked, init, allowed, probe_budget),
            Verdict::Linearizable { .. }
        )
    };

    // The end: the first return after which the history known so far is
    // not linearizable (adding returns only adds constraints).
    let mut ends: Vec<u64> = checked_ops(ops)
        .iter()
        .filter(|o| o.required())
        .filter_map(|o| o.completed)
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let (mut lo, mut hi) = (0, ends.len().saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&known_at(ops, ends[mid]), State::absent(), None) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let end = ends.get(lo).copied().unwrap_or(u64::MAX);
    let prefix = known_at(ops, end);

    // The start: the latest at which the window from any state left by
    // the operations before it still fails (starting later only loosens).
    let allowed_before = |start: u64| -> HashSet<u64> {
        prefix
            .iter()
            .filter(|o| o.invoked < start)
            .filter_map(|o| written_value(&o.call))
            .collect()
    };
    let window_fails = |start: u64| {
        fails(
            &window_from(&prefix, start),
            State::anything(),
            Some(&allowed_before(start)),
        )
    };
    let starts: Vec<u64> = prefix.iter().map(|o| o.invoked).collect();
    let (start, from_the_beginning) = if starts.is_empty() || !window_fails(starts[0]) {
        (starts.first().copied().unwrap_or(0), true)
    } else {
        let (mut lo, mut hi) = (0, starts.len() - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if window_fails(starts[mid]) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        (starts[lo], false)
    };

    let culprit = prefix
        .iter()
        .find(|o| o.required() && o.completed == Some(end))
        .map_or(OpId { p: 0, t: 0, n: 0 }, |o| o.id);
    // Shown: the window's operations, the others of the key that ran
    // within it (failed writes, reads without an answer), and the failed
    // writes of values the window read.
    let in_window = |o: &Op| {
        o.invoked <= end
            && o.completed.is_none_or(|c| c >= start)
            && (o.invoked >= start || from_the_beginning || effective(o))
    };
    let read: HashSet<u64> = ops
        .iter()
        .filter(|o| in_window(o))
        .filter_map(|o| match o.outcome {
            Outcome::Row { value, .. } => Some(value),
            _ => None,
        })
        .collect();
    let shown: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|o| {
            in_window(o)
                || (o.outcome == Outcome::Failed
                    && written_value(&o.call).is_some_and(|v| read.contains(&v)))
        })
        .collect();
    let mut report = String::new();
    let what = match verdict {
        Verdict::GaveUp => format!(
            "the search gave up after {budget} configurations: the history is probably not \
             linearizable"
        ),
        _ => "the history is not linearizable".to_owned(),
    };
    let _ = writeln!(
        report,
        "key {key:?}: {what} ({} operations on this key).",
        ops.len()
    );
    let _ = writeln!(
        report,
        "Smallest window that cannot be linearized by itself: {} operation(s), starting {}; \
         times in ms from the window's first invocation, `open` for an outcome never known; \
         values named by the operation that wrote them:",
        shown.len(),
        if from_the_beginning {
            "from the empty table"
        } else {
            "from any state the operations before it may have left"
        }
    );
    let origin = shown.iter().map(|o| o.invoked).min().unwrap_or(0);
    let ms = |t: u64| format!("{:+.3}", (t as f64 - origin as f64) / 1e6);
    for op in &shown {
        let mark = if op.id == culprit { "=>" } else { "  " };
        let done = op.completed.map_or_else(|| "open".to_owned(), ms);
        let _ = writeln!(
            report,
            "{mark} {:>10} {:>10}  {:<14} {:<44} {}",
            ms(op.invoked),
            done,
            op.id.to_string(),
            show_call(&op.call),
            show_outcome(op),
        );
    }
    let _ = writeln!(
        report,
        "=> {culprit}: no order of the operations above, each taking effect between its \
         invocation and its return, gives this answer."
    );
    Violation {
        key: key.to_owned(),
        window: shown.iter().map(|o| o.id).collect(),
        culprit,
        report,
    }
}

fn written_value(call: &Call) -> Option<u64> {
    match call {
        Call::Set { value } | Call::SetExpecting { value, .. } | Call::SetIfAbsent { value } => {
            Some(*value)
        }
        _ => None,
    }
}

/// The operation that wrote `value` (see `OpId::value`).
fn writer(value: u64) -> String {
    OpId {
        p: (value >> 40) as u32,
        t: ((value >> 24) & 0xffff) as u32,
        n: (value & 0xff_ffff) as u32,
    }
    .to_string()
}

fn show_call(call: &Call) -> String {
    match call {
        Call::Get => "get".to_owned(),
        Call::Set { value } => format!("set {}", writer(*value)),
        Call::SetExpecting { value, expected } => {
            format!("set_expecting {} if v{expected}", writer(*value))
        }
        Call::SetIfAbsent { value } => format!("set_if_absent {}", writer(*value)),
        Call::Rm => "rm".to_owned(),
        Call::Restore => "restore".to_owned(),
    }
}

fn show_outcome(op: &Op) -> String {
    match &op.outcome {
        Outcome::Row {
            value,
            created_at,
            updated_at,
        } => format!(
            "row {} v{updated_at} (created {created_at})",
            writer(*value)
        ),
        Outcome::NoRow => "none".to_owned(),
        Outcome::Removed(removed) => format!("removed: {removed}"),
        Outcome::Conflict(Some(v)) => format!("CONFLICT, current v{v}"),
        Outcome::Conflict(None) => "CONFLICT, no live row".to_owned(),
        Outcome::NotFound => "NOT_FOUND".to_owned(),
        Outcome::Unknown => format!("unknown: {}", op.note),
        Outcome::Failed => format!("failed, not checked: {}", op.note),
    }
}
