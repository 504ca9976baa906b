//! Hooks registered at run time per table: `before_update`, `after_update`,
//! `before_rm`, `after_rm`.
//!
//! - Before-hooks run after the access check and validation, before the
//!   write. `before_update` returns the value to store (possibly changed;
//!   it is validated again) or refuses the write; `before_rm` may refuse.
//!   Several hooks of one kind run in registration order, each seeing the
//!   previous one's output. A refused write changes nothing and fails with
//!   [`Error::Rejected`](crate::Error::Rejected) naming the hook.
//! - Before-hooks may run more than once for one call. They see the row as
//!   read just before the write, and the write goes ahead only if that row
//!   (or its absence) is still what is stored; when another writer changed,
//!   created, revived or deleted the row in between, the row is read again
//!   and the hooks run again on it (a bounded number of times; then the
//!   call fails with [`Error::Backend`](crate::Error::Backend)). Keep them
//!   free of side effects that must happen once: do those in after-hooks.
//! - After-hooks run once the write has committed, outside its transaction.
//!   The write stands whatever they do: an after-hook that fails or panics is
//!   logged (`tracing`, target `kv_runtime::hooks`) and the write still
//!   returns `Ok`.
//! - A hook that panics never poisons the store: a panicking before-hook
//!   fails that write with [`Error::HookPanicked`](crate::Error::HookPanicked);
//!   other writes go on.
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

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::schema::{BoxFuture, KvSchema};
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

/// What a `before_update` hook sees.
#[derive(Clone, Debug)]
pub struct BeforeUpdate<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The key written.
    pub key: S::Key,
    /// The value about to be stored (already validated).
    pub value: S,
    /// The live row it replaces, if any.
    pub previous: Option<Row<S>>,
}

/// What an `after_update` hook sees.
#[derive(Clone, Debug)]
pub struct AfterUpdate<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The row as stored.
    pub row: Row<S>,
}

/// What `before_rm` and `after_rm` hooks see.
#[derive(Clone, Debug)]
pub struct Removal<S: KvSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The live row being (or just) deleted.
    pub row: Row<S>,
}

pub(crate) type BeforeUpdateFn<S> =
    Arc<dyn Fn(BeforeUpdate<S>) -> BoxFuture<'static, Result<S, HookError>> + Send + Sync>;
type AfterUpdateFn<S> =
    Arc<dyn Fn(AfterUpdate<S>) -> BoxFuture<'static, Result<(), HookError>> + Send + Sync>;
pub(crate) type RemovalFn<S> =
    Arc<dyn Fn(Removal<S>) -> BoxFuture<'static, Result<(), HookError>> + Send + Sync>;

/// The hooks of one table.
pub(crate) struct TableHooks<S: KvSchema> {
    pub(crate) before_update: Vec<(Arc<str>, BeforeUpdateFn<S>)>,
    pub(crate) after_update: Vec<(Arc<str>, AfterUpdateFn<S>)>,
    pub(crate) before_rm: Vec<(Arc<str>, RemovalFn<S>)>,
    pub(crate) after_rm: Vec<(Arc<str>, RemovalFn<S>)>,
}

impl<S: KvSchema> Clone for TableHooks<S> {
    fn clone(&self) -> Self {
        TableHooks {
            before_update: self.before_update.clone(),
            after_update: self.after_update.clone(),
            before_rm: self.before_rm.clone(),
            after_rm: self.after_rm.clone(),
        }
    }
}

impl<S: KvSchema> Default for TableHooks<S> {
    fn default() -> Self {
        TableHooks {
            before_update: Vec::new(),
            after_update: Vec::new(),
            before_rm: Vec::new(),
            after_rm: Vec::new(),
        }
    }
}

/// Every table's hooks in one store, copy-on-write.
#[derive(Default)]
pub(crate) struct HookRegistry {
    /// Keyed by the schema type, so two types sharing a table name keep
    /// their own hooks.
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
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let any = Arc::clone(tables.get(&TypeId::of::<S>())?);
        any.downcast::<TableHooks<S>>().ok()
    }

    fn update<S: KvSchema>(&self, f: impl FnOnce(&mut TableHooks<S>)) {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let mut hooks = tables
            .get(&TypeId::of::<S>())
            .and_then(|any| Arc::clone(any).downcast::<TableHooks<S>>().ok())
            .map(|h| TableHooks::clone(&h))
            .unwrap_or_default();
        f(&mut hooks);
        tables.insert(TypeId::of::<S>(), Arc::new(hooks));
    }
}

/// Registration of hooks.
impl<S: KvSchema> Table<S> {
    /// Registers a hook run before every `set`: it returns the value to
    /// store (possibly changed) or refuses the write. `name` appears in the
    /// error when it refuses.
    ///
    /// ```
    /// # use kv_runtime::{hooks::HookError, Ctx, Kv, Store};
    /// # #[derive(Kv, serde::Serialize, serde::Deserialize, Clone, Debug)]
    /// # #[kv(write_role = admin)]
    /// # struct Note { text: String }
    /// # async fn demo() -> kv_runtime::Result<()> {
    /// let notes = Store::memory().table::<Note>();
    /// notes.before_update("trim", |mut change| async move {
    ///     change.value.text = change.value.text.trim().to_owned();
    ///     if change.value.text.is_empty() {
    ///         return Err(HookError::new("a note needs some text"));
    ///     }
    ///     Ok(change.value)
    /// });
    /// # Ok(()) }
    /// ```
    pub fn before_update<F, Fut>(&self, name: &str, hook: F)
    where
        F: Fn(BeforeUpdate<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, HookError>> + Send + 'static,
    {
        let hook: BeforeUpdateFn<S> = Arc::new(move |c| Box::pin(hook(c)));
        self.store()
            .hooks
            .update::<S>(|h| h.before_update.push((Arc::from(name), hook)));
    }

    /// Registers a hook run after every committed `set`, with the stored
    /// row. Its failure is logged; the write stands.
    pub fn after_update<F, Fut>(&self, name: &str, hook: F)
    where
        F: Fn(AfterUpdate<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let hook: AfterUpdateFn<S> = Arc::new(move |c| Box::pin(hook(c)));
        self.store()
            .hooks
            .update::<S>(|h| h.after_update.push((Arc::from(name), hook)));
    }

    /// Registers a hook run before every `rm` of a live row; it may refuse.
    pub fn before_rm<F, Fut>(&self, name: &str, hook: F)
    where
        F: Fn(Removal<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let hook: RemovalFn<S> = Arc::new(move |c| Box::pin(hook(c)));
        self.store()
            .hooks
            .update::<S>(|h| h.before_rm.push((Arc::from(name), hook)));
    }

    /// Registers a hook run after every committed `rm`, with the row as it
    /// was. Its failure is logged; the delete stands.
    pub fn after_rm<F, Fut>(&self, name: &str, hook: F)
    where
        F: Fn(Removal<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let hook: RemovalFn<S> = Arc::new(move |c| Box::pin(hook(c)));
        self.store()
            .hooks
            .update::<S>(|h| h.after_rm.push((Arc::from(name), hook)));
    }
}

/// How a hook call ended.
pub(crate) enum HookOutcome<T> {
    Done(Result<T, HookError>),
    Panicked(String),
}

impl<T> HookOutcome<T> {
    /// The outcome of a before-hook as the write's result: a refusal is
    /// [`Error::Rejected`], a panic [`Error::HookPanicked`].
    pub(crate) fn into_result(
        self,
        table: &'static str,
        op: &'static str,
        hook: &str,
    ) -> Result<T> {
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

/// Calls a hook, turning a panic (while building or polling its future)
/// into [`HookOutcome::Panicked`].
pub(crate) async fn call_guarded<A, T>(
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
