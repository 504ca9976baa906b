//! Hooks of a quota: before (may refuse) and after (once counted) each
//! `consume` and `record`.

use std::future::Future;
use std::marker::PhantomData;

use super::{Quota, QuotaSchema, QuotaState};
use crate::error::Result;
use crate::hooks::{self, hook, Hook, HookError};

/// What a `before_consume` or `before_record` hook sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUse {
    /// The owner's text.
    pub owner: String,
    /// How many uses are asked for.
    pub n: u32,
}

/// What an `after_consume` or `after_record` hook sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaUsed {
    /// The owner's text.
    pub owner: String,
    /// How many uses were counted.
    pub n: u32,
    /// The owner's usage after them.
    pub state: QuotaState,
}

/// The hooks registered on quota `Q` (see [`Quota::before_consume`]).
pub(crate) struct QuotaHooks<Q> {
    pub(crate) before_consume: Vec<Hook<QuotaUse, ()>>,
    pub(crate) after_consume: Vec<Hook<QuotaUsed, ()>>,
    pub(crate) before_record: Vec<Hook<QuotaUse, ()>>,
    pub(crate) after_record: Vec<Hook<QuotaUsed, ()>>,
    _schema: PhantomData<fn() -> Q>,
}

impl<Q> Default for QuotaHooks<Q> {
    fn default() -> Self {
        QuotaHooks {
            before_consume: Vec::new(),
            after_consume: Vec::new(),
            before_record: Vec::new(),
            after_record: Vec::new(),
            _schema: PhantomData,
        }
    }
}

impl<Q> Clone for QuotaHooks<Q> {
    fn clone(&self) -> Self {
        QuotaHooks {
            before_consume: self.before_consume.clone(),
            after_consume: self.after_consume.clone(),
            before_record: self.before_record.clone(),
            after_record: self.after_record.clone(),
            _schema: PhantomData,
        }
    }
}

impl<Q: QuotaSchema> QuotaHooks<Q> {
    /// Runs before-hooks: the first refusal is the call's error.
    pub(crate) async fn before(
        &self,
        op: &'static str,
        list: &[Hook<QuotaUse, ()>],
        owner: &str,
        n: u32,
    ) -> Result<()> {
        hooks::run_before(list, Q::NAME, op, (), |()| QuotaUse {
            owner: owner.to_owned(),
            n,
        })
        .await
    }

    /// Runs after-hooks; failures are logged.
    pub(crate) async fn after(
        &self,
        list: &[Hook<QuotaUsed, ()>],
        owner: &str,
        n: u32,
        state: QuotaState,
    ) {
        if list.is_empty() {
            return;
        }
        hooks::run_after(list, "quota", || QuotaUsed {
            owner: owner.to_owned(),
            n,
            state,
        })
        .await;
    }
}

impl<Q: QuotaSchema> Quota<Q> {
    /// Registers a hook run before every `consume` (and `consume_n`); it
    /// may refuse ([`Error::Rejected`](crate::Error::Rejected), naming it),
    /// and then nothing is counted.
    pub fn before_consume<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(QuotaUse) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<QuotaHooks<Q>>(|t| t.before_consume.push(h));
    }

    /// Registers a hook run after every admitted `consume`, with the usage
    /// after it. Its failure is logged; the use stays counted.
    pub fn after_consume<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(QuotaUsed) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<QuotaHooks<Q>>(|t| t.after_consume.push(h));
    }

    /// Registers a hook run before every `record` (and `record_n`); it may
    /// refuse, and then nothing is counted.
    pub fn before_record<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(QuotaUse) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<QuotaHooks<Q>>(|t| t.before_record.push(h));
    }

    /// Registers a hook run after every `record`, with the usage after it.
    pub fn after_record<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(QuotaUsed) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HookError>> + Send + 'static,
    {
        let h = hook(name, f);
        self.store
            .hooks
            .update_of::<QuotaHooks<Q>>(|t| t.after_record.push(h));
    }
}
