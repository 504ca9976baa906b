//! Versioned schemas: each stored row records the version of the value
//! type that wrote it, and reads migrate older rows through a chain of
//! previous types, checked at compile time.
//!
//! ```
//! use kv_runtime::{Kv, KvVersion};
//! use serde::{Deserialize, Serialize};
//!
//! /// The first version: a plain message.
//! #[derive(KvVersion, Deserialize)]
//! #[kv(version = 1)]
//! struct BannerV1 {
//!     text: String,
//! }
//!
//! /// The current version: the text was renamed and a flag added.
//! #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! #[kv(keys = [banner], version = 2, from = BannerV1)]
//! struct Banner {
//!     message: String,
//!     active: bool,
//! }
//!
//! impl From<BannerV1> for Banner {
//!     fn from(old: BannerV1) -> Banner {
//!         Banner { message: old.text, active: true }
//!     }
//! }
//! # fn main() {
//! # use kv_runtime::KvVersion as _;
//! let read = Banner::decode_version(1, r#"{"text":"hi"}"#).unwrap();
//! assert_eq!(read, Banner { message: "hi".into(), active: true });
//! # }
//! ```

use std::fmt;

use serde::de::DeserializeOwned;

/// A version of a table's value type: the table's own type
/// (`#[derive(Kv)]`, version 1 unless `#[kv(version = N)]` says otherwise)
/// or a previous one kept to read old rows (`#[derive(KvVersion)]` with
/// `#[kv(version = N, from = Older)]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a version of a kv schema",
    label = "`from` must name a type with `#[derive(KvVersion)]` (or `#[derive(Kv)]`)",
    note = "add `#[derive(KvVersion)]` and `#[kv(version = N)]` to `{Self}`, N below this version"
)]
pub trait KvVersion: DeserializeOwned + Send + Sync + 'static {
    /// This type's version (1 for the first).
    const VERSION: u32;

    /// Decodes a value written as version `version` (this one or an older
    /// one) into this type, migrating through the chain of `from` types.
    fn decode_version(version: u32, json: &str) -> Result<Self, VersionError>;
}

/// Why a stored value could not be read as the current version.
#[derive(Debug)]
#[non_exhaustive]
pub enum VersionError {
    /// Written by a newer version than this program knows.
    Newer {
        /// The version that wrote it.
        stored: u32,
        /// The newest version this program knows.
        known: u32,
    },
    /// Written by an older version that no `from` chain reaches (the chain
    /// was cut short).
    NoMigration {
        /// The version that wrote it.
        stored: u32,
        /// The oldest version the chain reaches.
        oldest: u32,
    },
    /// The JSON does not decode as the version it says it is.
    Decode {
        /// The version it was decoded as.
        version: u32,
        /// The decoder's message.
        error: serde_json::Error,
    },
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionError::Newer { stored, known } => write!(
                f,
                "written by version {stored} of the schema; this program knows versions up to \
                 {known}: deploy the newer code"
            ),
            VersionError::NoMigration { stored, oldest } => write!(
                f,
                "written by version {stored} of the schema, older than any this program can \
                 migrate from (the oldest is {oldest})"
            ),
            VersionError::Decode { version, error } => {
                write!(f, "does not decode as version {version}: {error}")
            }
        }
    }
}

impl std::error::Error for VersionError {}

/// Decodes `json` as this type, written as `version`.
fn own<T: DeserializeOwned>(version: u32, json: &str) -> Result<T, VersionError> {
    serde_json::from_str(json).map_err(|error| VersionError::Decode { version, error })
}

/// [`KvVersion::decode_version`] of the first version of a chain.
#[doc(hidden)]
pub fn decode_first<T: DeserializeOwned>(
    own_version: u32,
    stored: u32,
    json: &str,
) -> Result<T, VersionError> {
    match stored.cmp(&own_version) {
        std::cmp::Ordering::Equal => own(stored, json),
        std::cmp::Ordering::Greater => Err(VersionError::Newer {
            stored,
            known: own_version,
        }),
        std::cmp::Ordering::Less => Err(VersionError::NoMigration {
            stored,
            oldest: own_version,
        }),
    }
}

/// [`KvVersion::decode_version`] of a version that comes `from` an older
/// one: older values decode as that one, then convert.
#[doc(hidden)]
pub fn decode_next<T, P>(own_version: u32, stored: u32, json: &str) -> Result<T, VersionError>
where
    T: DeserializeOwned + From<P>,
    P: KvVersion,
{
    match stored.cmp(&own_version) {
        std::cmp::Ordering::Equal => own(stored, json),
        std::cmp::Ordering::Greater => Err(VersionError::Newer {
            stored,
            known: own_version,
        }),
        std::cmp::Ordering::Less => P::decode_version(stored, json).map(T::from),
    }
}
