//! The write operations: what each does at the steps of the
//! [pipeline](super::pipeline).

use std::borrow::Borrow;

use super::pipeline::{After, Finished, WriteOp};
use super::{codec, Table};
use crate::backend::{Backend, Expect, Outcome, Payload, Removed, Restored, RmMode, Stored, Write};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::hooks::{self, BeforeRm, BeforeSet, TableHooks};
use crate::row::Row;
use crate::schema::{KvKey, KvSchema, SoftDelete};

impl<S: KvSchema> Table<S> {
    /// Stores `value` under `key`, creating or overwriting the row, and
    /// returns the row. Setting a soft-deleted key brings it back. Requires
    /// the write role; counts against the rate limit.
    pub async fn set(&self, ctx: &Ctx, key: impl Borrow<S::Key>, value: S) -> Result<Row<S>> {
        self.write(ctx, key.borrow(), SetOp::new(value), Expect::Any)
            .await
    }

    /// Like [`Table::set`], but only if the stored live row still has
    /// `updated_at == expected_updated_at`; otherwise [`Error::Conflict`]
    /// carrying the current `updated_at` (`None` when there is no live row).
    /// The check and the write are one atomic step. Over HTTP this is `PUT`
    /// with `If-Match`.
    pub async fn set_expecting(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        value: S,
        expected_updated_at: i64,
    ) -> Result<Row<S>> {
        let expect = Expect::Version(expected_updated_at);
        self.write(ctx, key.borrow(), SetOp::new(value), expect)
            .await
    }

    /// Like [`Table::set`], but only if there is no live row under `key`:
    /// creates a missing row, or revives a soft-deleted one; a live row is
    /// left alone and the call fails with [`Error::Conflict`] carrying that
    /// row's `updated_at`. The check and the write are one atomic step, so
    /// of many concurrent calls for one absent key exactly one succeeds.
    pub async fn set_if_absent(
        &self,
        ctx: &Ctx,
        key: impl Borrow<S::Key>,
        value: S,
    ) -> Result<Row<S>> {
        self.write(ctx, key.borrow(), SetOp::new(value), Expect::NotLive)
            .await
    }

    /// Deletes `key`: marks it deleted on `soft_delete` tables, removes it
    /// otherwise. Returns whether a live row was deleted; a missing or
    /// already deleted key is not an error and changes nothing. Requires the
    /// write role; counts against the rate limit.
    ///
    /// With `before_rm` hooks, the row deleted is exactly the row the hooks
    /// approved: when another writer changes it in between, it is read
    /// again and the hooks run again (a bounded number of times; then
    /// [`Error::Contended`]).
    pub async fn rm(&self, ctx: &Ctx, key: impl Borrow<S::Key>) -> Result<bool> {
        self.write(ctx, key.borrow(), RmOp, Expect::Any).await
    }

    /// Brings back a soft-deleted row, bumping its `updated_at`; a live row
    /// is returned unchanged. A key that never existed (or was purged) is
    /// [`Error::NotFound`]. Requires the write role; not rate-limited, and
    /// runs no hooks. Only tables declared with `soft_delete` have this
    /// method.
    pub async fn restore(&self, ctx: &Ctx, key: impl Borrow<S::Key>) -> Result<Row<S>>
    where
        S: SoftDelete,
    {
        self.write(ctx, key.borrow(), RestoreOp, Expect::Any).await
    }

    /// [`Table::restore`] without the `SoftDelete` bound, for callers that
    /// check [`KvSchema::SOFT_DELETE`] at run time (the command line).
    #[cfg(feature = "cli")]
    pub(crate) async fn restore_checked(&self, ctx: &Ctx, key: &S::Key) -> Result<Row<S>> {
        self.write(ctx, key, RestoreOp, Expect::Any).await
    }
}

/// `set`: stores a value.
pub(super) struct SetOp<S> {
    value: S,
    /// The encoded value, once prepared.
    payload: Option<Payload>,
    /// The operation's name in errors: `"set"`, or `"revert"` for a
    /// [`RevertOp`].
    op: &'static str,
}

impl<S: KvSchema> SetOp<S> {
    fn new(value: S) -> Self {
        SetOp::named(value, "set")
    }

    fn named(value: S, op: &'static str) -> Self {
        SetOp {
            value,
            payload: None,
            op,
        }
    }
}

impl<S: KvSchema> WriteOp<S> for SetOp<S> {
    const NAME: &'static str = "set";
    const RATE_LIMITED: bool = true;
    type Applied = Stored;
    type Output = Row<S>;

    fn prepare(&mut self) -> Result<()> {
        self.payload = Some(codec::encode(&self.value)?);
        Ok(())
    }

    fn has_before_hooks(hooks: &TableHooks<S>) -> bool {
        !hooks.before_set.is_empty()
    }

    async fn before(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        current: Option<Row<S>>,
        hooks: &TableHooks<S>,
    ) -> Result<Self> {
        let value = hooks::run_before(
            &hooks.before_set,
            S::TABLE,
            self.op,
            self.value.clone(),
            |value| BeforeSet {
                ctx: ctx.clone(),
                key: key.clone(),
                value,
                previous: current.clone(),
            },
        )
        .await?;
        // What the hooks return is validated like any value.
        let mut op = SetOp::named(value, self.op);
        op.prepare()?;
        Ok(op)
    }

    async fn apply(
        &self,
        backend: &dyn Backend,
        table: &'static str,
        write: Write<'_>,
    ) -> Result<Outcome<Stored>> {
        let payload = self.payload.clone();
        let payload = payload.ok_or_else(|| Error::Internal("set before prepare".into()))?;
        backend.set(table, write, payload).await
    }

    fn finish(self, key: &S::Key, stored: Stored) -> Result<Finished<S, Row<S>>> {
        let row = Row {
            key: key.clone(),
            value: self.value,
            created_at: stored.row.created_at,
            updated_at: stored.row.updated_at,
            deleted_at: None,
            updated_by: stored.row.updated_by,
        };
        let replaced = stored.previous.map(|previous| {
            let mut keep = Vec::new();
            row.value.file_ids(&mut keep);
            (previous, keep.into_iter().map(str::to_owned).collect())
        });
        Ok(Finished {
            after: After::Set(row.clone()),
            output: row,
            replaced,
        })
    }
}

/// `revert`: a `set` of a value from the row's history, with its own name
/// (in errors, traces and metrics); the expectation it is written under
/// comes from [`Table::revert`](super::Table::revert).
pub(super) struct RevertOp<S>(SetOp<S>);

impl<S: KvSchema> RevertOp<S> {
    pub(super) fn new(value: S) -> Self {
        RevertOp(SetOp::named(value, "revert"))
    }
}

impl<S: KvSchema> WriteOp<S> for RevertOp<S> {
    const NAME: &'static str = "revert";
    const RATE_LIMITED: bool = true;
    type Applied = Stored;
    type Output = Row<S>;

    fn prepare(&mut self) -> Result<()> {
        self.0.prepare()
    }

    fn has_before_hooks(hooks: &TableHooks<S>) -> bool {
        SetOp::<S>::has_before_hooks(hooks)
    }

    async fn before(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        current: Option<Row<S>>,
        hooks: &TableHooks<S>,
    ) -> Result<Self> {
        self.0.before(ctx, key, current, hooks).await.map(RevertOp)
    }

    async fn apply(
        &self,
        backend: &dyn Backend,
        table: &'static str,
        write: Write<'_>,
    ) -> Result<Outcome<Stored>> {
        self.0.apply(backend, table, write).await
    }

    fn finish(self, key: &S::Key, stored: Stored) -> Result<Finished<S, Row<S>>> {
        self.0.finish(key, stored)
    }
}

/// `rm`: deletes the live row, soft or hard per the table.
pub(super) struct RmOp;

impl<S: KvSchema> WriteOp<S> for RmOp {
    const NAME: &'static str = "rm";
    const RATE_LIMITED: bool = true;
    type Applied = Removed;
    type Output = bool;

    fn has_before_hooks(hooks: &TableHooks<S>) -> bool {
        !hooks.before_rm.is_empty()
    }

    async fn before(
        &self,
        ctx: &Ctx,
        _key: &S::Key,
        current: Option<Row<S>>,
        hooks: &TableHooks<S>,
    ) -> Result<Self> {
        // No live row: nothing to approve; the backend step, expecting no
        // live row, reports that nothing was deleted (or that one appeared).
        if let Some(row) = current {
            hooks::run_before(&hooks.before_rm, S::TABLE, "rm", (), |()| BeforeRm {
                ctx: ctx.clone(),
                row: row.clone(),
            })
            .await?;
        }
        Ok(RmOp)
    }

    async fn apply(
        &self,
        backend: &dyn Backend,
        table: &'static str,
        write: Write<'_>,
    ) -> Result<Outcome<Removed>> {
        let mode = if S::SOFT_DELETE {
            RmMode::Soft
        } else {
            RmMode::Hard
        };
        backend.rm(table, write, mode).await
    }

    fn finish(self, _key: &S::Key, removed: Removed) -> Result<Finished<S, bool>> {
        Ok(match removed {
            Removed::NotLive => Finished {
                output: false,
                replaced: None,
                after: After::Nothing,
            },
            Removed::Row(before) => Finished {
                output: true,
                // A soft delete keeps the files, so that restore brings the
                // row back whole.
                replaced: (!S::SOFT_DELETE).then(|| (before.clone(), Vec::new())),
                after: After::Rm(before),
            },
        })
    }
}

/// `restore`: revives a soft-deleted row.
pub(super) struct RestoreOp;

impl<S: KvSchema> WriteOp<S> for RestoreOp {
    const NAME: &'static str = "restore";
    const RATE_LIMITED: bool = false;
    type Applied = Restored;
    type Output = Row<S>;

    async fn apply(
        &self,
        backend: &dyn Backend,
        table: &'static str,
        write: Write<'_>,
    ) -> Result<Outcome<Restored>> {
        backend.restore(table, write).await
    }

    fn finish(self, key: &S::Key, restored: Restored) -> Result<Finished<S, Row<S>>> {
        let row = match restored {
            Restored::Revived(raw) | Restored::AlreadyLive(raw) => {
                codec::decode(&raw, key.clone())?
            }
            Restored::NotFound => {
                return Err(Error::NotFound {
                    table: S::TABLE,
                    key: crate::error::shorten(key.as_str()),
                })
            }
        };
        Ok(Finished {
            output: row,
            replaced: None,
            after: After::Nothing,
        })
    }
}
