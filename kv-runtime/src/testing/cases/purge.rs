//! Purge: removing rows soft-deleted longer ago than the retention.

use super::{admin, clocked, T0};
use crate::testing::schemas::*;
use crate::{ErrorCode, Store};

/// `purge` removes exactly the rows soft-deleted before the cut-off.
pub async fn purge_removes_only_old_soft_deleted_rows(store: Store) {
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    for k in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        t.set(&admin(), k, Banner::new(k.as_str())).await.unwrap();
    }
    assert!(t.rm(&admin(), BannerKey::Alpha).await.unwrap()); // deleted at T0
    clock.set(T0 + 10_000);
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap()); // deleted at T0 + 10s
    let purge = |deleted_before| crate::backend::Purge {
        deleted_before,
        now: deleted_before,
        updated_by: None,
        history: None,
    };
    let purged = store
        .backend()
        .purge("conformanceBanner", purge(T0 + 5_000))
        .await
        .unwrap();
    let keys: Vec<&str> = purged.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["alpha"]);
    let err = t.restore(&admin(), BannerKey::Alpha).await.unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::NotFound,
        "a purged row is gone for good"
    );
    t.restore(&admin(), BannerKey::Beta).await.unwrap();
    assert!(t.get(BannerKey::Gamma).await.unwrap().is_some());
    assert!(store
        .backend()
        .purge("conformanceBanner", purge(T0 + 60_000))
        .await
        .unwrap()
        .is_empty());
}

/// `purge` removes rows soft-deleted longer ago than the retention; the
/// background task does the same on its own; bad retentions are refused.
pub async fn purge_honours_retention_and_runs_in_background(store: Store) {
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let t = store.table::<Banner>();
    for k in [BannerKey::Alpha, BannerKey::Beta, BannerKey::Gamma] {
        t.set(&admin(), k, Banner::new("x")).await.unwrap();
    }
    assert!(t.rm(&admin(), BannerKey::Alpha).await.unwrap());
    clock.advance(Duration::from_secs(3_600));
    assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
    clock.advance(Duration::from_secs(60));
    // Alpha was deleted 61 minutes ago, Beta 1 minute ago.
    assert_eq!(t.purge(Duration::from_secs(30 * 60)).await.unwrap(), 1);
    assert_eq!(
        t.restore(&admin(), BannerKey::Alpha)
            .await
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    assert_eq!(t.purge(Duration::from_secs(30 * 60)).await.unwrap(), 0);
    for bad in [
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_secs(200 * 365 * 86_400),
    ] {
        assert_eq!(t.purge(bad).await.unwrap_err().code(), ErrorCode::Config);
        assert_eq!(
            t.spawn_purge(bad, Duration::from_secs(1))
                .unwrap_err()
                .code(),
            ErrorCode::Config
        );
    }
    // The background task purges Beta once it is old enough.
    clock.advance(Duration::from_secs(3_600));
    let task = t
        .spawn_purge(Duration::from_secs(30 * 60), Duration::from_millis(5))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match t.restore(&admin(), BannerKey::Beta).await {
            Err(e) if e.code() == ErrorCode::NotFound => break,
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => {
                // Not purged yet: put it back as it was and wait.
                assert!(t.rm(&admin(), BannerKey::Beta).await.unwrap());
                clock.advance(Duration::from_secs(3_600));
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the background purge never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(task);
    assert!(
        t.get(BannerKey::Gamma).await.unwrap().is_some(),
        "live rows are untouched"
    );
}
