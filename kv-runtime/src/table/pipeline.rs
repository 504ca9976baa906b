//! The one write pipeline. Every write (`set`, `set_expecting`,
//! `set_if_absent`, `rm`, `restore`) runs the same steps, in this order:
//!
//! 1. authorize the caller against the table's write role;
//! 2. check the key;
//! 3. prepare the operation (validate and encode a value);
//! 4. count the write against the rate limit (`set` and `rm`);
//! 5. with before-hooks: read the live row, run the hooks on it, and make
//!    the backend step expect exactly what the hooks saw; when another
//!    writer changed the row in between, do it again (at most
//!    [`HOOK_ATTEMPTS`] times);
//! 6. the backend step: one atomic, conflict-checked change;
//! 7. delete the files the change left unreferenced (`clean_files`);
//! 8. run the after-hooks.
//!
//! What differs per operation is a [`WriteOp`] (in `write.rs`); a new
//! operation implements it and gets every step.

use std::future::Future;
use std::time::Duration;

use super::{codec, Table};
use crate::backend::{Backend, Expect, Outcome, RateDecision, RawRow, Window, Write};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::hooks::{self, TableHooks};
use crate::row::Row;
use crate::schema::{KvKey, KvSchema};
use crate::telemetry;

/// How many times a write with before-hooks reads the row and runs the
/// hooks while other writers keep changing the row in between, before it
/// gives up with [`Error::Contended`].
pub(crate) const HOOK_ATTEMPTS: usize = 16;

/// What one kind of write does at each step of the pipeline.
pub(super) trait WriteOp<S: KvSchema>: Sized + Send + Sync {
    /// The operation's name in errors (`"set"`, `"rm"`, `"restore"`).
    const NAME: &'static str;
    /// Whether it counts against the table's rate limit.
    const RATE_LIMITED: bool;
    /// What the backend step reports when it applied the change.
    type Applied: Send;
    /// What the caller gets.
    type Output: Send;

    /// Step 3: checks and encodes the input, before anything is counted.
    fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether `hooks` has before-hooks for this operation.
    fn has_before_hooks(_hooks: &TableHooks<S>) -> bool {
        false
    }

    /// Step 5: runs the before-hooks on `current` (the live row now),
    /// returning the operation to apply (a hook may change a value).
    fn before(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        current: Option<Row<S>>,
        hooks: &TableHooks<S>,
    ) -> impl Future<Output = Result<Self>> + Send {
        let _ = (ctx, key, current, hooks);
        async {
            Err(Error::Internal(format!(
                "{} has no before-hooks",
                Self::NAME
            )))
        }
    }

    /// Step 6: the backend step.
    fn apply(
        &self,
        backend: &dyn Backend,
        table: &'static str,
        write: Write<'_>,
    ) -> impl Future<Output = Result<Outcome<Self::Applied>>> + Send;

    /// Turns what was applied into the caller's answer and what steps 7
    /// and 8 need.
    fn finish(self, key: &S::Key, applied: Self::Applied) -> Result<Finished<S, Self::Output>>;
}

/// What a write leaves for its last steps.
pub(super) struct Finished<S: KvSchema, T> {
    /// The caller's answer.
    pub(super) output: T,
    /// The row the change replaced or removed, and the file ids the new
    /// state still holds: its other files are deleted (`clean_files`).
    pub(super) replaced: Option<(RawRow, Vec<String>)>,
    /// The after-hooks to run.
    pub(super) after: After<S>,
}

/// Which after-hooks run, and on what.
pub(super) enum After<S: KvSchema> {
    /// None.
    Nothing,
    /// `after_set`, on the stored row.
    Set(Row<S>),
    /// `after_rm`, on the raw row as it was before the delete.
    Rm(RawRow),
}

/// A row the hooks cannot read because a newer schema wrote it: the write
/// would overwrite it, which is [`Error::NewerSchema`].
fn newer_schema<S: KvSchema>(e: Error) -> Error {
    match e {
        Error::Unreadable {
            table,
            key,
            version,
            ..
        } if version > S::VERSION => Error::NewerSchema {
            table,
            key,
            stored: version,
            known: S::VERSION,
        },
        other => other,
    }
}

impl<S: KvSchema> Table<S> {
    /// Runs `op` on `key` through every step of the pipeline, in its span
    /// and counted ([`telemetry`](crate::telemetry)).
    pub(super) async fn write<O: WriteOp<S>>(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        op: O,
        expect: Expect,
    ) -> Result<O::Output> {
        let steps = self.run_steps(ctx, key, op, expect);
        telemetry::measured(S::TABLE, O::NAME, Some(key.as_str()), steps).await
    }

    async fn run_steps<O: WriteOp<S>>(
        &self,
        ctx: &Ctx,
        key: &S::Key,
        mut op: O,
        expect: Expect,
    ) -> Result<O::Output> {
        self.authorize(ctx, O::NAME).await?;
        key.check(S::TABLE)?;
        op.prepare()?;
        if O::RATE_LIMITED {
            self.count_write(ctx).await?;
        }
        let hooks = self.store.hooks.get::<S>();
        let with_hooks = hooks.as_deref().filter(|h| O::has_before_hooks(h));
        let mut attempt = 0;
        let (op, applied) = loop {
            attempt += 1;
            let (attempt_op, attempt_expect) = match with_hooks {
                None => (None, expect),
                Some(hooks) => {
                    let current = self.get(key).await.map_err(newer_schema::<S>)?;
                    let seen = current.as_ref().map(|r| r.updated_at);
                    let op = op.before(ctx, key, current, hooks).await?;
                    // Write against what the hooks saw, unless the caller
                    // asked for something of their own.
                    let expect = match expect {
                        Expect::Any => seen.map_or(Expect::NotLive, Expect::Version),
                        own => own,
                    };
                    (Some(op), expect)
                }
            };
            let write = Write {
                key: key.as_str(),
                expect: attempt_expect,
                updated_by: ctx.actor(),
                now: self.store.now(),
                history: S::HISTORY,
            };
            let applying = attempt_op.as_ref().unwrap_or(&op);
            match applying.apply(&*self.store.backend, S::TABLE, write).await {
                Ok(Outcome::Done(applied)) => break (attempt_op.unwrap_or(op), applied),
                Ok(Outcome::Conflict { current_updated_at }) => match expect {
                    // The row changed between the read and the write: read
                    // it again and ask the hooks again.
                    Expect::Any if with_hooks.is_some() => {
                        if attempt >= HOOK_ATTEMPTS {
                            return Err(Error::Contended {
                                table: S::TABLE,
                                key: crate::error::shorten(key.as_str()),
                                op: O::NAME,
                                attempts: attempt,
                            });
                        }
                        tokio::task::yield_now().await;
                    }
                    Expect::Any => {
                        return Err(Error::Internal(format!(
                            "the {} backend reported a conflict for an unconditional {} of \
                             key {:?} in table `{}`",
                            self.store.backend.name(),
                            O::NAME,
                            crate::error::shorten(key.as_str()),
                            S::TABLE
                        )))
                    }
                    _ => {
                        return Err(Error::Conflict {
                            table: S::TABLE,
                            key: crate::error::shorten(key.as_str()),
                            current_updated_at,
                        })
                    }
                },
                Ok(Outcome::NewerSchema { stored }) => {
                    return Err(Error::NewerSchema {
                        table: S::TABLE,
                        key: crate::error::shorten(key.as_str()),
                        stored,
                        known: S::VERSION,
                    })
                }
                Err(e) => return Err(e.in_table(S::TABLE)),
            }
        };
        let finished = op.finish(key, applied)?;
        if S::CLEAN_FILES {
            if let Some((replaced, keep)) = &finished.replaced {
                self.clean_files(std::slice::from_ref(replaced), keep).await;
            }
        }
        if let Some(hooks) = &hooks {
            match finished.after {
                After::Nothing => {}
                After::Set(row) if !hooks.after_set.is_empty() => {
                    hooks::run_after(&hooks.after_set, "after_set", || hooks::AfterSet {
                        ctx: ctx.clone(),
                        row: row.clone(),
                    })
                    .await;
                }
                After::Rm(raw) if !hooks.after_rm.is_empty() => {
                    match codec::decode_row::<S>(&raw) {
                        Ok(row) => {
                            hooks::run_after(&hooks.after_rm, "after_rm", || hooks::AfterRm {
                                ctx: ctx.clone(),
                                row: row.clone(),
                            })
                            .await;
                        }
                        Err(e) => tracing::warn!(
                            target: "kv_runtime::hooks",
                            table = S::TABLE,
                            "after_rm hooks skipped: {e}"
                        ),
                    }
                }
                After::Set(_) | After::Rm(_) => {}
            }
        }
        Ok(finished.output)
    }

    /// Step 4: counts a write against the table's rate limit, if it has
    /// one. Internal callers are exempt. The bucket is the user id, else
    /// the client address, else one shared anonymous bucket.
    async fn count_write(&self, ctx: &Ctx) -> Result<()> {
        let Some(limit) = S::RATE_LIMIT else {
            return Ok(());
        };
        if ctx.is_internal() {
            return Ok(());
        }
        let bucket = match (ctx.user_id(), ctx.client_addr()) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(addr)) => format!("addr:{addr}"),
            (None, None) => "anonymous".to_owned(),
        };
        let window = Window {
            max: limit.max,
            window_ms: i64::try_from(limit.window_ms).unwrap_or(i64::MAX),
        };
        let decision = self
            .store
            .backend
            .rate_counter()
            .hit(S::TABLE, &bucket, window, self.store.now())
            .await?;
        match decision {
            RateDecision::Admitted => Ok(()),
            RateDecision::Limited { retry_after_ms } => Err(Error::RateLimited {
                table: S::TABLE,
                retry_after: Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(1)),
            }),
        }
    }

    /// Step 7 (and purge): deletes the files the `replaced` rows referenced
    /// that `keep` does not hold and no other row of the table (live or
    /// soft-deleted) references.
    pub(super) async fn clean_files(&self, replaced: &[RawRow], keep: &[String]) {
        let mut old = Vec::new();
        for raw in replaced {
            match codec::decode_row::<S>(raw) {
                Ok(row) => old.push(row.value),
                Err(e) => tracing::warn!(
                    target: "kv_runtime::files",
                    table = S::TABLE,
                    "cannot read a replaced row's file ids: {e}"
                ),
            }
        }
        let mut old_ids = Vec::new();
        for value in &old {
            value.file_ids(&mut old_ids);
        }
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        let mut doomed = crate::files::unreferenced(&old_ids, &keep);
        if doomed.is_empty() {
            return;
        }
        match self.referenced(&doomed).await {
            Ok(used) => doomed.retain(|id| !used.contains(*id)),
            Err(e) => {
                tracing::warn!(
                    target: "kv_runtime::files",
                    table = S::TABLE,
                    "files left in place: cannot check which rows still reference them: {e}"
                );
                return;
            }
        }
        self.store.files.delete(S::TABLE, &doomed).await;
    }

    /// Which of `ids` a row of the table (live or soft-deleted) references.
    async fn referenced(&self, ids: &[&str]) -> Result<std::collections::HashSet<String>> {
        const PAGE: usize = 500;
        let ids: std::collections::HashSet<&str> = ids.iter().copied().collect();
        let mut used = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .store
                .backend
                .scan(S::TABLE, after.as_deref(), PAGE)
                .await?;
            for raw in &rows {
                // A row whose ids cannot be read may reference any of them.
                let row = codec::decode_row::<S>(raw)?;
                let mut held = Vec::new();
                row.value.file_ids(&mut held);
                used.extend(
                    held.into_iter()
                        .filter(|id| ids.contains(id))
                        .map(str::to_owned),
                );
            }
            match rows.last() {
                Some(last) if rows.len() == PAGE => after = Some(last.key.clone()),
                _ => return Ok(used),
            }
        }
    }
}
