//! Logs: append-only, numbered entries per parent, declared with
//! `#[derive(Log)]`. See [Logs](crate#logs).
//!
//! By concern:
//!
//! - [`entry`]: the typed entry and page, and decoding;
//! - [`write`]: `append` (and its idempotent and bulk forms), `rm`,
//!   `rm_many`, `restore`, through the log's write steps;
//! - [`read`]: `get`, `list`, `list_backwards` and their cursors;
//! - [`tail`]: following a parent's new entries live;
//! - [`hooks`]: `before_append`, `after_append`, `before_rm`, `after_rm`;
//! - [`purge`]: removing entries soft-deleted long ago.

mod entry;
pub(crate) mod hooks;
mod purge;
mod read;
mod tail;
mod write;

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Serialize;

use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::schema::{BoxFuture, RateLimit, WriteRole, DEFAULT_MAX_VALUE_BYTES};
use crate::store::Store;
use crate::version::KvVersion;

pub use entry::{LogEntry, LogPage, UnreadableEntry};
pub use tail::{Tail, TailEvent};

/// The most entries one bulk call (`append_many`, `rm_many`) takes.
pub const MAX_BATCH: usize = 1000;

/// What a log's parent can be: an id that prints as text and parses back
/// (`Display` + `FromStr`), such as `String`, a number, or an id type of
/// your own. Parents are stored as their text (at most 256 bytes, no
/// control characters), and `text.parse()` must give the parent back.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the parent of a log",
    label = "a log's parent must print as text and parse back",
    note = "implement `Display` and `FromStr` (and derive `Clone`, `Debug`, `PartialEq`, `Eq`) \
            for `{Self}`, or use `String`"
)]
pub trait LogParent:
    Clone + fmt::Debug + Eq + fmt::Display + FromStr + Send + Sync + 'static
{
}

impl<T> LogParent for T where
    T: Clone + fmt::Debug + Eq + fmt::Display + FromStr + Send + Sync + 'static
{
}

/// A log: implemented by `#[derive(Log)]` on a struct whose fields are an
/// entry's value, from its `#[log(...)]` options (see [Logs](crate#logs)).
/// Every behaviour lives in [`Log`], generic over this trait.
pub trait LogSchema: KvVersion + Serialize + Clone {
    /// What entries are grouped under (`#[log(parent = RoomId)]`; default
    /// `String`): each parent numbers its entries 1, 2, 3, ...
    type Parent: LogParent;

    /// Storage name of the log (`#[log(table = "...")]`, default the struct
    /// name in lowerCamelCase).
    const TABLE: &'static str;

    /// Whether `rm` marks entries deleted instead of removing them.
    const SOFT_DELETE: bool;

    /// Who may append and delete (`write_role`).
    const WRITE_ROLE: WriteRole;

    /// Who may read: `get`, `list`, `tail` (`read_role`; the derive makes
    /// it the write role unless told otherwise).
    const READ_ROLE: WriteRole;

    /// Largest accepted serialized value, in bytes (`max_value_bytes`).
    const MAX_VALUE_BYTES: usize = DEFAULT_MAX_VALUE_BYTES;

    /// `rate_limit`: appends and deletes per caller per window.
    const RATE_LIMIT: Option<RateLimit> = None;

    /// The predicate of `write_role(predicate = path)`, for a non-internal
    /// caller.
    fn write_predicate(ctx: &Ctx) -> BoxFuture<'_, bool> {
        let _ = ctx;
        Box::pin(async { false })
    }

    /// The predicate of `read_role(predicate = path)`, for a non-internal
    /// caller.
    fn read_predicate(ctx: &Ctx) -> BoxFuture<'_, bool> {
        let _ = ctx;
        Box::pin(async { false })
    }

    /// Checks the value's field constraints (from `#[garde(...)]`).
    fn validate_value(&self) -> std::result::Result<(), Vec<FieldError>> {
        Ok(())
    }
}

/// Marker for logs declared with `soft_delete`; only they have `restore`.
#[diagnostic::on_unimplemented(
    message = "log `{Self}` does not keep deleted entries, so it has no `restore`",
    label = "`{Self}` is not declared with `soft_delete`",
    note = "add `soft_delete` to the `#[log(...)]` attribute of `{Self}` to make `rm` reversible"
)]
pub trait LogSoftDelete: LogSchema {}

/// The typed operations of log `L` in a [`Store`]. Get one with
/// [`Store::log`]; cheap to clone.
///
/// Appends and deletes take the caller's [`Ctx`] and are checked against
/// the log's `write_role`; reads (`get`, `list`, `tail`) against its
/// `read_role`. The [Logs](crate#logs) section says what each operation
/// does.
pub struct Log<L: LogSchema> {
    store: Store,
    _schema: PhantomData<fn() -> L>,
}

impl<L: LogSchema> Clone for Log<L> {
    fn clone(&self) -> Self {
        Log::new(self.store.clone())
    }
}

impl<L: LogSchema> fmt::Debug for Log<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("table", &L::TABLE)
            .field("store", &self.store)
            .finish()
    }
}

/// Whether `role` lets `ctx` through (`predicate` for a predicate role).
async fn allows(role: WriteRole, ctx: &Ctx, predicate: fn(&Ctx) -> BoxFuture<'_, bool>) -> bool {
    if ctx.is_internal() {
        return true;
    }
    match role {
        WriteRole::Internal => false,
        WriteRole::Public => true,
        WriteRole::Role(role) => ctx.has_role(role),
        WriteRole::Predicate(_) => predicate(ctx).await,
    }
}

impl<L: LogSchema> Log<L> {
    pub(crate) fn new(store: Store) -> Self {
        Log {
            store,
            _schema: PhantomData,
        }
    }

    /// The store this log lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The scope of the log's rate limit in the quota primitive.
    fn rate_scope() -> String {
        format!("log:{}", L::TABLE)
    }

    /// Fails with [`Error::Forbidden`] unless `ctx` may write.
    async fn authorize_write(&self, ctx: &Ctx, op: &'static str) -> Result<()> {
        if allows(L::WRITE_ROLE, ctx, L::write_predicate).await {
            Ok(())
        } else {
            Err(Error::Forbidden {
                table: L::TABLE,
                op,
                required: L::WRITE_ROLE.describe(),
            })
        }
    }

    /// Fails with [`Error::Forbidden`] unless `ctx` may read.
    async fn authorize_read(&self, ctx: &Ctx, op: &'static str) -> Result<()> {
        if allows(L::READ_ROLE, ctx, L::read_predicate).await {
            Ok(())
        } else {
            Err(Error::Forbidden {
                table: L::TABLE,
                op,
                required: L::READ_ROLE.describe(),
            })
        }
    }

    /// The parent's stored text, checked like a key ([`Error::InvalidKey`]).
    fn parent_text(parent: &L::Parent) -> Result<String> {
        let text = parent.to_string();
        match crate::key_rules::key_problem(&text) {
            None => Ok(text),
            Some(problem) => Err(Error::invalid_key(
                L::TABLE,
                &text,
                format!("a log's parent, as text: {problem}"),
            )),
        }
    }
}
