//! Two SQLite backends on one file (as two processes would have): they share
//! rows, versions and the rate limiter's window; each one's change feed
//! reports its own writes only, as documented.

mod support;

use std::time::Duration;

use kv_runtime::backend::sqlite::{Durability, SqliteBackend, SqliteOptions};
use kv_runtime::backend::{Backend, FeedEvent, RateDecision};
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use support::tempdir::TempDir;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "sharedFlag", keys = [beta], write_role = admin, soft_delete)]
struct Flag {
    on: bool,
}

fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

#[test]
fn two_backends_on_one_file_share_rows_versions_and_rate_limits() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let dir = TempDir::new("sqlite-shared");
            let path = dir.join("kv.db");
            let a = SqliteBackend::open(&path).await.expect("first opens");
            let b = SqliteBackend::open_with(
                &path,
                SqliteOptions::default()
                    .readers(1)
                    .durability(Durability::ProcessCrash),
            )
            .await
            .expect("second opens");
            assert_eq!(a.path(), b.path());
            let mut feed_a = a.feed().subscribe();
            let mut feed_b = b.feed().subscribe();
            let store_a = Store::with_backend(a);
            let store_b = Store::with_backend(b);
            let (ta, tb) = (store_a.table::<Flag>(), store_b.table::<Flag>());

            let row = ta
                .set(&admin(), FlagKey::Beta, Flag { on: true })
                .await
                .expect("set through a");
            let seen = tb.get(FlagKey::Beta).await.expect("get").expect("b sees a's row");
            assert_eq!(seen, row);

            // b writes with the version it read; a's stale version then conflicts.
            let newer = tb
                .set_expecting(&admin(), FlagKey::Beta, Flag { on: false }, row.updated_at)
                .await
                .expect("b's version is current");
            let err = ta
                .set_expecting(&admin(), FlagKey::Beta, Flag { on: true }, row.updated_at)
                .await
                .expect_err("a's version is stale");
            assert_eq!(err.code(), ErrorCode::Conflict);
            assert!(matches!(
                err,
                kv_runtime::Error::Conflict { current_updated_at: Some(at), .. } if at == newer.updated_at
            ));

            // Soft delete through one, restore through the other.
            assert!(ta.rm(&admin(), FlagKey::Beta).await.expect("rm"));
            assert_eq!(tb.get(FlagKey::Beta).await.expect("get"), None);
            let restored = tb.restore(&admin(), FlagKey::Beta).await.expect("restore");
            assert!(!restored.value.on);
            assert!(restored.updated_at > newer.updated_at);

            // One sliding window, whichever backend counts the hit.
            let (ba, bb) = (store_a.backend(), store_b.backend());
            let hit = |backend: &std::sync::Arc<dyn Backend>, now| {
                let backend = std::sync::Arc::clone(backend);
                async move {
                    let decision = backend
                        .rate_counter()
                        .consume("sharedFlag", "u1", kv_runtime::backend::Window { max: 2, window_ms: 1_000 }, 1, now)
                        .await
                        .expect("the rate limit counts");
                    match decision {
                        RateDecision::Admitted(_) => None,
                        RateDecision::Limited { retry_after_ms, .. } => Some(retry_after_ms),
                    }
                }
            };
            assert_eq!(hit(ba, 0).await, None);
            assert_eq!(hit(bb, 10).await, None);
            assert_eq!(hit(ba, 20).await, Some(980));
            assert_eq!(hit(bb, 30).await, Some(970));
            assert_eq!(hit(bb, 1_000).await, None);

            // Each feed reports the writes of its own backend only.
            let own = |event: Option<FeedEvent>| match event {
                Some(FeedEvent::Change(c)) => (c.key, c.row.is_some()),
                other => panic!("expected a change, got {other:?}"),
            };
            let next = |feed: &mut kv_runtime::backend::FeedReceiver| match feed.try_recv() {
                kv_runtime::backend::TryRecv::Event(event) => Some(event),
                _ => None,
            };
            assert_eq!(own(next(&mut feed_a)), ("beta".to_owned(), true)); // a's set
            assert_eq!(own(next(&mut feed_a)), ("beta".to_owned(), false)); // a's rm
            assert!(next(&mut feed_a).is_none(), "b's writes are not in a's feed");
            assert_eq!(own(next(&mut feed_b)), ("beta".to_owned(), true)); // b's set
            assert_eq!(own(next(&mut feed_b)), ("beta".to_owned(), true)); // b's restore
            assert!(next(&mut feed_b).is_none(), "a's writes are not in b's feed");

            // Reads keep working while the other backend writes.
            let writer = {
                let tb = tb.clone();
                tokio::spawn(async move {
                    for i in 0..20 {
                        tb.set(&admin(), FlagKey::Beta, Flag { on: i % 2 == 0 })
                            .await
                            .expect("set");
                    }
                })
            };
            for _ in 0..20 {
                assert!(ta.get(FlagKey::Beta).await.expect("get").is_some());
            }
            tokio::time::timeout(Duration::from_secs(30), writer)
                .await
                .expect("the writer finishes")
                .expect("the writer does not panic");
        });
}
