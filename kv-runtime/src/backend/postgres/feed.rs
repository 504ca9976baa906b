//! The change feed: a dedicated connection LISTENing on the schema's
//! channel, whose notifications become [`FeedEvent`]s, and a check that
//! they really arrive.
//!
//! Two tasks: a driver polls the connection (notifications arrive only while
//! it is polled) and hands notifications over a bounded channel to the
//! supervisor, which decodes them, reads back rows too large for a
//! notification, broadcasts, and reconnects when the connection is lost.
//!
//! At start and after every reconnect the supervisor checks the feed: it
//! sends a notification with a fresh nonce through the write pool (the
//! path every write takes) and waits, within `op_timeout`, for it to come
//! back on the listening connection. A pooler in transaction mode runs
//! LISTEN on whichever server connection is free and then hands that
//! connection to others, so the nonce never comes back: the feed reports
//! [`FeedHealth::Unverified`], warns, and checks again every
//! [`RECHECK_EVERY`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, Notification};

use super::errors::{connect_error, describe, Access};
use super::ops::read_row;
use super::pool::{Connector, Core};
use super::settings::Endpoint;
use crate::backend::{
    Change, ChangeFeed, EntryChange, EntryOp, FeedEvent, FeedHealth, Payload, RawEntry, RawRow,
    FEED_CAPACITY,
};
use crate::error::Result;

/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an unverified feed is checked again.
pub(super) const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// The start of a check notification's payload (rows never start so).
const PROBE: &str = "{\"probe\":\"";

/// Aborts its task when dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The feed's health, as the supervisor last saw it.
#[derive(Debug)]
pub(super) struct State(Mutex<FeedHealth>);

impl State {
    pub(super) fn get(&self) -> FeedHealth {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, health: FeedHealth) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }
}

/// What the driver hands the supervisor.
enum Msg {
    Note(Notification),
    Lost(String),
}

/// A listening connection.
struct Listening {
    /// Kept so that the connection stays open.
    _client: tokio_postgres::Client,
    messages: mpsc::Receiver<Msg>,
    _driver: AbortOnDrop,
}

/// Where the listener connects and what it needs.
struct Listener {
    core: Arc<Core>,
    endpoint: Endpoint,
    connector: Connector,
    sender: ChangeFeed,
    state: Arc<State>,
}

/// Connects, LISTENs, and starts the supervisor. Returns once the
/// connection listens (so that every commit after it is reported) and the
/// first check has an answer.
pub(super) async fn start(
    core: Arc<Core>,
    endpoint: Endpoint,
    sender: ChangeFeed,
) -> Result<(AbortOnDrop, Arc<State>)> {
    let connector = Connector::new(&endpoint)?;
    let listener = Listener {
        state: Arc::new(State(Mutex::new(FeedHealth::Disconnected {
            since: now_ms(),
            reason: "starting".to_owned(),
        }))),
        core,
        endpoint,
        connector,
        sender,
    };
    let listening = listener
        .listen()
        .await
        .map_err(|e| connect_error(&listener.endpoint, "opening the change-feed connection", e))?;
    let state = Arc::clone(&listener.state);
    let bound = listener.core.op_timeout;
    let (first, verdict) = oneshot::channel();
    let task = tokio::spawn(listener.supervise(listening, first));
    // The check answers within `op_timeout` unless the connection is lost
    // meanwhile; then the feed reports `Disconnected` until it is back.
    if let Ok(Ok(FeedHealth::Unverified { reason })) =
        tokio::time::timeout(bound * 2 + BACKOFF_MAX, verdict).await
    {
        tracing::warn!(
            target: "kv_runtime::postgres",
            "PostgreSQL change feed NOT VERIFIED: {reason}. Watchers and replicas will miss \
             changes made by other processes until this is fixed."
        );
    }
    Ok((AbortOnDrop(task), state))
}

impl Listener {
    async fn listen(&self) -> std::result::Result<Listening, tokio_postgres::Error> {
        let (client, mut connection) = self.connector.connect(&self.endpoint.pg).await?;
        let (tx, messages) = mpsc::channel(FEED_CAPACITY);
        let driver = tokio::spawn(async move {
            loop {
                let msg = match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => Msg::Note(n),
                    Some(Ok(_)) => continue, // notices
                    Some(Err(e)) => Msg::Lost(describe(&e)),
                    None => Msg::Lost("the server closed the connection".to_owned()),
                };
                let lost = matches!(msg, Msg::Lost(_));
                // A full channel makes the server hold the rest for us.
                if tx.send(msg).await.is_err() || lost {
                    break;
                }
            }
        });
        let driver = AbortOnDrop(driver);
        client.batch_execute(&self.core.stmts.listen()).await?;
        Ok(Listening {
            _client: client,
            messages,
            _driver: driver,
        })
    }

    async fn supervise(self, mut listening: Listening, first: oneshot::Sender<FeedHealth>) {
        let mut first = Some(first);
        loop {
            let reason = self.follow(&mut listening, &mut first).await;
            // The connection is lost: changes may be missed until it is back.
            let since = now_ms();
            self.state.set(FeedHealth::Disconnected {
                since,
                reason: reason.clone(),
            });
            tracing::warn!(
                target: "kv_runtime::postgres",
                "PostgreSQL ({}): the change feed lost its connection ({reason}); reconnecting",
                self.endpoint.target
            );
            self.sender.resync();
            let mut delay = BACKOFF_MIN;
            listening = loop {
                tokio::time::sleep(delay).await;
                match self.listen().await {
                    Ok(l) => break l,
                    Err(e) => {
                        self.state.set(FeedHealth::Disconnected {
                            since,
                            reason: format!("reconnecting: {}", describe(&e)),
                        });
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
            };
            // Listening again; whatever changed in between is unknown.
            self.sender.resync();
        }
    }

    /// Follows one listening connection until it is lost (returning why),
    /// checking it at once and, while unverified, every [`RECHECK_EVERY`].
    async fn follow(
        &self,
        listening: &mut Listening,
        first: &mut Option<oneshot::Sender<FeedHealth>>,
    ) -> String {
        let bound = self.core.op_timeout;
        let mut nonce = new_nonce();
        let mut verified = false;
        // `Some`: a check is out, answered by its nonce or by this time.
        let mut waiting_until = Some(Instant::now() + bound);
        let mut recheck_at = Instant::now() + RECHECK_EVERY;
        let mut send = Box::pin(self.send_check(nonce.clone()));
        let mut sending = true;
        loop {
            tokio::select! {
                message = listening.messages.recv() => match message {
                    Some(Msg::Note(n)) => {
                        if let Some(probe) = n.payload().strip_prefix(PROBE) {
                            if waiting_until.is_some() && probe.trim_end_matches("\"}") == nonce {
                                waiting_until = None;
                                if !verified {
                                    if first.is_none() {
                                        tracing::info!(
                                            target: "kv_runtime::postgres",
                                            "PostgreSQL ({}): the change feed is verified",
                                            self.endpoint.target
                                        );
                                    }
                                    verified = true;
                                }
                                self.verdict(FeedHealth::Verified, first);
                            }
                            // Other processes' checks: not for us.
                        } else if n.channel() == self.core.stmts.channel {
                            if let Some(event) = self.decode(n.payload()).await {
                                self.sender.send(event);
                            }
                        }
                    }
                    Some(Msg::Lost(reason)) => return reason,
                    None => return "the listening connection's task ended".to_owned(),
                },
                sent = &mut send, if sending => {
                    sending = false;
                    if let Err(e) = sent {
                        waiting_until = None;
                        self.verdict(FeedHealth::Unverified {
                            reason: format!(
                                "the check notification could not be sent ({e}); checking \
                                 again in {RECHECK_EVERY:?}"
                            ),
                        }, first);
                    }
                }
                _ = tokio::time::sleep_until(waiting_until.unwrap_or(recheck_at)), if waiting_until.is_some() => {
                    waiting_until = None;
                    verified = false;
                    let reason = format!(
                        "the listening connection ({}) did not receive the check notification \
                         sent through the write pool ({}) within {bound:?}: if it goes through a \
                         connection pooler in transaction mode, LISTEN does not work there; set \
                         listen_url to a direct (or session-mode) connection to the same database",
                        self.endpoint.target,
                        self.core.target()
                    );
                    if first.is_none() {
                        tracing::warn!(
                            target: "kv_runtime::postgres",
                            "PostgreSQL change feed NOT VERIFIED: {reason}"
                        );
                    }
                    self.verdict(FeedHealth::Unverified { reason }, first);
                }
                _ = tokio::time::sleep_until(recheck_at), if !verified && waiting_until.is_none() && !sending => {
                    nonce = new_nonce();
                    waiting_until = Some(Instant::now() + bound);
                    recheck_at = Instant::now() + RECHECK_EVERY;
                    send = Box::pin(self.send_check(nonce.clone()));
                    sending = true;
                }
            }
        }
    }

    /// Records a check's outcome, and hands the first one to `start`.
    fn verdict(&self, health: FeedHealth, first: &mut Option<oneshot::Sender<FeedHealth>>) {
        self.state.set(health.clone());
        if let Some(first) = first.take() {
            let _ = first.send(health);
        }
    }

    /// Sends a check notification through the write pool.
    fn send_check(
        &self,
        nonce: String,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let core = Arc::clone(&self.core);
        // The channel is a checked identifier and the nonce hex digits.
        let sql = format!(
            "SELECT pg_notify('{}', '{PROBE}{nonce}\"}}')",
            core.stmts.channel
        );
        let target = core.target().to_owned();
        async move {
            core.run(Access::Write, "checking the change feed", |c| async move {
                c.simple(&sql)
                    .await
                    .map_err(|e| super::errors::pg_error(&target, "the feed check", e))
            })
            .await
        }
    }

    /// Turns a payload into an event: a change, or `Resync` when it cannot
    /// be decoded or the row cannot be read back. `None` when the row read
    /// back is no longer the one this change wrote: a later change has
    /// overwritten or deleted it, and that change's own notification
    /// follows; handing on the later state now would put it ahead of the
    /// changes in between, breaking commit order per key.
    async fn decode(&self, payload: &str) -> Option<FeedEvent> {
        let Ok(notice) = serde_json::from_str::<Notice>(payload) else {
            return Some(FeedEvent::Resync);
        };
        if let Some(parent) = notice.p.clone() {
            return self.decode_entry(parent, notice).await;
        }
        let row = if notice.reread {
            match self.reread(&notice.t, &notice.k).await {
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
                value: Payload::versioned(r.v, r.s),
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

    /// Turns a log entry's notification into an event; `Resync` when it
    /// cannot be decoded or the entry cannot be read back. An entry read
    /// back is its latest state: a later change's own notification follows,
    /// which says the same again.
    async fn decode_entry(&self, parent: String, notice: Notice) -> Option<FeedEvent> {
        let table = notice.t;
        let (Some(seq), Some(op)) = (notice.q, notice.o.as_deref()) else {
            return Some(FeedEvent::Resync);
        };
        let op = match op {
            "a" => EntryOp::Append,
            "r" => EntryOp::Rm,
            "s" => EntryOp::Restore,
            _ => return Some(FeedEvent::Resync),
        };
        let entry = if notice.reread {
            match self.reread_entry(&table, &parent, seq).await {
                Ok(entry) => entry,
                Err(_) => return Some(FeedEvent::Resync),
            }
        } else {
            notice.e.map(|e| RawEntry {
                parent: parent.clone(),
                seq,
                value: Payload::versioned(e.v, e.s),
                created_at: e.c,
                author: e.b.map(Arc::from),
                deleted_at: e.d,
            })
        };
        Some(FeedEvent::Entry(EntryChange {
            table,
            parent,
            seq,
            op,
            entry,
        }))
    }

    async fn reread_entry(&self, table: &str, parent: &str, seq: u64) -> Result<Option<RawEntry>> {
        let core = &self.core;
        let seq_param = i64::try_from(seq).unwrap_or(i64::MAX);
        core.run(Access::Read, "re-reading a changed entry", |c| async move {
            let row = c
                .query_opt(&core.stmts.log.get, &[&table, &parent, &seq_param])
                .await
                .map_err(|e| super::errors::pg_error(core.target(), "re-reading an entry", e))?;
            match row {
                Some(row) => super::log::read_entry(&row, 0, parent, core.target()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn reread(&self, table: &str, key: &str) -> Result<Option<RawRow>> {
        let core = &self.core;
        core.run(Access::Read, "re-reading a changed row", |c| async move {
            let row = c
                .query_opt(&core.stmts.get, &[&table, &key])
                .await
                .map_err(|e| super::errors::pg_error(core.target(), "re-reading a row", e))?;
            match row {
                Some(row) => read_row(&row, 0, key.to_owned(), core.target()),
                None => Ok(None),
            }
        })
        .await
    }
}

/// A notification's payload, as the statements in `sql` build it: a row's
/// change (with `k`) or a log entry's (with `p`, `q` and `o`).
#[derive(Deserialize)]
struct Notice {
    /// Table.
    t: String,
    /// Key (a row's change).
    #[serde(default)]
    k: String,
    /// Parent (a log entry's change).
    #[serde(default)]
    p: Option<String>,
    /// The entry's seq.
    #[serde(default)]
    q: Option<u64>,
    /// What happened to the entry: `a` append, `r` rm, `s` restore.
    #[serde(default)]
    o: Option<String>,
    /// The entry after the change (none when removed, or with `reread`).
    #[serde(default)]
    e: Option<NoticeEntry>,
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
    /// The value's schema version (absent from older processes: 1).
    #[serde(default = "first_schema")]
    s: u32,
}

#[derive(Deserialize)]
struct NoticeEntry {
    /// The value's JSON text.
    v: String,
    c: i64,
    b: Option<String>,
    d: Option<i64>,
    s: u32,
}

fn first_schema() -> u32 {
    1
}

/// Milliseconds since the epoch, for `Disconnected { since }`.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// 16 hex digits no other check is likely to use.
fn new_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_i64(now_ms());
    format!("{:016x}", hasher.finish())
}
