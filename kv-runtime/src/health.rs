//! Health checks: [`Store::health`].

use std::sync::{Mutex, PoisonError, Weak};

use crate::backend::BackendHealth;
use crate::replica::ReplicaStatus;
use crate::store::Store;

/// A store's answer to a health check, for load balancers, orchestrators
/// and dashboards: the backend, and every replica of the store still alive.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// The backend: reachable, its round trip, its change feed.
    pub backend: BackendHealth,
    /// Every replica started on this store and not yet dropped.
    pub replicas: Vec<ReplicaHealth>,
}

impl Health {
    /// Whether the backend answers, its feed can be relied on, and every
    /// replica follows it in sync.
    pub fn is_healthy(&self) -> bool {
        self.backend.is_healthy()
            && self
                .replicas
                .iter()
                .all(|r| r.status.in_sync && r.status.following)
    }
}

/// One replica's part of [`Health`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaHealth {
    /// The replica's table.
    pub table: &'static str,
    /// How current it is.
    pub status: ReplicaStatus,
}

/// What a store knows of a replica: enough to report on it.
pub(crate) trait ReplicaProbe: Send + Sync {
    fn table(&self) -> &'static str;
    fn status(&self) -> ReplicaStatus;
}

/// The replicas of a store, held weakly: a dropped replica drops out.
#[derive(Default)]
pub(crate) struct Replicas(Mutex<Vec<Weak<dyn ReplicaProbe>>>);

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas").finish_non_exhaustive()
    }
}

impl Replicas {
    pub(crate) fn add(&self, replica: Weak<dyn ReplicaProbe>) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|r| r.strong_count() > 0);
        all.push(replica);
    }

    fn report(&self) -> Vec<ReplicaHealth> {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|r| r.strong_count() > 0);
        all.iter()
            .filter_map(Weak::upgrade)
            .map(|r| ReplicaHealth {
                table: r.table(),
                status: r.status(),
            })
            .collect()
    }
}

impl Store {
    /// Checks the store: the backend with a trivial read (and its round
    /// trip), the state of its change feed, and how current each live
    /// replica of this store is. Never fails: what is wrong is in the
    /// answer ([`Health::is_healthy`]).
    pub async fn health(&self) -> Health {
        Health {
            backend: self.backend.health().await,
            replicas: self.replicas.report(),
        }
    }
}
