//! Typed operations on one table, by concern:
//!
//! - [`read`]: `get`, `get_str`, `list` (public reads and paging);
//! - [`write`]: `set`, `set_expecting`, `set_if_absent`, `rm`, `restore`,
//!   each a thin entry into [`pipeline`], the one write pipeline
//!   (authorize, key check, validation, rate limit, before-hooks with
//!   retry, the backend step, file cleanup, after-hooks);
//! - [`hooks`]: registering `before_set`, `after_set`, `before_rm`,
//!   `after_rm`;
//! - [`live`]: `watch`, `watch_table` and `replica`;
//! - [`purge`]: `purge` and `spawn_purge`;
//! - [`history`]: `history`, and `revert` (a `set` of a recorded value,
//!   through the pipeline);
//! - [`migrate`]: `migrate_all`, moving rows to the current schema version;
//! - [`codec`]: validation and encoding of values, decoding of rows.

use std::fmt;
use std::marker::PhantomData;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::schema::{may_write, KvSchema};
use crate::store::Store;

pub(crate) mod codec;
mod history;
mod hooks;
mod live;
mod migrate;
mod pipeline;
mod purge;
mod read;
mod write;

pub use migrate::Migration;
pub use purge::PurgeTask;

/// The typed operations of table `S` in a [`Store`]. Get one with
/// [`Store::table`]; cheap to clone.
///
/// Reads (`get`, `watch`, replicas) are public and take no context. Writes
/// and `list` take the caller's [`Ctx`] and are checked against the table's
/// `write_role`; every write validates the value first. A failed call
/// changes nothing. The [operations table](crate#operations) says what each
/// operation does, who may call it and in which order a write is checked.
pub struct Table<S: KvSchema> {
    store: Store,
    _schema: PhantomData<fn() -> S>,
}

impl<S: KvSchema> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table::new(self.store.clone())
    }
}

impl<S: KvSchema> fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("table", &S::TABLE)
            .field("store", &self.store)
            .finish()
    }
}

impl<S: KvSchema> Table<S> {
    pub(crate) fn new(store: Store) -> Self {
        Table {
            store,
            _schema: PhantomData,
        }
    }

    /// The store this table lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Fails with [`Error::Forbidden`] unless `ctx` may write this table.
    pub(crate) async fn authorize(&self, ctx: &Ctx, op: &'static str) -> Result<()> {
        if may_write::<S>(ctx).await {
            Ok(())
        } else {
            Err(Error::Forbidden {
                table: S::TABLE,
                op,
                required: S::WRITE_ROLE.describe(),
            })
        }
    }
}
