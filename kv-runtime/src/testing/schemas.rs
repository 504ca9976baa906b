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

/// Anyone may write, at most 3 writes per second per caller.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceLimited", write_role = public, rate_limit(max = 3, window = "1s"))]
pub struct Limited {
    /// A counter.
    pub n: u32,
}

/// A soft-delete table whose rows reference stored files.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceAttachment", write_role = admin, soft_delete, clean_files)]
pub struct Attachment {
    /// The main file.
    #[kv(file)]
    pub file: String,
    /// Thumbnails.
    #[kv(file)]
    pub thumbs: Vec<crate::files::FileId>,
    /// Not a file.
    pub title: String,
}

/// A hard-delete table whose rows may reference a stored file.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceUpload", write_role = admin, clean_files)]
pub struct Upload {
    /// The file, if any.
    #[kv(file)]
    pub file: Option<crate::files::FileId>,
}

/// A file store in memory that records deletions, and can be told to fail.
#[derive(Debug, Default)]
pub struct RecordingFiles {
    /// Ids deleted so far, in order.
    pub deleted: std::sync::Mutex<Vec<String>>,
    /// When true, every deletion fails.
    pub fail: std::sync::atomic::AtomicBool,
}

impl RecordingFiles {
    /// The ids deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.deleted.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl crate::files::FileStore for std::sync::Arc<RecordingFiles> {
    fn delete<'a>(&'a self, id: &'a str) -> crate::BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("the file store is down"));
            }
            if let Ok(mut d) = self.deleted.lock() {
                d.push(id.to_owned());
            }
            Ok(())
        })
    }
}

/// The table of [`Banner`] seen with free string keys: writes rows whose
/// keys [`Banner`] does not declare (as an older or newer schema would).
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceBanner", write_role = admin, soft_delete)]
pub struct BannerAnyKey {
    /// Shown or not.
    pub active: bool,
    /// The text.
    pub message: String,
}

/// A soft-delete table with declared keys and history (the newest 4
/// records per row), writable by role `admin`, with a field constraint.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq, garde::Validate)]
#[kv(
    table = "conformanceChronicle",
    keys = [banner, motd, alpha, beta],
    write_role = admin,
    soft_delete,
    history(keep = 4)
)]
pub struct Chronicle {
    /// The text: 1 to 200 bytes.
    #[garde(length(min = 1, max = 200))]
    pub message: String,
}

/// The [`Chronicle`] with `message`.
pub fn chronicle(message: &str) -> Chronicle {
    Chronicle {
        message: message.to_owned(),
    }
}

/// A hard-delete table with free keys and history kept for an hour (no
/// count), writable by role `editor`.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "conformanceJournal", write_role = editor, history(keep_for = "1h"))]
pub struct Journal {
    /// The entry.
    pub text: String,
}

/// The [`Journal`] entry `text`.
pub fn journal(text: &str) -> Journal {
    Journal {
        text: text.to_owned(),
    }
}

/// Anyone may write, at most 3 writes per second per caller; with history.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(
    table = "conformanceLimitedHistory",
    write_role = public,
    rate_limit(max = 3, window = "1s"),
    history
)]
pub struct LimitedHistory {
    /// A counter.
    pub n: u32,
}
