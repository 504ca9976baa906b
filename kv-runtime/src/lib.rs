//! Typed, role-gated, string-keyed global state: site configuration, feature
//! flags, maintenance banners, system health.
//!
//! Annotate a struct with `#[derive(Kv)]` and get a key enum (a misspelled
//! key is a compile error), a row type, and typed `get` / `list` / `set` /
//! `rm` / `restore` over a storage backend chosen at run time.
//!
//! ```
//! use kv_runtime::{Ctx, Kv, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! #[kv(keys = [banner, maintenance], write_role = admin, soft_delete)]
//! pub struct SiteConfig {
//!     pub active: bool,
//!     pub message: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kv_runtime::Result<()> {
//! let store = Store::open("memory:").await?;
//! let config = store.table::<SiteConfig>();
//! let admin = Ctx::user("ada").with_role("admin");
//!
//! let value = SiteConfig { active: true, message: "Back at 5pm".into() };
//! let row = config.set(&admin, SiteConfigKey::Banner, value.clone()).await?;
//! assert_eq!(config.get(SiteConfigKey::Banner).await?.unwrap().value, value);
//!
//! // Reads are public, writes are not.
//! let err = config.rm(&Ctx::anonymous(), SiteConfigKey::Banner).await.unwrap_err();
//! assert_eq!(err.code(), kv_runtime::ErrorCode::Forbidden);
//! # let _ = row; Ok(())
//! # }
//! ```
//!
//! # Where to find what
//!
//! This page and the module pages are the reference: each table exists
//! once, on this page or in the module it belongs to.
//!
//! - [Cargo features](#cargo-features): what each feature adds.
//! - [Names](#names): one name per operation, and how HTTP maps onto them.
//! - [Options](#options): every `#[kv(...)]` option and field attribute,
//!   what the derive generates, write roles, rate limits, soft delete and
//!   purge, files.
//! - [Operations](#operations): what each operation does and who may call
//!   it; rows and their versions; the order of the checks.
//! - [Changing a schema](#changing-a-schema): versioned value types,
//!   migrations on read, `migrate_all`, rolling deploys.
//! - [Errors](#errors): every error code, its HTTP status, whether to
//!   retry, when it happens and what it carries.
//! - [Live reads](#live-reads): watch streams and in-process replicas.
//! - [Backends](#backends): memory, SQLite, PostgreSQL, and your own.
//! - [Observability](#observability): traces, metrics and health checks.
//! - The [`web`][web-module] module: the HTTP routes and the web layer's own error
//!   codes.
//! - The [`ts`][ts-module] module: TypeScript bindings of tables for the
//!   TypeScript client.
//! - The [`hooks`] module: code that runs before and after writes.
//!
#![doc = include_str!("../docs/features.md")]
#![doc = include_str!("../docs/naming.md")]
#![doc = include_str!("../docs/options.md")]
#![doc = include_str!("../docs/operations.md")]
#![doc = include_str!("../docs/schema.md")]
#![doc = include_str!("../docs/history.md")]
#![doc = include_str!("../docs/errors.md")]
#![doc = include_str!("../docs/live.md")]
#![doc = include_str!("../docs/backends.md")]
#![doc = include_str!("../docs/observability.md")]
// Links to items behind features: to the item when it is compiled in, else
// to the feature table. (The empty line ends the last paragraph, so that
// the definitions are not read as part of it.)
#![doc = ""]
#![cfg_attr(feature = "sqlite", doc = "[sqlite-module]: crate::backend::sqlite")]
#![cfg_attr(not(feature = "sqlite"), doc = "[sqlite-module]: #cargo-features")]
#![cfg_attr(
    feature = "postgres",
    doc = "[postgres-module]: crate::backend::postgres"
)]
#![cfg_attr(not(feature = "postgres"), doc = "[postgres-module]: #cargo-features")]
#![cfg_attr(feature = "web", doc = "[web-module]: crate::web")]
#![cfg_attr(not(feature = "web"), doc = "[web-module]: #cargo-features")]
#![cfg_attr(feature = "ts", doc = "[ts-module]: crate::ts")]
#![cfg_attr(not(feature = "ts"), doc = "[ts-module]: #cargo-features")]
#![cfg_attr(feature = "cli", doc = "[cli-module]: crate::cli")]
#![cfg_attr(not(feature = "cli"), doc = "[cli-module]: #cargo-features")]
#![cfg_attr(feature = "testing", doc = "[testing-module]: crate::testing")]
#![cfg_attr(not(feature = "testing"), doc = "[testing-module]: #cargo-features")]
#![cfg_attr(
    feature = "testing",
    doc = "[conformance-suite]: crate::conformance_suite"
)]
#![cfg_attr(not(feature = "testing"), doc = "[conformance-suite]: #cargo-features")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as kv_runtime;

pub mod backend;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod clock;
mod context;
mod cursor;
mod error;
pub mod files;
mod follow;
mod health;
mod history;
pub mod hooks;
mod key_rules;
mod replica;
mod row;
mod schema;
mod store;
mod table;
mod telemetry;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "ts")]
#[cfg_attr(docsrs, doc(cfg(feature = "ts")))]
pub mod ts;
mod version;
mod watch;
#[cfg(feature = "web")]
#[cfg_attr(docsrs, doc(cfg(feature = "web")))]
pub mod web;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// The crate's own README (shown on crates.io), compiled and run too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod crate_readme {}

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::Ctx;
pub use error::{Error, ErrorCode, FieldError, Result};
pub use health::{Health, ReplicaHealth};
pub use history::{HistoryEntry, HistoryOp, HistoryPage, UnreadableEntry};
/// The derive that turns a struct into a kv table; every `#[kv(...)]`
/// option and what it generates is in [Options](crate#options).
pub use kv_macros::{Kv, KvVersion};
pub use replica::{Replica, ReplicaStatus};
pub use row::{Page, PageRequest, Row, UnreadableRow};
pub use schema::{
    BoxFuture, History, HistoryPolicy, KvKey, KvSchema, RateLimit, SoftDelete, WriteRole,
    DEFAULT_HISTORY_KEEP, DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES,
};
pub use store::Store;
pub use table::{Migration, PurgeTask, Table};
pub use version::{KvVersion, VersionError};
pub use watch::{Watch, WatchEvent};

/// Items the derive's generated code refers to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::key_rules::key_problem;
    pub use crate::schema::{AsyncPredicate, PredicateOutput, SyncPredicate};
    pub use crate::version::{decode_first, decode_next};
    pub use serde;
    use std::future::Future;

    /// Resolves a predicate's `bool` or future of `bool`.
    pub fn resolve_predicate<M, P: PredicateOutput<M>>(p: P) -> impl Future<Output = bool> + Send {
        p.resolve()
    }

    /// The error for key text that is not one of `keys`.
    pub fn unknown_key(table: &'static str, text: &str, keys: &[&str]) -> crate::Error {
        crate::Error::invalid_key(
            table,
            text,
            format!("not a key of this table; the keys are: {}", keys.join(", ")),
        )
    }

    /// Deserializes a key enum from its text.
    pub fn deserialize_key<'de, K, D>(d: D, table: &'static str) -> Result<K, D::Error>
    where
        K: crate::KvKey,
        D: serde::Deserializer<'de>,
    {
        struct V<K>(&'static str, std::marker::PhantomData<K>);
        impl<K: crate::KvKey> serde::de::Visitor<'_> for V<K> {
            type Value = K;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key of the table, as a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<K, E> {
                K::parse_key(self.0, v).map_err(E::custom)
            }
        }
        d.deserialize_str(V(table, std::marker::PhantomData))
    }

    /// Converts garde field paths and messages into field errors.
    pub fn field_error(
        path: impl std::fmt::Display,
        message: impl std::fmt::Display,
    ) -> crate::FieldError {
        crate::FieldError::new(path.to_string(), message.to_string())
    }
}
