//! A chat room on a log: members append messages to a room, a reader pages
//! back through the history, and a live tail shows new messages as they
//! come.
//!
//! Each message gets the room's next number (1, 2, 3, ...), allocated
//! atomically: with PostgreSQL, app servers appending to the same room at
//! once get distinct, consecutive numbers. A client that resends a message
//! after a lost reply passes the same idempotency key and gets the first
//! entry back instead of a duplicate.
//!
//! `cargo run --example chat_room`

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use kv_runtime::{Ctx, Log, PageRequest, Store, TailEvent};
use serde::{Deserialize, Serialize};

/// A room's id: the parent of its messages. A parent prints as text and
/// parses back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomId(pub u32);

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "room-{}", self.0)
    }
}

impl FromStr for RoomId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.strip_prefix("room-")
            .and_then(|n| n.parse().ok())
            .map(RoomId)
            .ok_or_else(|| format!("not a room id: {s:?}"))
    }
}

/// One message. Members write, members read (the read role defaults to the
/// write role), deleted messages can be restored, and each member may send
/// 30 messages a minute.
#[derive(Log, Serialize, Deserialize, Clone, Debug, PartialEq, garde::Validate)]
#[log(parent = RoomId, write_role = member, soft_delete, rate_limit = 30)]
pub struct ChatMessage {
    /// The text, 1 to 2000 bytes.
    #[garde(length(min = 1, max = 2000))]
    pub text: String,
}

fn say(text: &str) -> ChatMessage {
    ChatMessage {
        text: text.to_owned(),
    }
}

#[tokio::main]
async fn main() -> kv_runtime::Result<()> {
    // Or "sqlite://chat.db", or "postgres://user@host/db" shared by servers.
    let store = Store::open("memory:").await?;
    let messages = store.log::<ChatMessage>();
    let room = RoomId(7);
    let ada = Ctx::user("ada").with_role("member");
    let bo = Ctx::user("bo").with_role("member");

    // Bo's screen follows the room live from now on.
    let mut tail = messages.tail(&bo, room).await?;
    let screen = tokio::spawn(async move {
        let mut shown = Vec::new();
        while let Some(event) = tail.next().await {
            match event {
                Ok(TailEvent::Appended(entry)) => {
                    println!(
                        "live  #{} {}: {}",
                        entry.seq,
                        author(&entry),
                        entry.value.text
                    );
                    shown.push(entry.seq);
                }
                Ok(TailEvent::Removed { seq, .. }) => println!("live  #{seq} was deleted"),
                Ok(TailEvent::Restored(entry)) => {
                    println!("live  #{} is back", entry.seq);
                    // The last thing this demo does: the screen closes.
                    break;
                }
                Ok(other) => println!("live  {other:?}"),
                Err(e) => {
                    println!("live  tail failed: {e}");
                    break;
                }
            }
        }
        shown
    });

    // Ada sends ten messages.
    for i in 1..=10 {
        messages
            .append(&ada, room, say(&format!("message {i}")))
            .await?;
    }
    // Bo's client sends one with a key it made; the reply is lost, it sends
    // again with the same key: one message, the same entry both times.
    let first = messages
        .append_idempotent(&bo, room, "bo-7f3a", say("on my way"))
        .await?;
    let retry = messages
        .append_idempotent(&bo, room, "bo-7f3a", say("on my way"))
        .await?;
    assert_eq!(first.seq, retry.seq);
    // A burst, all or nothing.
    let burst = messages
        .append_many(&ada, room, vec![say("one more"), say("last one")])
        .await?;
    println!(
        "the burst got numbers {} and {}",
        burst[0].seq, burst[1].seq
    );

    // Ada deletes message 3, then thinks better of it.
    messages.rm(&ada, room, 3).await?;
    messages.restore(&ada, room, 3).await?;

    // The tail saw every new message once, in order (the retry added
    // none), then the delete and the restore.
    let shown = tokio::time::timeout(Duration::from_secs(5), screen)
        .await
        .expect("the tail keeps up")
        .expect("the screen task");
    assert_eq!(shown, (1..=13).collect::<Vec<_>>());

    // Scrolling up: the newest five, then the five before them, and so on.
    let mut request = PageRequest::first(5);
    let mut page_no = 1;
    loop {
        let page = messages.list_backwards(&bo, room, request).await?;
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        println!("page {page_no} (newest first): {seqs:?}");
        match page.continue_cursor {
            Some(cursor) => request = PageRequest::after(cursor, 5),
            None => break,
        }
        page_no += 1;
    }

    // Someone without the member role reads nothing.
    let err = messages
        .list(&Ctx::anonymous(), room, PageRequest::first(5))
        .await
        .unwrap_err();
    println!("an anonymous reader gets {}", err.code());
    Ok(())
}

fn author(entry: &kv_runtime::LogEntry<ChatMessage>) -> &str {
    entry.author.as_deref().unwrap_or("anonymous")
}
