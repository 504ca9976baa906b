//! The tables of the model-based tests, and the hooks a sequence can
//! register on them.
//!
//! - [`Note`]: free string keys, soft delete, role `admin`, a rate limit,
//!   a field constraint and a small size limit;
//! - [`Flag`]: declared keys, hard delete, role `admin`, no rate limit.
//!
//! Both hold a `text` (at most 12 bytes) and a `note` (unconstrained but for
//! the table's 48-byte limit on the value's JSON).

use kv_runtime::hooks::HookError;
use kv_runtime::{Kv, KvKey, KvSchema, Table};
use serde::{Deserialize, Serialize};

/// The rate limit of [`Note`]: `rate_limit(max = 3, window = "5s")`.
pub const NOTE_RATE: (u32, i64) = (3, 5_000);
/// `max_value_bytes` of both tables.
pub const MAX_VALUE_BYTES: usize = 48;
/// The `length(max)` of `text`.
pub const MAX_TEXT: usize = 12;

/// Soft-delete table with free keys and a rate limit.
#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[kv(
    table = "modelNote",
    write_role = admin,
    soft_delete,
    rate_limit(max = 3, window = "5s"),
    max_value_bytes = 48
)]
pub struct Note {
    #[garde(length(max = 12))]
    pub text: String,
    #[garde(skip)]
    pub note: String,
}

/// Hard-delete table with declared keys, in this (non-byte) order.
#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[kv(
    table = "modelFlag",
    keys = [gamma, alpha, "delta-1", beta, "Zeta"],
    write_role = admin,
    max_value_bytes = 48
)]
pub struct Flag {
    #[garde(length(max = 12))]
    pub text: String,
    #[garde(skip)]
    pub note: String,
}

/// What the driver needs of a model table beyond [`KvSchema`].
pub trait ModelTable: KvSchema {
    /// The typed key for key text: for free keys, the text unchecked (the
    /// table checks it); for declared keys, the parsed key.
    fn key(text: &str) -> Option<Self::Key>;
    /// A value.
    fn make(text: &str, note: &str) -> Self;
    /// `(text, note)` of a value.
    fn parts(&self) -> (&str, &str);
}

impl ModelTable for Note {
    fn key(text: &str) -> Option<String> {
        Some(text.to_owned())
    }
    fn make(text: &str, note: &str) -> Self {
        Note {
            text: text.to_owned(),
            note: note.to_owned(),
        }
    }
    fn parts(&self) -> (&str, &str) {
        (&self.text, &self.note)
    }
}

impl ModelTable for Flag {
    fn key(text: &str) -> Option<FlagKey> {
        FlagKey::parse_key(Flag::TABLE, text).ok()
    }
    fn make(text: &str, note: &str) -> Self {
        Flag {
            text: text.to_owned(),
            note: note.to_owned(),
        }
    }
    fn parts(&self) -> (&str, &str) {
        (&self.text, &self.note)
    }
}

/// The note that seals a row: the hooks refuse to delete it, and to
/// overwrite it with a value whose note is not [`UNSEAL`].
pub const SEALED: &str = "sealed";
/// The note that may overwrite a sealed row.
pub const UNSEAL: &str = "unseal";

/// Registers the hooks the model knows (`reference::before_set` and
/// `reference::before_rm` say what they do), in this order:
///
/// - `before_set` "no-bang": refuses a text starting with `!`;
/// - `before_set` "double": a text ending with `?` is stored twice over
///   (which may break the length limit: the result is validated again);
/// - `before_set` "sealed": refuses to overwrite a live row whose note is
///   [`SEALED`] unless the new note is [`UNSEAL`];
/// - `before_rm` "keep-sealed": refuses to delete a row whose note is
///   [`SEALED`];
/// - after-hooks that fail: they are logged, the write stands.
pub fn register_hooks<S: ModelTable>(table: &Table<S>) {
    table.before_set("no-bang", |change| async move {
        if change.value.parts().0.starts_with('!') {
            return Err(HookError::new("no text may start with !"));
        }
        Ok(change.value)
    });
    table.before_set("double", |change| async move {
        let (text, note) = change.value.parts();
        if text.ends_with('?') {
            return Ok(S::make(&text.repeat(2), note));
        }
        Ok(change.value)
    });
    table.before_set("sealed", |change| async move {
        let sealed = change
            .previous
            .as_ref()
            .is_some_and(|p| p.value.parts().1 == SEALED);
        if sealed && change.value.parts().1 != UNSEAL {
            return Err(HookError::new("the row is sealed"));
        }
        Ok(change.value)
    });
    table.before_rm("keep-sealed", |removal| async move {
        if removal.row.value.parts().1 == SEALED {
            return Err(HookError::new("a sealed row stays"));
        }
        Ok(())
    });
    table.after_set("fails", |_| async {
        Err(HookError::new("after_set fails"))
    });
    table.after_rm("fails", |_| async { Err(HookError::new("after_rm fails")) });
}
