//! A server that stops answering without going away (its processes paused
//! with SIGSTOP) costs each call its deadline, not a hang: BACKEND at
//! `op_timeout`, saying a write may or may not have been applied; the
//! store works again once it resumes. And while the change feed's
//! connection is lost (the server stopped), health says `Disconnected`.
//!
//! Each test pauses or stops a private server of its own (see
//! support/pg_instance.rs), which is always resumed and stopped at the
//! end, even when an assertion fails. Needs scripts/test.sh's variables.

mod support;

use std::time::Duration;
use support::pg_instance;

use kv_runtime::backend::FeedHealth;
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use pg_instance::{Binaries, Instance};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pausedFlag", keys = [beta])]
struct Flag {
    on: bool,
}

/// Hang detection only: every call must come back within this.
const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {BOUND:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_gives_backend_at_the_deadline() {
    let Some(bins) = Binaries::from_env("the paused-server test") else {
        return;
    };
    let server = Instance::start(&bins, &[], &[]);
    let store = Store::open(&format!("{}?op_timeout=1s", server.url("postgres")))
        .await
        .unwrap();
    let t = store.table::<Flag>();
    let ctx = Ctx::internal();
    t.set(&ctx, FlagKey::Beta, Flag { on: true }).await.unwrap();
    assert!(t.get(FlagKey::Beta).await.unwrap().is_some());

    {
        let _paused = server.pause();
        let err = bounded("a get from a paused server", t.get(FlagKey::Beta))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Backend, "{err}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains("op_timeout"), "{err}");

        let err = bounded(
            "a set on a paused server",
            t.set(&ctx, FlagKey::Beta, Flag { on: false }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Backend, "{err}");
        assert!(
            err.to_string().contains("may or may not have been applied"),
            "{err}"
        );

        let health = bounded("a health check", store.health()).await;
        assert!(!health.backend.reachable, "{health:?}");
        assert!(
            health
                .backend
                .error
                .as_deref()
                .unwrap_or("")
                .contains("op_timeout"),
            "{health:?}"
        );
    } // resumed here, also when an assertion above fails

    // Connections cut short were dropped; new ones work.
    let mut answer = Err(None);
    for _ in 0..3 {
        match bounded("a get after resuming", t.get(FlagKey::Beta)).await {
            Ok(row) => {
                answer = Ok(row);
                break;
            }
            Err(e) => answer = Err(Some(e)),
        }
    }
    let row = answer
        .unwrap_or_else(|e| panic!("the store works again: {e:?}"))
        .expect("the row");
    // The write that timed out may or may not have landed.
    assert!(row.value == Flag { on: true } || row.value == Flag { on: false });
    t.set(&ctx, FlagKey::Beta, Flag { on: true }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_disconnected_while_the_feed_reconnects() {
    let Some(bins) = Binaries::from_env("the feed reconnection test") else {
        return;
    };
    let server = Instance::start(&bins, &[], &[]);
    let store = Store::open(&format!("{}?op_timeout=2s", server.url("postgres")))
        .await
        .unwrap();
    assert_eq!(store.health().await.backend.feed, FeedHealth::Verified);

    let mut stopped = server.stop();
    let mut seen = None;
    for _ in 0..600 {
        let feed = store.health().await.backend.feed;
        if matches!(feed, FeedHealth::Disconnected { .. }) {
            seen = Some(feed);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match seen {
        Some(FeedHealth::Disconnected { since, reason }) => {
            assert!(since > 0);
            assert!(!reason.is_empty());
        }
        other => panic!("the feed never reported Disconnected: {other:?}"),
    }
    // Still disconnected while the server is down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        store.health().await.backend.feed,
        FeedHealth::Disconnected { .. }
    ));

    stopped.start();
    let mut feed = None;
    for _ in 0..600 {
        feed = Some(store.health().await.backend.feed);
        if feed == Some(FeedHealth::Verified) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(feed, Some(FeedHealth::Verified), "verified again once back");
    store
        .table::<Flag>()
        .set(&Ctx::internal(), FlagKey::Beta, Flag { on: true })
        .await
        .expect("the store works again");
}
