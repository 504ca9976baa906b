//! Live reads: watch streams and in-process replicas of the table.

use std::borrow::Borrow;
use std::future::Future;

use super::Table;
use crate::error::Result;
use crate::replica::Replica;
use crate::schema::{KvKey, KvSchema};
use crate::telemetry;
use crate::watch::Watch;

impl<S: KvSchema> Table<S> {
    /// Watches one row: a stream of its states, starting with the current
    /// one (`row: None` when there is no live row), then one per committed
    /// change in commit order. Public: needs no context. See [`Watch`].
    ///
    /// Fails when the current state cannot be read (or the key is not
    /// valid); a current row that cannot be decoded is an `Err` first item
    /// instead, and the stream goes on.
    ///
    /// ```no_run
    /// # use kv_runtime::{Kv, Store};
    /// # #[derive(Kv, serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    /// # #[kv(keys = [banner])]
    /// # pub struct Site { pub message: String }
    /// # async fn demo(store: Store) -> kv_runtime::Result<()> {
    /// let mut banner = store.table::<Site>().watch(SiteKey::Banner).await?;
    /// while let Some(state) = banner.next().await {
    ///     match state?.row {
    ///         Some(row) => println!("banner: {}", row.value.message),
    ///         None => println!("no banner"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn watch(
        &self,
        key: impl Borrow<S::Key>,
    ) -> impl Future<Output = Result<Watch<S>>> + Send + '_ {
        let key = key.borrow().clone();
        async move {
            let start = async {
                key.check(S::TABLE)?;
                Watch::start(self, Some(key.clone())).await
            };
            telemetry::measured(S::TABLE, "watch", Some(key.as_str()), start).await
        }
    }

    /// Watches every row of the table: first one state per live row (in key
    /// order), then one per committed change of any key. Public: needs no
    /// context. Rows whose key the schema no longer declares are skipped.
    ///
    /// Fails when the rows cannot be read; a row that cannot be decoded is
    /// an `Err` item instead, and the stream goes on.
    pub async fn watch_table(&self) -> Result<Watch<S>> {
        telemetry::measured(S::TABLE, "watch", None, Watch::start(self, None)).await
    }

    /// Mirrors this table in process memory, kept current by the change
    /// feed: see [`Replica`]. Same as [`Replica::start`].
    pub async fn replica(&self) -> Result<Replica<S>> {
        Replica::start(self).await
    }
}
