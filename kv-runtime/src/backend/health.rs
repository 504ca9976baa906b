//! What a backend reports about itself, for health checks
//! ([`Store::health`](crate::Store::health)).

use std::time::Duration;

/// How a backend's change feed is doing: whether watchers and replicas can
/// trust it to bring them every change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedHealth {
    /// The feed lives in this process (memory, SQLite): it reports this
    /// process's own writes and cannot be cut off.
    InProcess,
    /// Connected, and the backend saw its own test notification come back:
    /// changes made by other processes arrive.
    Verified,
    /// Connected, but changes made elsewhere are not known to arrive (for
    /// example, a connection pooler in transaction mode swallows them).
    /// Watchers and replicas may serve stale state.
    Unverified {
        /// Why, and what to do.
        reason: String,
    },
    /// Not connected; reconnecting. Watchers and replicas resynchronise
    /// once it is back.
    Disconnected {
        /// Since when (ms since the epoch, the backend's clock).
        since: i64,
        /// The last error.
        reason: String,
    },
}

impl FeedHealth {
    /// Whether watchers and replicas can rely on the feed now.
    pub fn is_healthy(&self) -> bool {
        matches!(self, FeedHealth::InProcess | FeedHealth::Verified)
    }
}

/// A backend's answer to a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendHealth {
    /// The backend's name (`"memory"`, `"sqlite"`, `"postgres"`).
    pub backend: &'static str,
    /// Whether a trivial read succeeded just now.
    pub reachable: bool,
    /// How long that read took (`None` when it failed).
    pub round_trip: Option<Duration>,
    /// The change feed.
    pub feed: FeedHealth,
    /// The error of the read, when it failed.
    pub error: Option<String>,
}

impl BackendHealth {
    /// A backend that answered in `round_trip`, with its feed in `feed`.
    pub fn reachable(backend: &'static str, round_trip: Duration, feed: FeedHealth) -> Self {
        BackendHealth {
            backend,
            reachable: true,
            round_trip: Some(round_trip),
            feed,
            error: None,
        }
    }

    /// A backend whose check failed with `error`.
    pub fn unreachable(backend: &'static str, error: String, feed: FeedHealth) -> Self {
        BackendHealth {
            backend,
            reachable: false,
            round_trip: None,
            feed,
            error: Some(error),
        }
    }

    /// Whether the backend answers and its feed can be relied on.
    pub fn is_healthy(&self) -> bool {
        self.reachable && self.feed.is_healthy()
    }
}
