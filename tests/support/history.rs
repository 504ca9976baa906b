//! The history of a concurrent run, as the `kv-test-worker history`
//! processes record it and the linearizability tests read it: one JSON
//! line when an operation is invoked and one when it returns, each with
//! the time on a clock every process of the machine shares.
//!
//! The worker includes this file too (`#[path]`), so both sides agree on
//! the format. Only `serde` and `libc` here: the worker has no
//! dev-dependencies.

use serde::{Deserialize, Serialize};

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process of the
/// machine (unlike `std::time::Instant`, whose values a process cannot
/// share), never stepped by NTP or by hand.
pub fn clock_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on
    // every Linux and macOS, so the call cannot fail.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) works");
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Who ran an operation: the worker process (numbered by the test), its
/// task, and the operation's sequence number within the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId {
    /// The worker process, as the test numbered it.
    pub p: u32,
    /// The task within the process.
    pub t: u32,
    /// The operation's number within the task.
    pub n: u32,
}

impl OpId {
    /// The value an operation writes: unique in the whole run, so that a
    /// read names the write it saw.
    pub fn value(self) -> u64 {
        (u64::from(self.p) << 40) | (u64::from(self.t) << 24) | u64::from(self.n)
    }
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}.t{}#{}", self.p, self.t, self.n)
    }
}

/// An operation on one key of the `Register` table, as invoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// `get(key)`.
    Get,
    /// `set(ctx, key, value)`.
    Set { value: u64 },
    /// `set_expecting(ctx, key, value, expected)`.
    SetExpecting { value: u64, expected: i64 },
    /// `set_if_absent(ctx, key, value)`.
    SetIfAbsent { value: u64 },
    /// `rm(ctx, key)`.
    Rm,
    /// `restore(ctx, key)`.
    Restore,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A row (get, the set family, restore): its value and versions.
    Row {
        value: u64,
        created_at: i64,
        updated_at: i64,
    },
    /// `get` found no live row.
    NoRow,
    /// `rm`'s answer: whether a live row was deleted.
    Removed(bool),
    /// An error: its code, the current version a CONFLICT carries, and
    /// the message.
    Error {
        code: String,
        current: Option<i64>,
        message: String,
    },
}

/// One line of a worker's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// An operation is about to start (`at`: [`clock_ns`] before it).
    Invoke {
        id: OpId,
        at: u64,
        key: String,
        call: Call,
    },
    /// It returned (`at`: [`clock_ns`] after it).
    Return { id: OpId, at: u64, answer: Answer },
}
