//! The change feed: a dedicated connection LISTENing on `kv_changes`, whose
//! notifications become [`FeedEvent`]s.
//!
//! Two tasks: a driver polls the connection (notifications arrive only while
//! it is polled) and hands notifications over a bounded channel to the
//! supervisor, which decodes them, reads back rows too large for a
//! notification, broadcasts, and reconnects when the connection is lost.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls, Notification};

use super::errors::describe;
use super::{fetch, sql};
use crate::backend::{Change, ChangeFeed, FeedEvent, Payload, RawRow, FEED_CAPACITY};
use crate::error::{Error, Result};

/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long reading back a row too large for its notification may take
/// before the feed gives up on it and sends `Resync` instead.
const REREAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Aborts its task when dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A listening connection.
struct Listening {
    /// Kept so that the connection stays open.
    _client: tokio_postgres::Client,
    notifications: mpsc::Receiver<Notification>,
    _driver: AbortOnDrop,
}

/// Connects, LISTENs, and starts the supervisor. Returns once the
/// connection listens, so that every commit after it is reported.
pub(super) async fn start(
    config: tokio_postgres::Config,
    pool: Pool,
    sender: ChangeFeed,
    target: String,
) -> Result<AbortOnDrop> {
    let listening = listen(&config).await.map_err(|e| {
        Error::backend(
            format!(
                "PostgreSQL ({target}): cannot open the change-feed connection: {}",
                describe(&e)
            ),
            e,
        )
    })?;
    Ok(AbortOnDrop(tokio::spawn(supervise(
        config, pool, sender, target, listening,
    ))))
}

async fn listen(config: &tokio_postgres::Config) -> Result<Listening, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, notifications) = mpsc::channel(FEED_CAPACITY);
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    // A full channel makes the server hold the rest for us.
                    if tx.send(n).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {} // notices
                // An error or the end: the connection is gone. Dropping `tx`
                // tells the supervisor.
                Some(Err(_)) | None => break,
            }
        }
    });
    let driver = AbortOnDrop(driver);
    client.batch_execute(sql::LISTEN).await?;
    Ok(Listening {
        _client: client,
        notifications,
        _driver: driver,
    })
}

async fn supervise(
    config: tokio_postgres::Config,
    pool: Pool,
    sender: ChangeFeed,
    target: String,
    mut listening: Listening,
) {
    loop {
        while let Some(notification) = listening.notifications.recv().await {
            if notification.channel() == sql::CHANNEL {
                if let Some(event) = decode(&pool, &target, notification.payload()).await {
                    sender.send(event);
                }
            }
        }
        // The connection is lost: changes may be missed until it is back.
        sender.resync();
        drop(listening);
        let mut delay = BACKOFF_MIN;
        listening = loop {
            tokio::time::sleep(delay).await;
            match listen(&config).await {
                Ok(l) => break l,
                Err(_) => delay = (delay * 2).min(BACKOFF_MAX),
            }
        };
        // Listening again; whatever changed in between is unknown.
        sender.resync();
    }
}

/// A notification's payload, as the statements in `sql` build it.
#[derive(Deserialize)]
struct Notice {
    /// Table.
    t: String,
    /// Key.
    k: String,
    /// The live row, or null when none remains.
    #[serde(default)]
    r: Option<NoticeRow>,
    /// The row did not fit: read it back.
    #[serde(default)]
    reread: bool,
    /// With `reread`: the `updated_at` the change gave the row.
    #[serde(default)]
    u: Option<i64>,
}

#[derive(Deserialize)]
struct NoticeRow {
    /// The value's JSON text.
    v: String,
    c: i64,
    u: i64,
    b: Option<String>,
}

/// Turns a payload into an event: a change, or `Resync` when it cannot be
/// decoded or the row cannot be read back. `None` when the row read back
/// is no longer the one this change wrote: a later change has overwritten
/// or deleted it, and that change's own notification follows; handing on
/// the later state now would put it ahead of the changes in between,
/// breaking commit order per key.
async fn decode(pool: &Pool, target: &str, payload: &str) -> Option<FeedEvent> {
    let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
        return Some(FeedEvent::Resync);
    };
    let row = if notice.reread {
        match reread(pool, target, &notice.t, &notice.k).await {
            Ok(row) => {
                let row = row.filter(RawRow::is_live);
                if notice.u.is_some() && row.as_ref().map(|r| r.updated_at) != notice.u {
                    return None;
                }
                row
            }
            Err(_) => return Some(FeedEvent::Resync),
        }
    } else {
        notice.r.map(|r| RawRow {
            key: notice.k.clone(),
            value: Payload::from_json(r.v),
            created_at: r.c,
            updated_at: r.u,
            deleted_at: None,
            updated_by: r.b.map(Arc::from),
        })
    };
    Some(FeedEvent::Change(Change {
        table: notice.t,
        key: notice.k,
        row,
    }))
}

async fn reread(pool: &Pool, target: &str, table: &str, key: &str) -> Result<Option<RawRow>> {
    let read = async {
        let client = pool
            .get()
            .await
            .map_err(|e| Error::backend(format!("PostgreSQL ({target}): re-reading a row"), e))?;
        fetch(&client, target, table, key).await
    };
    tokio::time::timeout(REREAD_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(Error::backend_msg("re-reading a row timed out")))
}
