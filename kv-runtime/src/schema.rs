//! The traits `#[derive(Kv)]` implements: what a table is.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};

/// A boxed future, as returned by write-role predicates and backends.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use crate::key_rules::MAX_KEY_BYTES;

/// The default limit on a value's serialized (JSON) size: 1 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;

/// A table's key type: the generated key enum, or `String` for tables
/// declared without `keys = [...]`.
pub trait KvKey:
    Clone + fmt::Debug + Eq + Hash + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The exact key text, as stored.
    fn as_str(&self) -> &str;

    /// Parses key text as it arrives from outside (a URL, a cursor), giving
    /// [`Error::InvalidKey`] for anything that is not a key of `table`.
    fn parse_key(table: &'static str, text: &str) -> Result<Self>;

    /// Checks a key value before it is used (free string keys may be
    /// anything a program built; enum keys are always valid, which is what
    /// the default says).
    fn check(&self, table: &'static str) -> Result<()> {
        let _ = table;
        Ok(())
    }

    /// Like [`KvKey::parse_key`], with the text given by value, for key
    /// text read from storage: a key type that holds its text (`String`)
    /// keeps it instead of copying it. Gives the text back when it is not
    /// a key of `table`. The default calls [`KvKey::parse_key`].
    fn parse_stored(table: &'static str, text: String) -> std::result::Result<Self, String> {
        match Self::parse_key(table, &text) {
            Ok(key) => Ok(key),
            Err(_) => Err(text),
        }
    }

    /// The declared key texts in declaration order (`keys = [...]`), or
    /// `None` for free string keys. The derive sets it; code generators
    /// (the TypeScript bindings, feature `ts`) read the keys from it.
    const KEYS: Option<&'static [&'static str]> = None;
}

/// Checks free key text: non-empty, at most [`MAX_KEY_BYTES`] bytes, no
/// control characters. The derive checks declared keys with the same rules
/// at compile time.
pub(crate) fn check_key_text(table: &'static str, text: &str) -> Result<()> {
    match crate::key_rules::key_problem(text) {
        None => Ok(()),
        Some(problem) => Err(Error::invalid_key(table, text, problem)),
    }
}

impl KvKey for String {
    fn as_str(&self) -> &str {
        self
    }

    fn parse_key(table: &'static str, text: &str) -> Result<Self> {
        check_key_text(table, text)?;
        Ok(text.to_owned())
    }

    fn check(&self, table: &'static str) -> Result<()> {
        check_key_text(table, self)
    }

    fn parse_stored(table: &'static str, text: String) -> std::result::Result<Self, String> {
        match check_key_text(table, &text) {
            Ok(()) => Ok(text),
            Err(_) => Err(text),
        }
    }
}

/// Who may call `set`, `rm`, `restore` and `list` on a table
/// (`#[kv(write_role ...)]`, see [Options](crate#options)). Internal
/// callers always may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteRole {
    /// `write_role` omitted, or `write_role = internal`: internal callers
    /// only.
    Internal,
    /// `write_role = public`: any caller.
    Public,
    /// `write_role = admin` or `write_role = "content-editor"`: callers
    /// holding the named role.
    Role(&'static str),
    /// `write_role(predicate = path::to::function)`: callers for whom the
    /// function returns true ([`KvSchema::write_predicate`]). Holds the
    /// function's path as written, for messages.
    Predicate(&'static str),
}

impl WriteRole {
    /// A sentence saying who may write, for error messages.
    pub fn describe(self) -> String {
        match self {
            WriteRole::Internal => "only internal (server) callers may".into(),
            WriteRole::Public => "any caller may".into(),
            WriteRole::Role(r) => format!("requires role `{r}`"),
            WriteRole::Predicate(_) => {
                "requires the table's write check to allow the caller".into()
            }
        }
    }
}

/// A table: implemented by `#[derive(Kv)]` on a struct whose fields are the
/// stored value, from its `#[kv(...)]` [options](crate#options). Do not
/// implement it by hand unless you know you need to; every behaviour lives
/// in [`Table`](crate::Table), generic over this trait.
pub trait KvSchema: crate::KvVersion + Serialize + Clone {
    /// The key type: the generated `<Struct>Key` enum, or `String`.
    type Key: KvKey;

    /// Storage name of the table (`#[kv(table = "...")]`, default the struct
    /// name in lowerCamelCase).
    const TABLE: &'static str;

    /// Whether `rm` marks rows deleted instead of removing them.
    const SOFT_DELETE: bool;

    /// Who may write and list.
    const WRITE_ROLE: WriteRole;

    /// Largest accepted serialized value, in bytes (`#[kv(max_value_bytes = N)]`).
    const MAX_VALUE_BYTES: usize = DEFAULT_MAX_VALUE_BYTES;

    /// `#[kv(rate_limit = ...)]`: writes per caller per window.
    const RATE_LIMIT: Option<RateLimit> = None;

    /// `#[kv(clean_files)]`: delete files the row stops referencing.
    const CLEAN_FILES: bool = false;

    /// `#[kv(history)]`: record every committed change of a row, in the
    /// same atomic step as the change, and keep this much of it.
    const HISTORY: Option<HistoryPolicy> = None;

    /// Appends the ids of stored files the value references (its
    /// `#[kv(file)]` fields).
    fn file_ids<'a>(&'a self, out: &mut Vec<&'a str>) {
        let _ = out;
    }

    /// Runs the predicate of `write_role(predicate = path::to::function)`
    /// for a non-internal caller. Only consulted when
    /// [`KvSchema::WRITE_ROLE`] is [`WriteRole::Predicate`].
    fn write_predicate(ctx: &Ctx) -> BoxFuture<'_, bool> {
        let _ = ctx;
        Box::pin(async { false })
    }

    /// Checks the value's field constraints (from `#[garde(...)]`
    /// attributes), returning every violation.
    fn validate_value(&self) -> std::result::Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// A sliding-window rate limit: at most `max` writes (`set` and `rm`) per
/// caller in any `window_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Writes admitted per window.
    pub max: u32,
    /// The window, in milliseconds.
    pub window_ms: u64,
}

/// How much history a table keeps (`#[kv(history ...)]`, see
/// [History](crate#history)): per row, at most `keep` records (the newest),
/// none older than `keep_for_ms`. At least one of the two is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// The most records kept per row: `history(keep = N)`; a bare `history`
    /// keeps [`DEFAULT_HISTORY_KEEP`].
    pub keep: Option<u32>,
    /// How long a record is kept, in milliseconds: `history(keep_for = "30d")`.
    pub keep_for_ms: Option<u64>,
}

/// How many records per row a table declared with a bare `history` keeps.
pub const DEFAULT_HISTORY_KEEP: u32 = 100;

impl HistoryPolicy {
    /// The time before which records are dropped, given the current time
    /// `now` (ms): `now - keep_for_ms`, or `None` without `keep_for`.
    pub fn cutoff(&self, now: i64) -> Option<i64> {
        self.keep_for_ms
            .map(|ms| now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX)))
    }
}

/// Marker for tables declared with `history`; only they have `history`,
/// `revert` and `revert_expecting`.
#[diagnostic::on_unimplemented(
    message = "table `{Self}` keeps no history, so it has no `history` or `revert`",
    label = "`{Self}` is not declared with `history`",
    note = "add `history` (or `history(keep = 100)`, `history(keep_for = \"30d\")`) to the \
            `#[kv(...)]` attribute of `{Self}` to record every change and revert to any of them"
)]
pub trait History: KvSchema {}

/// Marker for tables declared with `soft_delete`; only they have `restore`.
#[diagnostic::on_unimplemented(
    message = "table `{Self}` does not keep deleted rows, so it has no `restore`",
    label = "`{Self}` is not declared with `soft_delete`",
    note = "add `soft_delete` to the `#[kv(...)]` attribute of `{Self}` to make `rm` reversible"
)]
pub trait SoftDelete: KvSchema {}

/// Decides whether `ctx` may write to table `S`.
pub async fn may_write<S: KvSchema>(ctx: &Ctx) -> bool {
    if ctx.is_internal() {
        return true;
    }
    match S::WRITE_ROLE {
        WriteRole::Internal => false,
        WriteRole::Public => true,
        WriteRole::Role(role) => ctx.has_role(role),
        WriteRole::Predicate(_) => S::write_predicate(ctx).await,
    }
}

/// What a write-role predicate may return: `bool`, or a future of `bool`
/// (so both `fn(&Ctx) -> bool` and `async fn(&Ctx) -> bool` work). The
/// marker parameter keeps the two implementations apart.
pub trait PredicateOutput<Marker>: Send {
    /// Resolves the predicate's answer.
    fn resolve(self) -> impl Future<Output = bool> + Send;
}

/// Marker for predicates returning `bool` directly.
#[doc(hidden)]
pub enum SyncPredicate {}
/// Marker for predicates returning a future.
#[doc(hidden)]
pub enum AsyncPredicate {}

impl PredicateOutput<SyncPredicate> for bool {
    fn resolve(self) -> impl Future<Output = bool> + Send {
        std::future::ready(self)
    }
}

impl<F> PredicateOutput<AsyncPredicate> for F
where
    F: Future<Output = bool> + Send,
{
    fn resolve(self) -> impl Future<Output = bool> + Send {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::KvKey;

    #[test]
    fn string_keys_from_storage_keep_their_text_or_give_it_back() {
        let text = "motd".to_owned();
        let at = text.as_ptr();
        let key = String::parse_stored("t", text).expect("a valid key");
        assert_eq!(key, "motd");
        // The same allocation: no copy.
        assert_eq!(key.as_ptr(), at);
        for bad in ["", "a\u{7}b", "c\u{85}d"] {
            assert_eq!(
                String::parse_stored("t", bad.to_owned()),
                Err(bad.to_owned())
            );
        }
        let long = "x".repeat(crate::key_rules::MAX_KEY_BYTES + 1);
        assert_eq!(String::parse_stored("t", long.clone()), Err(long));
    }
}
