//! The tables the conformance suite writes. Their storage names all start
//! with `conformance`.

use serde::{Deserialize, Serialize};

use crate::{Ctx, Kv};

/// A soft-delete table with declared keys, writable by role `admin`, with a
/// field constraint.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq, garde::Validate)]
#[kv(
    table = "conformanceBanner",
    keys = [banner, maintenance, "site-banner", alpha, beta, gamma, delta, epsilon, zeta, eta, theta, iota],
    write_role = admin,
    soft_delete
)]
pub struct Banner {
    /// Shown or not.
    #[garde(skip)]
    pub active: bool,
    /// The text: 1 to 200 bytes.
    #[garde(length(min = 1, max = 200))]
    pub message: String,
}

impl Banner {
    /// An active banner with `message`.
    pub fn new(message: &str) -> Self {
        Banner {
            active: true,
            message: message.to_owned(),
        }
    }
}

/// A hard-delete table with free string keys, writable by role `editor`,
/// holding arbitrary JSON, limited to 64 KiB.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceNote", write_role = editor, max_value_bytes = 65536)]
pub struct Note {
    /// Any JSON.
    pub body: serde_json::Value,
}

/// Internal-only (no `write_role`).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceHealth", keys = [db, oauth])]
pub struct Health {
    /// Whether the integration works.
    pub ok: bool,
}

/// Anyone may write.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceGuestbook", write_role = public)]
pub struct Guestbook {
    /// The entry.
    pub text: String,
}

/// Application data a predicate reads from the context.
#[derive(Clone, Debug)]
pub struct Permissions {
    /// May edit flags.
    pub can_edit_flags: bool,
}

/// Sync predicate: the context's [`Permissions`] allow flag edits.
pub fn can_edit_flags(ctx: &Ctx) -> bool {
    ctx.data::<Permissions>().is_some_and(|p| p.can_edit_flags)
}

/// Writable when [`can_edit_flags`] says so.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceFlag", write_role(predicate = can_edit_flags))]
pub struct Flag {
    /// On or off.
    pub on: bool,
}

/// Async predicate: the user is `owner` (after a yield, as a lookup would).
pub async fn is_owner(ctx: &Ctx) -> bool {
    tokio::task::yield_now().await;
    ctx.user_id() == Some("owner")
}

/// Writable by user `owner`, decided by the async [`is_owner`].
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceSecret", write_role(predicate = is_owner), soft_delete)]
pub struct Secret {
    /// The secret.
    pub text: String,
}
