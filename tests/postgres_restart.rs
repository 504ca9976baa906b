//! A PostgreSQL server that goes down and comes back: calls fail with
//! BACKEND (no panic, no hang) while it is down, the change feed says
//! RESYNC, and the same store works again once the server is back.
//!
//! This stops the shared test server, so it lives alone in its own test
//! binary (cargo runs test binaries one after another) and has one test.
//! It needs the variables scripts/test.sh exports for the server it starts
//! (`KV_TEST_PG_CTL`, `KV_TEST_PG_DATA`, `KV_TEST_PG_RUN_AS`,
//! `KV_TEST_PG_OPTS`, `KV_TEST_PG_LOG`).

mod support;

use std::time::{Duration, Instant};

use kv_runtime::backend::FeedEvent;
use kv_runtime::{Ctx, ErrorCode, Kv};
use serde::{Deserialize, Serialize};
use support::pg;
use support::pg_server::Server;
use support::wait::{bounded, BOUND};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "pgFlag", keys = [beta])]
struct Flag {
    on: bool,
}

async fn next_event(feed: &mut kv_runtime::backend::FeedReceiver) -> FeedEvent {
    bounded("the change feed", feed.recv())
        .await
        .expect("the feed stays open")
}

#[test]
fn the_store_fails_cleanly_while_the_server_is_down_and_recovers() {
    let Some(url) = pg::server_url() else { return };
    // server_url() passed, so the URL is set, but maybe not by scripts/test.sh.
    let Some(server) = Server::from_env_or_skip() else {
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
            other => panic!("expected the change, got {other:?}"),
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
            other => panic!("expected the change after one resync, got {other:?}"),
        }
    });
}
