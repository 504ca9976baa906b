//! Tables written both by the tests and by their child processes: the
//! `kv-test-worker` binary (`tests/worker/`) includes this file too, so
//! parent and child agree on every schema. Only `kv-runtime` and `serde`
//! here: the worker has no dev-dependencies.

use kv_runtime::{Ctx, Kv};
use serde::{Deserialize, Serialize};

/// The caller allowed to write [`Banner`] and [`Note`].
pub fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

/// A soft-delete table with declared keys (watch and replica tests).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "watchBanner", keys = [banner, motd], write_role = admin, soft_delete)]
pub struct Banner {
    pub text: String,
    pub n: u64,
}

pub fn banner(text: &str, n: u64) -> Banner {
    Banner {
        text: text.to_owned(),
        n,
    }
}

/// A hard-delete table with free keys (watch and replica tests).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "watchNote", write_role = admin)]
pub struct Note {
    pub text: String,
}

pub fn note(text: &str) -> Note {
    Note {
        text: text.to_owned(),
    }
}

/// One shared counter, incremented by server code (`Ctx::internal()`) from
/// several processes (the lost-update tests).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "counter", keys = [hits])]
pub struct Counter {
    pub n: u64,
}

/// Rows written by a process that is then killed (the durability test).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "durability")]
pub struct Entry {
    pub round: u64,
    pub i: u64,
    pub pad: String,
}

/// The value written as row `i` of round `round`.
pub fn entry(round: u64, i: u64) -> Entry {
    Entry {
        round,
        i,
        // Values of varied size, so that writes span pages differently.
        pad: "x".repeat(usize::try_from(i % 700).unwrap_or(0)),
    }
}

/// Public writes, at most 5 per caller in any 10 s (the rate-limit test
/// across processes).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "limited", write_role = public, rate_limit(max = 5, window = "10s"))]
pub struct Limited {
    pub n: u32,
}

/// A rolling deploy: the old program's note (schema version 1)...
pub mod deploy_v1 {
    use super::*;

    #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[kv(table = "deployNote")]
    pub struct Note {
        pub text: String,
    }
}

/// ...version 1 as the new program keeps it, to read old rows...
#[derive(kv_runtime::KvVersion, Deserialize)]
#[kv(version = 1)]
pub struct DeployNoteV1 {
    pub text: String,
}

/// ...and the new program's note (version 2): tags were added.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "deployNote", version = 2, from = DeployNoteV1)]
pub struct DeployNote {
    pub text: String,
    pub tags: Vec<String>,
}

impl From<DeployNoteV1> for DeployNote {
    fn from(old: DeployNoteV1) -> DeployNote {
        DeployNote {
            text: old.text,
            tags: Vec::new(),
        }
    }
}

/// A table with history, changed by several processes and by a process
/// killed mid-write (the history tests). Records are kept for a day, with
/// no count, so that none is trimmed during a test.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "historyEntry", soft_delete, history(keep_for = "1d"))]
pub struct Recorded {
    /// Who wrote it: `p<pid>-t<task>` or `r<round>`.
    pub by: String,
    /// The writer's sequence number.
    pub i: u64,
    pub pad: String,
}

/// The value `i` of writer `by`.
pub fn recorded(by: &str, i: u64) -> Recorded {
    Recorded {
        by: by.to_owned(),
        i,
        // Values of varied size, so that writes span pages differently.
        pad: "y".repeat(usize::try_from(i % 500).unwrap_or(0)),
    }
}

/// The site configuration of the ops command line's tests (`kv-test-app`):
/// declared keys, a field constraint, soft delete.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq, garde::Validate)]
#[kv(table = "siteConfig", keys = [banner, maintenance], write_role = admin, soft_delete)]
pub struct SiteConfig {
    #[garde(skip)]
    pub active: bool,
    #[garde(length(min = 1, max = 40))]
    pub message: String,
}

/// Feature flags of the ops command line's tests: free keys, hard delete.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "flags", write_role = admin)]
pub struct Flag {
    pub on: bool,
}
