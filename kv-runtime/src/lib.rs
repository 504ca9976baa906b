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
//! See the crate README for every `#[kv(...)]` option.
#![warn(missing_docs)]

extern crate self as kv_runtime;

pub mod backend;
mod clock;
mod context;
mod cursor;
mod error;
pub mod files;
mod follow;
mod health;
pub mod hooks;
mod key_rules;
mod replica;
mod row;
mod schema;
mod store;
mod table;
mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;
#[cfg(feature = "web")]
pub mod web;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::Ctx;
pub use error::{Error, ErrorCode, FieldError, Result};
pub use health::{Health, ReplicaHealth};
pub use kv_macros::Kv;
pub use replica::{Replica, ReplicaStatus};
pub use row::{Page, PageRequest, Row};
pub use schema::{
    BoxFuture, KvKey, KvSchema, RateLimit, SoftDelete, WriteRole, DEFAULT_MAX_VALUE_BYTES,
    MAX_KEY_BYTES,
};
pub use store::Store;
pub use table::{PurgeTask, Table};
pub use watch::{Watch, WatchEvent};

/// Items the derive's generated code refers to. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::key_rules::key_problem;
    pub use crate::schema::{AsyncPredicate, PredicateOutput, SyncPredicate};
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
