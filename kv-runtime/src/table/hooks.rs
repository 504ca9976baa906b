//! Registering hooks: see the [`hooks`](crate::hooks) module for when they
//! run and what they may do.

use std::future::Future;

use super::Table;
use crate::hooks::{hook, AfterRm, AfterSet, BeforeRm, BeforeSet, HookError};
use crate::schema::KvSchema;

impl<S: KvSchema> Table<S> {
    /// Registers a hook run before every `set` (also `set_expecting` and
    /// `set_if_absent`): it returns the value to store (possibly changed) or
    /// refuses the write. `name` appears in the error when it refuses.
    ///
    /// ```
    /// # use kv_runtime::{hooks::HookError, Ctx, Kv, Store};
    /// # #[derive(Kv, serde::Serialize, serde::Deserialize, Clone, Debug)]
    /// # #[kv(write_role = admin)]
    /// # struct Note { text: String }
    /// # async fn demo() -> kv_runtime::Result<()> {
    /// let notes = Store::memory().table::<Note>();
    /// notes.before_set("trim", |mut change| async move {
    ///     change.value.text = change.value.text.trim().to_owned();
    ///     if change.value.text.is_empty() {
    ///         return Err(HookError::new("a note needs some text"));
    ///     }
    ///     Ok(change.value)
    /// });
    /// # Ok(()) }
    /// ```
    pub fn before_set<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(BeforeSet<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<S, HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store.hooks.update::<S>(|t| t.before_set.push(h));
    }

    /// Registers a hook run after every committed `set`, with the stored
    /// row. Its failure is logged; the write stands.
    pub fn after_set<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(AfterSet<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store.hooks.update::<S>(|t| t.after_set.push(h));
    }

    /// Registers a hook run before every `rm` of a live row; it may refuse.
    pub fn before_rm<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(BeforeRm<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store.hooks.update::<S>(|t| t.before_rm.push(h));
    }

    /// Registers a hook run after every committed `rm`, with the row as it
    /// was. Its failure is logged; the delete stands.
    pub fn after_rm<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(AfterRm<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store.hooks.update::<S>(|t| t.after_rm.push(h));
    }
}
