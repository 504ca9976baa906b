//! `Store::health`: the backend's round trip and feed, and each live
//! replica, on the in-process backends (PostgreSQL's feed verification is
//! tested with the server).

mod support;

use kv_runtime::backend::FeedHealth;
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};
use support::tempdir::TempDir;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "healthFlags", keys = [beta], write_role = admin)]
struct Flags {
    on: bool,
}

#[tokio::test]
async fn health_reports_the_backend_and_each_live_replica() {
    let store = Store::memory();
    let health = store.health().await;
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(health.backend.backend, "memory");
    assert_eq!(health.backend.feed, FeedHealth::InProcess);
    assert!(health.replicas.is_empty());

    let t = store.table::<Flags>();
    t.set(&Ctx::internal(), FlagsKey::Beta, Flags { on: true })
        .await
        .unwrap();
    let replica = t.replica().await.unwrap();
    let health = store.health().await;
    assert_eq!(health.replicas.len(), 1);
    assert_eq!(health.replicas[0].table, "healthFlags");
    assert!(health.replicas[0].status.in_sync);
    assert!(health.is_healthy());
    // A clone of the store reports the same replicas.
    assert_eq!(store.clone().health().await.replicas.len(), 1);

    drop(replica);
    // The follower task stops soon after the last clone is dropped.
    for _ in 0..200 {
        if store.health().await.replicas.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("a dropped replica is still reported");
}

#[tokio::test]
async fn sqlite_health_reads_the_file() {
    let dir = TempDir::new("health");
    let store = support::sqlite::store_in(&dir).await;
    let health = store.health().await;
    assert!(health.backend.reachable, "{health:?}");
    assert!(health.backend.round_trip.is_some());
    assert_eq!(health.backend.feed, FeedHealth::InProcess);
    drop(store);
}
