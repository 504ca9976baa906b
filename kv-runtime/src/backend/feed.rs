//! The change feed: every committed change, in commit order per key, to
//! every subscriber; and a resynchronisation signal when changes may have
//! been missed.
//!
//! A backend owns one [`ChangeFeed`], publishes each committed change on it
//! ([`ChangeFeed::publish`]) and announces possible loss
//! ([`ChangeFeed::resync`], e.g. after a lost database connection).
//! Subscribers ([`ChangeFeed::subscribe`]) read [`FeedEvent`]s from a
//! [`FeedReceiver`]: a subscriber that falls so far behind that events were
//! dropped receives [`FeedEvent::Resync`] in their place, so "re-read what
//! you hold" is part of the type, not a convention.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::RawRow;

/// How many events a subscriber may fall behind before it gets
/// [`FeedEvent::Resync`] instead of the events it missed.
pub const FEED_CAPACITY: usize = 4096;

/// One committed change, as the change feed delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The table.
    pub table: String,
    /// The key text.
    pub key: String,
    /// The row's state after the change: `None` when no live row remains
    /// (hard or soft delete, purge).
    pub row: Option<RawRow>,
}

/// An event of the change feed.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedEvent {
    /// A committed change. Per key, changes arrive in commit order.
    Change(Change),
    /// The feed may have missed changes (a lost connection, a subscriber
    /// that fell behind): re-read whatever you hold.
    Resync,
}

/// The sending side of a backend's change feed. Cheap to clone: clones
/// publish to the same subscribers.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    /// Events are shared, not copied, between subscribers: a follower
    /// looks at a change by reference and copies only what it delivers
    /// (ten thousand watchers of one key cost one event, not ten thousand).
    sender: broadcast::Sender<Arc<FeedEvent>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed::new()
    }
}

impl ChangeFeed {
    /// A feed with no subscribers yet.
    pub fn new() -> Self {
        ChangeFeed {
            sender: broadcast::channel(FEED_CAPACITY).0,
        }
    }

    /// Publishes a committed change of `key` in `table`: `row` is the row as
    /// now stored (a soft-deleted row is published as `None`, as is a
    /// removed one). Call it after the commit, in commit order per key.
    pub fn publish(&self, table: &str, key: &str, row: Option<&RawRow>) {
        self.send(FeedEvent::Change(Change {
            table: table.to_owned(),
            key: key.to_owned(),
            row: row.filter(|r| r.is_live()).cloned(),
        }));
    }

    /// Publishes an event as it is (a change built elsewhere, or a resync).
    pub fn send(&self, event: FeedEvent) {
        // No subscribers is not an error: nobody is watching.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Tells every subscriber that changes may have been missed.
    pub fn resync(&self) {
        crate::telemetry::feed_resync();
        self.send(FeedEvent::Resync);
    }

    /// A new subscription: every event published from now on.
    pub fn subscribe(&self) -> FeedReceiver {
        FeedReceiver {
            receiver: self.sender.subscribe(),
        }
    }

    /// How many subscriptions are alive.
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }
}

/// One subscription to a [`ChangeFeed`].
#[derive(Debug)]
pub struct FeedReceiver {
    receiver: broadcast::Receiver<Arc<FeedEvent>>,
}

/// What [`FeedReceiver::try_recv_shared`] found.
pub(crate) enum TryShared {
    Event(Arc<FeedEvent>),
    Empty,
    Closed,
}

/// What [`FeedReceiver::try_recv`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum TryRecv {
    /// The next event.
    Event(FeedEvent),
    /// Nothing is waiting now.
    Empty,
    /// The feed is closed: its backend is gone, nothing more will come.
    Closed,
}

impl FeedReceiver {
    /// The next event, waiting for it. `None` once the feed is closed (its
    /// backend was dropped). After falling behind, the next event is
    /// [`FeedEvent::Resync`].
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        self.recv_shared().await.map(Arc::unwrap_or_clone)
    }

    /// [`FeedReceiver::recv`], the event shared with the other subscribers.
    pub(crate) async fn recv_shared(&mut self) -> Option<Arc<FeedEvent>> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                crate::telemetry::feed_resync();
                Some(Arc::new(FeedEvent::Resync))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> TryRecv {
        match self.try_recv_shared() {
            TryShared::Event(event) => TryRecv::Event(Arc::unwrap_or_clone(event)),
            TryShared::Empty => TryRecv::Empty,
            TryShared::Closed => TryRecv::Closed,
        }
    }

    /// [`FeedReceiver::try_recv`], the event shared with the other
    /// subscribers.
    pub(crate) fn try_recv_shared(&mut self) -> TryShared {
        match self.receiver.try_recv() {
            Ok(event) => TryShared::Event(event),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                TryShared::Event(Arc::new(FeedEvent::Resync))
            }
            Err(broadcast::error::TryRecvError::Empty) => TryShared::Empty,
            Err(broadcast::error::TryRecvError::Closed) => TryShared::Closed,
        }
    }

    /// Discards every event waiting now (a full re-read follows, which
    /// covers them). Returns `false` when the feed is closed.
    pub fn drain(&mut self) -> bool {
        // Bounded, in case writers keep the channel busy: whatever arrives
        // after the re-read starts is ordered against it anyway.
        for _ in 0..2 * FEED_CAPACITY {
            match self.try_recv_shared() {
                TryShared::Event(_) => {}
                TryShared::Empty => return true,
                TryShared::Closed => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Payload;

    fn row(live: bool) -> RawRow {
        RawRow {
            key: "k".into(),
            value: Payload::from_json("1"),
            created_at: 1,
            updated_at: 1,
            deleted_at: (!live).then_some(1),
            updated_by: None,
        }
    }

    #[test]
    fn a_subscriber_that_falls_behind_gets_resync() {
        let feed = ChangeFeed::new();
        let mut rx = feed.subscribe();
        assert_eq!(feed.listeners(), 1);
        for _ in 0..FEED_CAPACITY + 1 {
            feed.publish("t", "k", Some(&row(true)));
        }
        assert_eq!(rx.try_recv(), TryRecv::Event(FeedEvent::Resync));
        assert!(matches!(
            rx.try_recv(),
            TryRecv::Event(FeedEvent::Change(_))
        ));
        assert!(rx.drain());
        assert_eq!(rx.try_recv(), TryRecv::Empty);
        drop(feed);
        assert_eq!(rx.try_recv(), TryRecv::Closed);
        assert!(!rx.drain());
    }

    #[test]
    fn soft_deleted_rows_are_published_as_gone() {
        let feed = ChangeFeed::new();
        let mut rx = feed.subscribe();
        feed.publish("t", "k", Some(&row(false)));
        let TryRecv::Event(FeedEvent::Change(change)) = rx.try_recv() else {
            panic!("a change was published");
        };
        assert_eq!(change.row, None);
    }
}
