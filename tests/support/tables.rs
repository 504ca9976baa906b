//! Tables shared by several test files.

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
