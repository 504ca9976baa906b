//! Hooks registered at run time per table: `before_set`, `after_set`,
//! `before_rm`, `after_rm` (register them with [`Table::before_set`],
//! [`Table::after_set`], [`Table::before_rm`] and [`Table::after_rm`]).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use kv_runtime::hooks::HookError;
//! use kv_runtime::{Ctx, ErrorCode, Kv, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Kv, Serialize, Deserialize, Clone, Debug)]
//! #[kv(keys = [banner, motd], write_role = admin)]
//! pub struct Site {
//!     pub active: bool,
//!     pub message: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kv_runtime::Result<()> {
//! let site = Store::memory().table::<Site>();
//! let audit: Arc<Mutex<Vec<String>>> = Arc::default(); // application state
//!
//! site.before_set("tidy", |mut change| async move {
//!     change.value.message = change.value.message.trim().to_owned();
//!     if change.value.active && change.value.message.is_empty() {
//!         return Err(HookError::new("an active banner needs a message"));
//!     }
//!     Ok(change.value) // may be changed; it is validated again
//! });
//! let log = Arc::clone(&audit);
//! site.after_set("audit", move |done| {
//!     let log = Arc::clone(&log);
//!     async move {
//!         let who = done.ctx.user_id().unwrap_or("anonymous").to_owned();
//!         log.lock().unwrap().push(format!("{who} set {}", done.row.key));
//!         Ok(())
//!     }
//! });
//! site.before_rm("keep-motd", |removal| async move {
//!     if removal.row.key == SiteKey::Motd {
//!         return Err(HookError::new("the message of the day stays"));
//!     }
//!     Ok(())
//! });
//!
//! let ada = Ctx::user("ada").with_role("admin");
//! let value = |active, message: &str| Site { active, message: message.into() };
//! let row = site.set(&ada, SiteKey::Banner, value(true, "  Back at 5pm ")).await?;
//! assert_eq!(row.value.message, "Back at 5pm");
//!
//! let err = site.set(&ada, SiteKey::Banner, value(true, " ")).await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::Rejected); // names the hook: "tidy"
//!
//! site.set(&ada, SiteKey::Motd, value(true, "Hello")).await?;
//! let err = site.rm(&ada, SiteKey::Motd).await.unwrap_err();
//! assert_eq!(err.code(), ErrorCode::Rejected);
//! assert_eq!(*audit.lock().unwrap(), ["ada set banner", "ada set motd"]);
//! # Ok(())
//! # }
//! ```
//!
//! - Before-hooks run after the access check, validation and the rate
//!   limit, before the write. `before_set` returns the value to store (possibly changed;
//!   it is validated again) or refuses the write; `before_rm` may refuse.
//!   Several hooks of one kind run in registration order, each seeing the
//!   previous one's output. A refused write changes nothing and fails with
//!   [`Error::Rejected`] naming the hook.
//! - Before-hooks may run more than once for one call. They see the row as
//!   read just before the write, and the write goes ahead only if that row
//!   (or its absence) is still what is stored; when another writer changed,
//!   created, revived or deleted the row in between, the row is read again
//!   and the hooks run again on it (a bounded number of times; then the
//!   call fails with [`Error::Contended`]). Keep
//!   them free of side effects that must happen once: do those in
//!   after-hooks.
//! - After-hooks run once the write has committed, outside its transaction.
//!   The write stands whatever they do: an after-hook that fails or panics is
//!   logged (`tracing`, target `kv_runtime::hooks`) and the write still
//!   returns `Ok`.
//! - A hook that panics never poisons the store: a panicking before-hook
//!   fails that write with [`Error::HookPanicked`];
//!   other writes go on.
//! - `restore` runs no hooks.
//!
//! Hooks capture application state by moving clones into the closure.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

pub use crate::log::hooks::{AfterAppend, AfterRmEntry, BeforeAppend, BeforeRmEntry};
pub use crate::quota::{QuotaUse, QuotaUsed};

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::schema::{BoxFuture, KvSchema};
#[cfg(doc)]
use crate::table::Table;

/// Why a hook refused a write (or why an after-hook failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookError(pub String);

impl HookError {
    /// A refusal with a message for the caller.
    pub fn new(message: impl Into<String>) -> Self {
        HookError(message.into())
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a `before_set` hook sees.
#[derive(Clone, Debug)]
pub struct BeforeSet<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The key written.
    pub key: S::Key,
    /// The value about to be stored (already validated).
    pub value: S,
    /// The live row it replaces, if any (`None`: the write creates the row
    /// or revives a soft-deleted one).
    pub previous: Option<Row<S>>,
}

/// What an `after_set` hook sees.
#[derive(Clone, Debug)]
pub struct AfterSet<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The row as stored.
    pub row: Row<S>,
}

/// What a `before_rm` hook sees.
#[derive(Clone, Debug)]
pub struct BeforeRm<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The live row about to be deleted.
    pub row: Row<S>,
}

/// What an `after_rm` hook sees.
#[derive(Clone, Debug)]
pub struct AfterRm<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The row as it was before it was deleted.
    pub row: Row<S>,
}

/// A registered hook taking `A` and answering `T`, with its name.
pub(crate) type Hook<A, T> = (
    Arc<str>,
    Arc<dyn Fn(A) -> BoxFuture<'static, Result<T, HookError>> + Send + Sync>,
);

/// The hooks of one table.
pub(crate) struct TableHooks<S: KvSchema> {
    pub(crate) before_set: Vec<Hook<BeforeSet<S>, S>>,
    pub(crate) after_set: Vec<Hook<AfterSet<S>, ()>>,
    pub(crate) before_rm: Vec<Hook<BeforeRm<S>, ()>>,
    pub(crate) after_rm: Vec<Hook<AfterRm<S>, ()>>,
}

impl<S: KvSchema> Clone for TableHooks<S> {
    fn clone(&self) -> Self {
        TableHooks {
            before_set: self.before_set.clone(),
            after_set: self.after_set.clone(),
            before_rm: self.before_rm.clone(),
            after_rm: self.after_rm.clone(),
        }
    }
}

impl<S: KvSchema> Default for TableHooks<S> {
    fn default() -> Self {
        TableHooks {
            before_set: Vec::new(),
            after_set: Vec::new(),
            before_rm: Vec::new(),
            after_rm: Vec::new(),
        }
    }
}

/// Wraps a user's hook closure for storage in [`TableHooks`].
pub(crate) fn hook<A, T, F, Fut>(name: &str, f: F) -> Hook<A, T>
where
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, HookError>> + Send + 'static,
{
    (Arc::from(name), Arc::new(move |a| Box::pin(f(a))))
}

/// Every table's hooks in one store, copy-on-write.
#[derive(Default)]
pub(crate) struct HookRegistry {
    /// Keyed by the hooks' type, which names the schema type (`TableHooks<S>`,
    /// `LogHooks<L>`, `QuotaHooks<Q>`), so two types sharing a table name
    /// keep their own hooks.
    tables: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("HookRegistry")
            .field("tables", &tables.len())
            .finish()
    }
}

impl HookRegistry {
    /// The hooks of table `S`, if any were registered.
    pub(crate) fn get<S: KvSchema>(&self) -> Option<Arc<TableHooks<S>>> {
        self.get_of::<TableHooks<S>>()
    }

    /// Changes the hooks of table `S` (registration).
    pub(crate) fn update<S: KvSchema>(&self, f: impl FnOnce(&mut TableHooks<S>)) {
        self.update_of::<TableHooks<S>>(f);
    }

    /// The hooks of type `H` (one type per table, log or quota), if any
    /// were registered.
    pub(crate) fn get_of<H: Send + Sync + 'static>(&self) -> Option<Arc<H>> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let any = Arc::clone(tables.get(&TypeId::of::<H>())?);
        any.downcast::<H>().ok()
    }

    /// Changes the hooks of type `H` (registration), copy-on-write.
    pub(crate) fn update_of<H: Clone + Default + Send + Sync + 'static>(
        &self,
        f: impl FnOnce(&mut H),
    ) {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let mut hooks = tables
            .get(&TypeId::of::<H>())
            .and_then(|any| Arc::clone(any).downcast::<H>().ok())
            .map(|h| H::clone(&h))
            .unwrap_or_default();
        f(&mut hooks);
        tables.insert(TypeId::of::<H>(), Arc::new(hooks));
    }
}

/// How a hook call ended.
enum HookOutcome<T> {
    Done(Result<T, HookError>),
    Panicked(String),
}

impl<T> HookOutcome<T> {
    /// The outcome of a before-hook as the write's result: a refusal is
    /// [`Error::Rejected`], a panic [`Error::HookPanicked`].
    fn into_result(self, table: &'static str, op: &'static str, hook: &str) -> Result<T> {
        match self {
            HookOutcome::Done(Ok(value)) => Ok(value),
            HookOutcome::Done(Err(e)) => Err(Error::Rejected {
                table,
                op,
                hook: hook.to_owned(),
                message: e.0,
            }),
            HookOutcome::Panicked(message) => Err(Error::HookPanicked {
                table,
                hook: hook.to_owned(),
                message,
            }),
        }
    }
}

/// Runs before-hooks in order, each on the previous one's output (the
/// first on `init`): the first refusal (or panic) is the write's error.
pub(crate) async fn run_before<A, T>(
    hooks: &[Hook<A, T>],
    table: &'static str,
    op: &'static str,
    init: T,
    arg: impl Fn(T) -> A,
) -> Result<T> {
    let mut value = init;
    for (name, hook) in hooks {
        value = call_guarded(&**hook, arg(value))
            .await
            .into_result(table, op, name)?;
    }
    Ok(value)
}

/// Runs after-hooks in order; failures and panics are logged, never
/// returned: the write has committed.
pub(crate) async fn run_after<A>(hooks: &[Hook<A, ()>], kind: &str, arg: impl Fn() -> A) {
    for (name, hook) in hooks {
        match call_guarded(&**hook, arg()).await {
            HookOutcome::Done(Ok(())) => {}
            HookOutcome::Done(Err(e)) => tracing::warn!(
                target: "kv_runtime::hooks",
                hook = &**name,
                "{kind} hook failed after the write committed (the write stands): {e}"
            ),
            HookOutcome::Panicked(message) => tracing::error!(
                target: "kv_runtime::hooks",
                hook = &**name,
                "{kind} hook panicked after the write committed (the write stands): {message}"
            ),
        }
    }
}

/// Calls a hook, turning a panic (while building or polling its future)
/// into [`HookOutcome::Panicked`].
async fn call_guarded<A, T>(
    hook: &(dyn Fn(A) -> BoxFuture<'static, Result<T, HookError>> + Send + Sync),
    arg: A,
) -> HookOutcome<T> {
    let fut = match catch_unwind(AssertUnwindSafe(|| hook(arg))) {
        Ok(fut) => fut,
        Err(panic) => return HookOutcome::Panicked(panic_message(&*panic)),
    };
    CatchPanic(fut).await
}

struct CatchPanic<T>(BoxFuture<'static, Result<T, HookError>>);

impl<T> Future for CatchPanic<T> {
    type Output = HookOutcome<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(HookOutcome::Done(result)),
            Err(panic) => Poll::Ready(HookOutcome::Panicked(panic_message(&*panic))),
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
