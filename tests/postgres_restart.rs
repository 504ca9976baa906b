//! A PostgreSQL server that goes down and comes back: calls fail with
//! BACKEND (no panic, no hang) while it is down, the change feed says
//! RESYNC, and the same store works again once the server is back.
//!
//! This stops the shared test server, so it lives alone in its own test
//! binary (cargo runs test binaries one after another) and has one test.
//! It needs the variables scripts/test.sh exports for the server it starts
//! (`KV_TEST_PG_CTL`, `KV_TEST_PG_DATA`, `KV_TEST_PG_RUN_AS`,
//! `KV_TEST_PG_OPTS`, `KV_TEST_PG_LOG`).

#[path = "support/pg.rs"]
mod pg;
#[path = "support/pg_server.rs"]
mod pg_server;

use std::time::{Duration, Instant};

use kv_runtime::backend::FeedEvent;
use kv_runtime::{Ctx, ErrorCode, Kv};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pgFlag", keys = [beta])]
struct Flag {
    on: bool,
}

/// Hang detection only: each call must return within this, fast or not.
const BOUND: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {BOUND:?}"))
}

async fn next_event(feed: &mut kv_runtime::backend::FeedReceiver) -> FeedEvent {
    bounded("the change feed", feed.recv())
        .await
        .expect("the feed stays open")
}

#[test]
fn the_store_fails_cleanly_while_the_server_is_down_and_recovers() {
    let Some(url) = pg::server_url() else { return };
    let Some(server) = pg_server::Server::from_env() else {
        // server_url() passed, so the URL is set, but not by scripts/test.sh.
        let ci = std::env::var("CI").unwrap_or_default();
        assert!(
            ci.is_empty() || ci == "false" || ci == "0",
            "KV_TEST_PG_CTL and friends are not set in CI: run scripts/test.sh"
        );
        pg::loud(
            "*** SKIPPED: the server restart test needs KV_TEST_PG_CTL, KV_TEST_PG_DATA, \
             KV_TEST_PG_RUN_AS, KV_TEST_PG_OPTS and KV_TEST_PG_LOG (scripts/test.sh sets them) ***",
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = pg::fresh_store(&url).await;
        let t = store.table::<Flag>();
        let ctx = Ctx::internal();
        let mut feed = store.backend().feed().subscribe();
        let before = t.set(&ctx, FlagKey::Beta, Flag { on: true }).await.unwrap();
        match next_event(&mut feed).await {
            FeedEvent::Change(c) => {
                assert_eq!(c.row.map(|r| r.updated_at), Some(before.updated_at))
            }
            FeedEvent::Resync => panic!("no resync while the server is up"),
        }

        let mut down = server.stop();

        let err = bounded("get while down", t.get(FlagKey::Beta))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Backend, "{err}");
        assert!(err.is_retryable());
        let err = bounded(
            "set while down",
            t.set(&ctx, FlagKey::Beta, Flag { on: false }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Backend, "{err}");
        assert_eq!(
            next_event(&mut feed).await,
            FeedEvent::Resync,
            "losing the listening connection is a resync"
        );

        down.start();

        // The pool replaces its broken connections: the store works again.
        let deadline = Instant::now() + BOUND;
        let row = loop {
            match bounded("get after restart", t.get(FlagKey::Beta)).await {
                Ok(row) => break row,
                Err(e) => {
                    assert_eq!(e.code(), ErrorCode::Backend, "{e}");
                    assert!(Instant::now() < deadline, "the store did not recover: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert_eq!(row, Some(before.clone()), "the failed set changed nothing");
        assert_eq!(
            next_event(&mut feed).await,
            FeedEvent::Resync,
            "listening again is a resync too"
        );
        let after = t
            .set(&ctx, FlagKey::Beta, Flag { on: false })
            .await
            .unwrap();
        assert!(after.updated_at > before.updated_at);
        match next_event(&mut feed).await {
            FeedEvent::Change(c) => {
                assert_eq!(c.key, "beta");
                assert_eq!(c.row.map(|r| r.updated_at), Some(after.updated_at));
            }
            FeedEvent::Resync => panic!("one resync per reconnection"),
        }
    });
}
