//! The linearizability checker (`support/linearizability/`) on small
//! histories written by hand: it must reject the anomalies the tests on
//! real stores look for (a lost update, a stale read, a read of a value
//! never written, an acknowledged write undone, a refused write that took
//! effect) and accept every history some order explains, including
//! operations whose outcome is unknown. Times are in ms.

mod support;

use support::history::{Call, OpId};
use support::linearizability::{check, check_with_budget, Op, Outcome, Violation};

/// A history on one key (or several) built operation by operation; each
/// operation is its own task of process 0 and writes its own id's value.
#[derive(Default)]
struct History {
    ops: Vec<Op>,
}

impl History {
    /// Adds an operation invoked at `from` ms, returning at `to` ms
    /// (`None`: no answer), on key `key`, and returns its id.
    fn on(&mut self, key: &str, from: f64, to: Option<f64>, call: Call, outcome: Outcome) -> OpId {
        let id = OpId {
            p: 0,
            t: u32::try_from(self.ops.len()).unwrap(),
            n: 0,
        };
        let ns = |ms: f64| (ms * 1e6) as u64 + 1_000_000_000;
        let completed = match outcome {
            Outcome::Unknown => None,
            _ => to.map(ns),
        };
        self.ops.push(Op {
            id,
            key: key.to_owned(),
            call,
            outcome,
            invoked: ns(from),
            completed,
            note: "as written by the test".to_owned(),
        });
        id
    }

    fn op(&mut self, from: f64, to: f64, call: Call, outcome: Outcome) -> OpId {
        self.on("k", from, Some(to), call, outcome)
    }

    /// The value the next operation writes.
    fn next_value(&self) -> u64 {
        OpId {
            p: 0,
            t: u32::try_from(self.ops.len()).unwrap(),
            n: 0,
        }
        .value()
    }

    /// A `set` that succeeded with version `v` (created at `created`).
    fn set(&mut self, from: f64, to: f64, v: i64, created: i64) -> u64 {
        let value = self.next_value();
        self.op(from, to, Call::Set { value }, row(value, created, v));
        value
    }

    fn get(&mut self, from: f64, to: f64, outcome: Outcome) -> OpId {
        self.op(from, to, Call::Get, outcome)
    }

    fn linearizable(&self) {
        if let Err(v) = check(&self.ops) {
            panic!("a linearizable history was rejected:\n{v}");
        }
    }

    fn violation(&self) -> Violation {
        match check(&self.ops) {
            Ok(summary) => panic!("a history that is not linearizable passed: {summary:?}"),
            Err(v) => {
                eprintln!("{v}");
                *v
            }
        }
    }
}

fn row(value: u64, created_at: i64, updated_at: i64) -> Outcome {
    Outcome::Row {
        value,
        created_at,
        updated_at,
    }
}

#[test]
fn a_lost_update_is_rejected() {
    // Two writers read version 100 and both have their conditional write
    // accepted, concurrently: one of them must have seen a conflict.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let b = h.next_value();
    h.op(
        2.0,
        5.0,
        Call::SetExpecting {
            value: b,
            expected: 100,
        },
        row(b, 100, 101),
    );
    let c = h.next_value();
    let culprit = h.op(
        2.5,
        5.5,
        Call::SetExpecting {
            value: c,
            expected: 100,
        },
        row(c, 100, 102),
    );
    let v = h.violation();
    assert_eq!(v.key, "k");
    assert_eq!(
        v.culprit, culprit,
        "the second acknowledged write is the one that cannot be"
    );
    assert!(v.report.contains("set_expecting"), "{v}");

    // The same with the second one refused is fine, in either order.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let b = h.next_value();
    h.op(
        2.0,
        5.0,
        Call::SetExpecting {
            value: b,
            expected: 100,
        },
        row(b, 100, 101),
    );
    let c = h.next_value();
    h.op(
        2.5,
        5.5,
        Call::SetExpecting {
            value: c,
            expected: 100,
        },
        Outcome::Conflict(Some(101)),
    );
    h.linearizable();
}

#[test]
fn a_stale_read_is_rejected() {
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    h.set(2.0, 3.0, 101, 100);
    // After the second set returned, a read must not see the first.
    let culprit = h.get(4.0, 5.0, row(a, 100, 100));
    let v = h.violation();
    assert_eq!(v.culprit, culprit);

    // Overlapping the second set, it may.
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    h.set(2.0, 3.0, 101, 100);
    h.get(2.5, 3.5, row(a, 100, 100));
    h.linearizable();

    // A read that misses a write completed before it began.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    h.get(2.0, 3.0, Outcome::NoRow);
    h.violation();
}

#[test]
fn a_read_of_a_value_never_written_is_rejected() {
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let never = OpId { p: 9, t: 9, n: 9 }.value();
    h.get(2.0, 3.0, row(never, 100, 100));
    h.violation();

    // Nor from the first read of an empty table.
    let mut h = History::default();
    h.get(0.0, 1.0, row(never, 100, 100));
    h.violation();

    // A write refused with "nothing was written" is never written.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let refused = h.next_value();
    h.op(2.0, 3.0, Call::Set { value: refused }, Outcome::Failed);
    h.get(4.0, 5.0, row(refused, 100, 101));
    let v = h.violation();
    assert!(v.report.contains("failed, not checked"), "{v}");
}

#[test]
fn the_right_value_with_a_wrong_version_is_rejected() {
    // Versions never repeat and never go back.
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    h.get(2.0, 3.0, row(a, 100, 99));
    h.violation();

    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    h.set(2.0, 3.0, 100, 100);
    h.violation();

    // created_at is kept by overwrites.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    h.set(2.0, 3.0, 101, 101);
    h.violation();
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order_but_one_order() {
    let mut h = History::default();
    let a = h.set(0.0, 10.0, 100, 100);
    let b = h.set(0.0, 10.0, 101, 100);
    // While both run, reads see one, then the other...
    h.get(2.0, 3.0, row(a, 100, 100));
    h.get(4.0, 5.0, row(b, 100, 101));
    // ...and after both returned, the last.
    h.get(11.0, 12.0, row(b, 100, 101));
    h.linearizable();

    // Not the other way back.
    let mut h = History::default();
    let a = h.set(0.0, 10.0, 100, 100);
    let b = h.set(0.0, 10.0, 101, 100);
    h.get(11.0, 12.0, row(b, 100, 101));
    h.get(13.0, 14.0, row(a, 100, 100));
    h.violation();
}

#[test]
fn an_operation_with_an_unknown_outcome_may_take_effect_late_or_never() {
    // The unknown write shows up long after a later write returned.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let lost = h.next_value();
    h.on("k", 2.0, None, Call::Set { value: lost }, Outcome::Unknown);
    let c = h.set(3.0, 4.0, 102, 100);
    h.get(5.0, 6.0, row(c, 100, 102));
    h.get(50.0, 51.0, row(lost, 100, 103));
    h.linearizable();

    // Or never.
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    let lost = h.next_value();
    h.on("k", 2.0, None, Call::Set { value: lost }, Outcome::Unknown);
    h.get(50.0, 51.0, row(a, 100, 100));
    h.linearizable();

    // But once seen, it stays.
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    let lost = h.next_value();
    h.on("k", 2.0, None, Call::Set { value: lost }, Outcome::Unknown);
    h.get(10.0, 11.0, row(lost, 100, 105));
    h.get(12.0, 13.0, row(a, 100, 100));
    h.violation();

    // Its version is not known, but later answers must agree on it.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let lost = h.next_value();
    h.on("k", 2.0, None, Call::Set { value: lost }, Outcome::Unknown);
    h.get(10.0, 11.0, row(lost, 100, 105));
    h.get(12.0, 13.0, row(lost, 100, 106));
    h.violation();

    // A conflict that names an unknown write's version is explained by it.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let lost = h.next_value();
    h.on("k", 2.0, None, Call::Set { value: lost }, Outcome::Unknown);
    let c = h.next_value();
    h.op(
        5.0,
        6.0,
        Call::SetExpecting {
            value: c,
            expected: 100,
        },
        Outcome::Conflict(Some(104)),
    );
    h.linearizable();
}

#[test]
fn set_if_absent_admits_one_of_many() {
    let mut h = History::default();
    let a = h.next_value();
    h.op(0.0, 5.0, Call::SetIfAbsent { value: a }, row(a, 100, 100));
    let b = h.next_value();
    h.op(
        0.5,
        5.5,
        Call::SetIfAbsent { value: b },
        Outcome::Conflict(Some(100)),
    );
    h.linearizable();

    let mut h = History::default();
    let a = h.next_value();
    h.op(0.0, 5.0, Call::SetIfAbsent { value: a }, row(a, 100, 100));
    let b = h.next_value();
    h.op(0.5, 5.5, Call::SetIfAbsent { value: b }, row(b, 101, 101));
    h.violation();

    // A conflict must carry the live row's version.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    let b = h.next_value();
    h.op(
        2.0,
        3.0,
        Call::SetIfAbsent { value: b },
        Outcome::Conflict(None),
    );
    h.violation();
}

#[test]
fn soft_delete_and_restore_follow_the_documented_semantics() {
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    h.op(2.0, 3.0, Call::Rm, Outcome::Removed(true));
    h.get(4.0, 5.0, Outcome::NoRow);
    h.op(6.0, 7.0, Call::Rm, Outcome::Removed(false));
    // The deleted row is revived with a greater version (rm bumped it to
    // an unknown one in between), then comes back unchanged.
    h.op(8.0, 9.0, Call::Restore, row(a, 100, 105));
    h.op(10.0, 11.0, Call::Restore, row(a, 100, 105));
    h.get(12.0, 13.0, row(a, 100, 105));
    // set_if_absent revives a deleted row.
    h.op(14.0, 15.0, Call::Rm, Outcome::Removed(true));
    let b = h.next_value();
    h.op(16.0, 17.0, Call::SetIfAbsent { value: b }, row(b, 100, 110));
    h.linearizable();

    // restore of a key never written is NOT_FOUND; after a set it is not.
    let mut h = History::default();
    h.op(0.0, 1.0, Call::Restore, Outcome::NotFound);
    h.set(2.0, 3.0, 100, 100);
    h.op(4.0, 5.0, Call::Restore, Outcome::NotFound);
    h.violation();

    // A revived row keeps its value.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    h.op(2.0, 3.0, Call::Rm, Outcome::Removed(true));
    let other = OpId { p: 7, t: 7, n: 7 }.value();
    h.op(4.0, 5.0, Call::Restore, row(other, 100, 102));
    h.violation();

    // An acknowledged delete is not undone.
    let mut h = History::default();
    let a = h.set(0.0, 1.0, 100, 100);
    h.op(2.0, 3.0, Call::Rm, Outcome::Removed(true));
    h.get(4.0, 5.0, row(a, 100, 100));
    h.violation();

    // rm of a live row reports true.
    let mut h = History::default();
    h.set(0.0, 1.0, 100, 100);
    h.op(2.0, 3.0, Call::Rm, Outcome::Removed(false));
    h.violation();
}

#[test]
fn keys_are_checked_each_on_their_own() {
    let mut h = History::default();
    let a = h.next_value();
    h.on(
        "one",
        0.0,
        Some(1.0),
        Call::Set { value: a },
        row(a, 100, 100),
    );
    let b = h.next_value();
    h.on(
        "two",
        0.0,
        Some(1.0),
        Call::Set { value: b },
        row(b, 100, 100),
    );
    h.on("one", 2.0, Some(3.0), Call::Get, row(a, 100, 100));
    h.on("two", 2.0, Some(3.0), Call::Get, row(b, 100, 100));
    h.linearizable();
    // The value of another key is never written on this one.
    h.on("two", 4.0, Some(5.0), Call::Get, row(a, 100, 100));
    assert_eq!(h.violation().key, "two");
}

#[test]
fn the_report_shows_the_smallest_offending_window() {
    // A long history, correct for 300 operations from four writers with
    // overlapping calls, then one stale read.
    let mut h = History::default();
    let mut version = 100;
    let mut last = 0;
    let mut previous = 0;
    for i in 0..300 {
        let t = f64::from(i) * 10.0;
        if i % 3 == 2 {
            h.get(t, t + 12.0, row(last, 100, version));
        } else {
            version += 1;
            previous = last;
            let value = h.next_value();
            let expected = version - 1;
            let call = if i == 0 {
                Call::Set { value }
            } else {
                Call::SetExpecting { value, expected }
            };
            h.op(t, t + 4.0, call, row(value, 100, version));
            last = value;
        }
    }
    h.linearizable();
    let t = 3000.0;
    let culprit = h.get(t + 5.0, t + 6.0, row(previous, 100, version - 1));
    let v = h.violation();
    assert_eq!(v.culprit, culprit);
    assert!(
        v.window.len() <= 3,
        "the window is the stale read and the writes it missed, not the whole history:\n{v}"
    );
    assert!(v.window.contains(&culprit));
    assert!(v.report.contains(&culprit.to_string()), "{v}");
    assert!(v.report.contains("301 operations on this key"), "{v}");
}

#[test]
fn a_search_over_budget_fails_as_inconclusive() {
    // Twelve concurrent writes whose versions run against the order the
    // search tries them in: linearizable (by version), but only after
    // trying thousands of orders.
    let mut h = History::default();
    for i in 0..12 {
        let value = h.next_value();
        h.op(0.0, 100.0, Call::Set { value }, row(value, 100, 200 - i));
    }
    h.linearizable();
    match check_with_budget(&h.ops, 50) {
        Ok(summary) => panic!("an exhausted search passed: {summary:?}"),
        Err(v) => assert!(v.report.contains("gave up after 50 configurations"), "{v}"),
    }
}
