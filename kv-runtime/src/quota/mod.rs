//! Quotas: a per-owner sliding-window limit, declared with
//! `#[derive(Quota)]`, counted in the backend so that it holds across
//! processes. See [Quotas](crate#quotas).

mod hooks;
pub(crate) mod limit;

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::backend::{RateDecision, Usage, Window};
use crate::error::{Error, FieldError, Result};
use crate::store::Store;
use crate::telemetry;

pub(crate) use hooks::QuotaHooks;
pub use hooks::{QuotaUse, QuotaUsed};

/// A quota: implemented by `#[derive(Quota)]` from its `#[quota(...)]`
/// options (see [Quotas](crate#quotas)). Every behaviour lives in
/// [`Quota`], generic over this trait.
pub trait QuotaSchema: Send + Sync + 'static {
    /// What a quota is counted per (`#[quota(owner = UserId)]`): any
    /// `Display` type, `str` by default. Its text (at most 256 bytes, no
    /// control characters) identifies the owner in storage.
    type Owner: ?Sized + fmt::Display + Sync;

    /// The quota's name in storage (`#[quota(name = "...")]`, default the
    /// struct name in lowerCamelCase). Counted uses are kept under scope
    /// `quota:<name>`.
    const NAME: &'static str;

    /// Uses admitted per owner in any window (`max`).
    const MAX: u32;

    /// The window, in milliseconds (`window`).
    const WINDOW_MS: u64;
}

/// How much of an owner's quota is used, as [`Quota::check`],
/// [`Quota::consume`] and [`Quota::record`] see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaState {
    /// Uses counted in the window ending now.
    pub used: u32,
    /// Uses left now: `max - used` (0 when the window is full).
    pub remaining: u32,
    /// When the window is full: how long until the next use fits. `None`
    /// when one fits now.
    pub retry_after: Option<Duration>,
    /// How long until the oldest counted use leaves the window (and frees
    /// its slot). `None` when nothing is counted.
    pub oldest_expires_in: Option<Duration>,
}

impl QuotaState {
    fn new(usage: Usage, window: Window, now: i64) -> Self {
        QuotaState {
            used: usage.used,
            remaining: window.max.saturating_sub(usage.used),
            retry_after: usage
                .full_until
                .map(|at| limit::millis(at.saturating_sub(now).max(1))),
            oldest_expires_in: usage
                .oldest
                .map(|at| limit::millis(window.retry_after_ms(at, now))),
        }
    }
}

/// The operations of quota `Q` in a [`Store`]. Get one with
/// [`Store::quota`]; cheap to clone.
///
/// A quota has no write role: it is a server-side primitive, called with
/// the owner the application decided on (a user id, an IP address, a
/// poll and a voter).
pub struct Quota<Q: QuotaSchema> {
    store: Store,
    _schema: PhantomData<fn() -> Q>,
}

impl<Q: QuotaSchema> Clone for Quota<Q> {
    fn clone(&self) -> Self {
        Quota::new(self.store.clone())
    }
}

impl<Q: QuotaSchema> fmt::Debug for Quota<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("name", &Q::NAME)
            .field("max", &Q::MAX)
            .field("window_ms", &Q::WINDOW_MS)
            .finish()
    }
}

impl<Q: QuotaSchema> Quota<Q> {
    pub(crate) fn new(store: Store) -> Self {
        Quota {
            store,
            _schema: PhantomData,
        }
    }

    /// The store this quota lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn scope() -> String {
        format!("quota:{}", Q::NAME)
    }

    fn window() -> Window {
        Window {
            max: Q::MAX,
            window_ms: i64::try_from(Q::WINDOW_MS).unwrap_or(i64::MAX),
        }
    }

    /// The owner's text, checked like a key.
    fn owner_text(owner: &Q::Owner) -> Result<String> {
        let text = owner.to_string();
        match crate::key_rules::key_problem(&text) {
            None => Ok(text),
            Some(problem) => Err(Error::invalid_key(Q::NAME, &text, problem)),
        }
    }

    fn check_n(n: u32) -> Result<()> {
        if n == 0 || n > Q::MAX {
            return Err(Error::ValidationFailed {
                table: Q::NAME,
                fields: vec![FieldError::new(
                    "n",
                    format!("count between 1 and the quota's max ({}) at once", Q::MAX),
                )],
            });
        }
        Ok(())
    }

    /// The owner's usage now, counting nothing: how many uses remain and,
    /// when none does, when the next slot frees.
    pub async fn check(&self, owner: &Q::Owner) -> Result<QuotaState> {
        let owner = Self::owner_text(owner)?;
        let work = async {
            let now = self.store.now();
            let usage = self
                .store
                .backend
                .rate_counter()
                .peek(&Self::scope(), &owner, Self::window(), now)
                .await?;
            Ok(QuotaState::new(usage, Self::window(), now))
        };
        telemetry::measured(Q::NAME, "check", Some(&owner), work).await
    }

    /// Uses one slot if one is free: checks and counts in one atomic step
    /// (across processes too). Over the limit it fails with
    /// [`Error::RateLimited`], saying when to retry, and counts nothing.
    /// Returns the usage after it.
    pub async fn consume(&self, owner: &Q::Owner) -> Result<QuotaState> {
        self.consume_n(owner, 1).await
    }

    /// Uses `n` slots (1 to `max`) if they are all free, as one atomic
    /// step; otherwise [`Error::RateLimited`] with the time until `n` fit,
    /// counting nothing. `n` out of range is [`Error::ValidationFailed`].
    pub async fn consume_n(&self, owner: &Q::Owner, n: u32) -> Result<QuotaState> {
        let owner = Self::owner_text(owner)?;
        Self::check_n(n)?;
        let work = async {
            let hooks = self.store.hooks.get_of::<QuotaHooks<Q>>();
            if let Some(hooks) = &hooks {
                hooks
                    .before("consume", &hooks.before_consume, &owner, n)
                    .await?;
            }
            let now = self.store.now();
            let decision = self
                .store
                .backend
                .rate_counter()
                .consume(&Self::scope(), &owner, Self::window(), n, now)
                .await?;
            let usage = match decision {
                RateDecision::Admitted(usage) => usage,
                RateDecision::Limited { retry_after_ms, .. } => {
                    return Err(Error::RateLimited {
                        table: Q::NAME,
                        retry_after: limit::millis(retry_after_ms.max(1)),
                    })
                }
            };
            let state = QuotaState::new(usage, Self::window(), now);
            if let Some(hooks) = &hooks {
                hooks.after(&hooks.after_consume, &owner, n, state).await;
            }
            Ok(state)
        };
        telemetry::measured(Q::NAME, "consume", Some(&owner), work).await
    }

    /// Counts one use whatever the usage (for uses that happened anyway,
    /// say a vote accepted elsewhere): the window may then hold more than
    /// `max`, and [`Quota::consume`] waits until it drops below. Returns the
    /// usage after it.
    pub async fn record(&self, owner: &Q::Owner) -> Result<QuotaState> {
        self.record_n(owner, 1).await
    }

    /// Counts `n` uses (1 to `max`) whatever the usage.
    pub async fn record_n(&self, owner: &Q::Owner, n: u32) -> Result<QuotaState> {
        let owner = Self::owner_text(owner)?;
        Self::check_n(n)?;
        let work = async {
            let hooks = self.store.hooks.get_of::<QuotaHooks<Q>>();
            if let Some(hooks) = &hooks {
                hooks
                    .before("record", &hooks.before_record, &owner, n)
                    .await?;
            }
            let now = self.store.now();
            let usage = self
                .store
                .backend
                .rate_counter()
                .record(&Self::scope(), &owner, Self::window(), n, now)
                .await?;
            let state = QuotaState::new(usage, Self::window(), now);
            if let Some(hooks) = &hooks {
                hooks.after(&hooks.after_record, &owner, n, state).await;
            }
            Ok(state)
        };
        telemetry::measured(Q::NAME, "record", Some(&owner), work).await
    }

    /// Forgets the owner's counted uses: its whole quota is free again.
    /// Returns whether anything was counted.
    pub async fn reset(&self, owner: &Q::Owner) -> Result<bool> {
        let owner = Self::owner_text(owner)?;
        let scope = Self::scope();
        let work = self.store.backend.rate_counter().reset(&scope, &owner);
        telemetry::measured(Q::NAME, "reset", Some(&owner), work).await
    }

    /// Forgets the owners with nothing left in the window, so that storage
    /// does not grow with every owner ever seen (backends also do this on
    /// their own from time to time). Returns how many entries went.
    pub async fn sweep(&self) -> Result<u64> {
        let scope = Self::scope();
        let work =
            self.store
                .backend
                .rate_counter()
                .sweep(&scope, Self::window(), self.store.now());
        telemetry::measured(Q::NAME, "sweep", None, work).await
    }
}
