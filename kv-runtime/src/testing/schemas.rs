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

/// A room: the parent of [`ChatLine`], a typed id stored as `room-<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RoomId(pub u32);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "room-{}", self.0)
    }
}

impl std::str::FromStr for RoomId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("room-").unwrap_or(s).parse().map(RoomId)
    }
}

/// A soft-delete log per room: members write, anyone reads, lines of 1 to
/// 200 bytes, values of at most 4 KiB.
#[derive(crate::Log, Serialize, Deserialize, Clone, Debug, PartialEq, garde::Validate)]
#[log(
    table = "conformanceChat",
    parent = RoomId,
    write_role = member,
    read_role = public,
    soft_delete,
    max_value_bytes = 4096
)]
pub struct ChatLine {
    /// The text.
    #[garde(length(min = 1, max = 200))]
    pub text: String,
}

impl ChatLine {
    /// A line saying `text`.
    pub fn new(text: &str) -> Self {
        ChatLine {
            text: text.to_owned(),
        }
    }
}

/// A hard-delete log with free `String` parents, internal callers only
/// (reads too: the read role defaults to the write role).
#[derive(crate::Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[log(table = "conformanceAudit")]
pub struct AuditEvent {
    /// What happened.
    pub what: String,
}

/// Anyone may append, at most 3 entries per second per caller.
#[derive(crate::Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[log(table = "conformanceShout", write_role = public, rate_limit(max = 3, window = "1s"))]
pub struct Shout {
    /// A counter.
    pub n: u32,
}

/// 5 uses per owner in any hour.
#[derive(crate::Quota)]
#[quota(name = "conformanceVotes", max = 5, window = "1h")]
pub struct Votes;

/// A user: the owner of [`PerUser`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserId(pub u32);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "u{}", self.0)
    }
}

/// 3 uses per [`UserId`] in any second.
#[derive(crate::Quota)]
#[quota(name = "conformancePerUser", max = 3, window = "1s", owner = UserId)]
pub struct PerUser;
