//! Wing and Gong's search, with Lowe's memoisation, for one key.

use std::collections::HashSet;

use super::model::{step, State};
use super::SearchOp;

/// What a search found.
#[derive(Debug)]
pub(super) enum Verdict {
    Linearizable { states: usize },
    NotLinearizable,
    GaveUp,
}

/// Wing and Gong's search with Lowe's memoisation over `ops` (one key,
/// sorted by invocation), from `init`.
pub(super) fn search(
    ops: &[SearchOp],
    init: State,
    allowed: Option<&HashSet<u64>>,
    budget: usize,
) -> Verdict {
    let mut list = Entries::new(ops);
    let mut required_left = ops.iter().filter(|o| o.required()).count();
    let mut taken = Bits::new(ops.len());
    let mut seen: HashSet<(Bits, State)> = HashSet::new();
    let mut stack = vec![Frame {
        candidates: list.candidates(ops),
        state: init,
        next: 0,
        applied: None,
    }];
    loop {
        if required_left == 0 {
            return Verdict::Linearizable {
                states: seen.len().max(1),
            };
        }
        let Some(top) = stack.last_mut() else {
            return Verdict::NotLinearizable;
        };
        if let Some(op) = top.applied.take() {
            list.put_back(op);
            taken.clear(op);
            if ops[op].required() {
                required_left += 1;
            }
        }
        let Some(&op) = top.candidates.get(top.next) else {
            stack.pop();
            continue;
        };
        top.next += 1;
        let Some(next) = step(&top.state, &ops[op], allowed) else {
            continue;
        };
        taken.set(op);
        if !seen.insert((taken.clone(), next.clone())) {
            taken.clear(op);
            continue;
        }
        if seen.len() > budget {
            return Verdict::GaveUp;
        }
        list.take(op);
        if ops[op].required() {
            required_left -= 1;
        }
        top.applied = Some(op);
        stack.push(Frame {
            candidates: list.candidates(ops),
            state: next,
            next: 0,
            applied: None,
        });
    }
}

/// A point of the search: the state, the operations that may take effect
/// next, the next one to try, and the one taken (undone on the way back).
struct Frame {
    state: State,
    candidates: Vec<usize>,
    next: usize,
    applied: Option<usize>,
}

/// The invocations and returns not yet taken, in time order, as a doubly
/// linked list that operations are lifted out of and put back into (in the
/// reverse order).
struct Entries {
    /// (operation, is the invocation).
    entries: Vec<(usize, bool)>,
    prev: Vec<usize>,
    next: Vec<usize>,
    call_of: Vec<usize>,
    return_of: Vec<Option<usize>>,
}

impl Entries {
    fn new(ops: &[SearchOp]) -> Entries {
        // Invocations before returns at the same instant: such operations
        // count as concurrent.
        let mut timed: Vec<(u64, bool, usize)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            timed.push((op.invoked, false, i));
            if let Some(done) = op.completed.filter(|_| !op.optional) {
                timed.push((done, true, i));
            }
        }
        timed.sort();
        let n = timed.len();
        let head = n;
        let mut list = Entries {
            entries: timed.iter().map(|&(_, ret, op)| (op, !ret)).collect(),
            prev: (0..=n).map(|i| if i == 0 { head } else { i - 1 }).collect(),
            next: (0..=n).map(|i| if i == n { 0 } else { i + 1 }).collect(),
            call_of: vec![0; ops.len()],
            return_of: vec![None; ops.len()],
        };
        if n == 0 {
            list.next[head] = head;
            list.prev[head] = head;
        } else {
            list.prev[head] = n - 1;
            list.next[n - 1] = head;
        }
        for (e, &(op, call)) in list.entries.iter().enumerate() {
            if call {
                list.call_of[op] = e;
            } else {
                list.return_of[op] = Some(e);
            }
        }
        list
    }

    fn head(&self) -> usize {
        self.entries.len()
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        self.prev[n] = e;
    }

    fn take(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(r) = self.return_of[op] {
            self.unlink(r);
        }
    }

    fn put_back(&mut self, op: usize) {
        if let Some(r) = self.return_of[op] {
            self.relink(r);
        }
        self.relink(self.call_of[op]);
    }

    /// The operations that may take effect next: those invoked before the
    /// first pending return, the required ones first.
    fn candidates(&self, ops: &[SearchOp]) -> Vec<usize> {
        let mut required = Vec::new();
        let mut optional = Vec::new();
        let mut e = self.next[self.head()];
        while e != self.head() {
            let (op, call) = self.entries[e];
            if !call {
                break;
            }
            if ops[op].required() {
                required.push(op);
            } else {
                optional.push(op);
            }
            e = self.next[e];
        }
        required.extend(optional);
        required
    }
}

/// A set of operation indices.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}
