//! Hooks of a log: `before_append` (may change the value or refuse),
//! `after_append`, `before_rm` (may refuse), `after_rm`. They follow the
//! rules of table hooks (see the [`hooks`](crate::hooks) module).

use std::future::Future;

use super::{Log, LogEntry, LogSchema};
use crate::context::Ctx;
use crate::hooks::{hook, Hook, HookError};

/// What a `before_append` hook sees, for each value appended.
#[derive(Clone, Debug)]
pub struct BeforeAppend<L: LogSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The parent appended to.
    pub parent: L::Parent,
    /// The value about to be appended (already validated).
    pub value: L,
}

/// What an `after_append` hook sees, for each entry appended.
#[derive(Clone, Debug)]
pub struct AfterAppend<L: LogSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The entry as stored.
    pub entry: LogEntry<L>,
}

/// What a `before_rm` hook of a log sees, for each live entry about to be
/// deleted.
#[derive(Clone, Debug)]
pub struct BeforeRmEntry<L: LogSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The entry.
    pub entry: LogEntry<L>,
}

/// What an `after_rm` hook of a log sees, for each entry deleted.
#[derive(Clone, Debug)]
pub struct AfterRmEntry<L: LogSchema> {
    /// The caller.
    pub ctx: Ctx,
    /// The entry as it was before it was deleted.
    pub entry: LogEntry<L>,
}

/// The hooks of one log.
pub(crate) struct LogHooks<L: LogSchema> {
    pub(crate) before_append: Vec<Hook<BeforeAppend<L>, L>>,
    pub(crate) after_append: Vec<Hook<AfterAppend<L>, ()>>,
    pub(crate) before_rm: Vec<Hook<BeforeRmEntry<L>, ()>>,
    pub(crate) after_rm: Vec<Hook<AfterRmEntry<L>, ()>>,
}

impl<L: LogSchema> Default for LogHooks<L> {
    fn default() -> Self {
        LogHooks {
            before_append: Vec::new(),
            after_append: Vec::new(),
            before_rm: Vec::new(),
            after_rm: Vec::new(),
        }
    }
}

impl<L: LogSchema> Clone for LogHooks<L> {
    fn clone(&self) -> Self {
        LogHooks {
            before_append: self.before_append.clone(),
            after_append: self.after_append.clone(),
            before_rm: self.before_rm.clone(),
            after_rm: self.after_rm.clone(),
        }
    }
}

impl<L: LogSchema> Log<L> {
    /// Registers a hook run before every append, once per value (also for
    /// `append_idempotent` and the bulk forms): it returns the value to
    /// append (possibly changed; it is validated again) or refuses the
    /// whole call. `name` appears in the error when it refuses.
    pub fn before_append<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(BeforeAppend<L>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<L, HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<LogHooks<L>>(|t| t.before_append.push(h));
    }

    /// Registers a hook run after every committed append, once per new
    /// entry (not for an idempotent append that replayed an earlier one).
    /// Its failure is logged; the append stands.
    pub fn after_append<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(AfterAppend<L>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<LogHooks<L>>(|t| t.after_append.push(h));
    }

    /// Registers a hook run before every `rm` (and `rm_many`), once per
    /// live entry; it may refuse the whole call.
    pub fn before_rm<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(BeforeRmEntry<L>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<LogHooks<L>>(|t| t.before_rm.push(h));
    }

    /// Registers a hook run after every committed `rm`, once per entry
    /// deleted, with the entry as it was. Its failure is logged.
    pub fn after_rm<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(AfterRmEntry<L>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<LogHooks<L>>(|t| t.after_rm.push(h));
    }
}
