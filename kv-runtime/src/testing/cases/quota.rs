//! Quotas: the backend's quota primitive (peek, consume n, record, reset)
//! and the typed `Quota` on top.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::clocked;
use crate::backend::{RateDecision, Usage, Window};
use crate::hooks::HookError;
use crate::testing::schemas::*;
use crate::{Error, ErrorCode, Store};

const W: Window = Window {
    max: 3,
    window_ms: 1_000,
};

/// `consume` of `n` admits only when all `n` fit and says when they will;
/// `record` counts past the limit; `peek` counts nothing; `reset` forgets.
pub async fn quota_primitive_consumes_records_peeks_and_resets(store: Store) {
    let c = store.backend().rate_counter();
    let s = "conformanceQuotaScope";
    let peek = |now| async move { c.peek(s, "o", W, now).await.unwrap() };
    assert_eq!(peek(0).await, Usage::default());
    assert_eq!(
        c.consume(s, "o", W, 2, 100).await.unwrap(),
        RateDecision::Admitted(Usage {
            used: 2,
            oldest: Some(100),
            full_until: None
        })
    );
    // Two more do not fit until the first use leaves, at 1100.
    assert_eq!(
        c.consume(s, "o", W, 2, 200).await.unwrap(),
        RateDecision::Limited {
            retry_after_ms: 900,
            usage: Usage {
                used: 2,
                oldest: Some(100),
                full_until: None
            }
        }
    );
    assert_eq!(peek(200).await.used, 2, "a refusal counts nothing");
    // One does.
    let full = Usage {
        used: 3,
        oldest: Some(100),
        full_until: Some(1_100),
    };
    assert_eq!(
        c.consume(s, "o", W, 1, 300).await.unwrap(),
        RateDecision::Admitted(full)
    );
    assert_eq!(peek(300).await, full);
    // Recorded uses count past the limit: the window must then drop below
    // max, which takes until the third oldest (at 300) leaves.
    let over = c.record(s, "o", W, 2, 400).await.unwrap();
    assert_eq!(over.used, 5);
    assert_eq!(over.full_until, Some(1_300));
    match c.consume(s, "o", W, 1, 1_150).await.unwrap() {
        RateDecision::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 150),
        other => panic!("the window holds 3 until 1300: {other:?}"),
    }
    // The window slides: at 1400 only the uses at 400 remain.
    assert_eq!(peek(1_400).await.used, 0);
    assert_eq!(peek(1_399).await.used, 2);
    // Reset forgets the bucket, and only it.
    c.consume(s, "other", W, 1, 1_399).await.unwrap();
    assert!(c.reset(s, "o").await.unwrap());
    assert!(!c.reset(s, "o").await.unwrap());
    assert_eq!(peek(1_399).await.used, 0);
    assert_eq!(c.peek(s, "other", W, 1_399).await.unwrap().used, 1);
}

/// Uses counted by a clock that has since stepped back still count until
/// they leave the window.
pub async fn quota_uses_from_a_clock_ahead_still_count(store: Store) {
    let c = store.backend().rate_counter();
    let s = "conformanceQuotaSkew";
    c.consume(s, "o", W, 2, 5_000).await.unwrap();
    // Another process's clock is a second behind.
    let usage = c.peek(s, "o", W, 4_000).await.unwrap();
    assert_eq!(usage.used, 2);
    match c.consume(s, "o", W, 2, 4_000).await.unwrap() {
        RateDecision::Limited { retry_after_ms, .. } => assert_eq!(retry_after_ms, 2_000),
        other => panic!("expected a refusal: {other:?}"),
    }
    assert!(matches!(
        c.consume(s, "o", W, 1, 4_000).await.unwrap(),
        RateDecision::Admitted(Usage { used: 3, .. })
    ));
}

/// Of many concurrent consumers of one bucket, exactly `max` are admitted.
pub async fn concurrent_consumes_admit_exactly_max(store: Store) {
    let (store, _clock) = clocked(&store);
    let votes = store.quota::<Votes>();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let votes = votes.clone();
            tokio::spawn(async move { votes.consume("ballot-box").await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.expect("no panic") {
            Ok(_) => admitted += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::RateLimited, "{e}"),
        }
    }
    assert_eq!(admitted, 5);
    assert_eq!(votes.check("ballot-box").await.unwrap().remaining, 0);
}

/// The typed quota: `check` counts nothing and says what remains and when
/// a slot frees; `consume` and `consume_n` are refused over the limit with
/// `retry_after`; `record` counts anyway; `reset` frees the owner.
pub async fn quota_check_consume_record_reset(store: Store) {
    let (store, clock) = clocked(&store);
    let votes = store.quota::<Votes>();
    let fresh = votes.check("ada").await.unwrap();
    assert_eq!((fresh.used, fresh.remaining), (0, 5));
    assert_eq!((fresh.retry_after, fresh.oldest_expires_in), (None, None));
    let after = votes.consume("ada").await.unwrap();
    assert_eq!((after.used, after.remaining), (1, 4));
    assert_eq!(after.oldest_expires_in, Some(Duration::from_secs(3_600)));
    clock.advance(Duration::from_secs(600));
    let after = votes.consume_n("ada", 3).await.unwrap();
    assert_eq!(after.remaining, 1);
    // Two do not fit: they will when the first use leaves, in 50 minutes.
    match votes.consume_n("ada", 2).await {
        Err(Error::RateLimited { retry_after, table }) => {
            assert_eq!(table, "conformanceVotes");
            assert_eq!(retry_after, Duration::from_secs(3_000));
        }
        other => panic!("expected RATE_LIMITED, got {other:?}"),
    }
    assert_eq!(votes.check("ada").await.unwrap().used, 4, "nothing counted");
    votes.consume("ada").await.unwrap();
    let full = votes.check("ada").await.unwrap();
    assert_eq!(full.remaining, 0);
    assert_eq!(full.retry_after, Some(Duration::from_secs(3_000)));
    // Recorded past the limit: the next slot frees when the window drops
    // below five, after the use at +10 min leaves.
    let over = votes.record("ada").await.unwrap();
    assert_eq!((over.used, over.remaining), (6, 0));
    assert_eq!(over.retry_after, Some(Duration::from_secs(3_600)));
    clock.advance(Duration::from_secs(3_000));
    let err = votes.consume("ada").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    clock.advance(Duration::from_secs(600));
    votes.consume("ada").await.unwrap();
    // Owners and quotas are independent; reset frees one owner.
    assert_eq!(votes.check("bo").await.unwrap().remaining, 5);
    assert!(votes.reset("ada").await.unwrap());
    assert_eq!(votes.check("ada").await.unwrap().remaining, 5);
    assert_eq!(votes.sweep().await.unwrap(), 0);
}

/// Owners are checked like keys; `n` must be 1 to max; typed owners and
/// windows of their own work.
pub async fn quota_owners_and_counts_are_checked(store: Store) {
    let (store, clock) = clocked(&store);
    let votes = store.quota::<Votes>();
    for bad in ["", "a\nb", &"x".repeat(257)] {
        let err = votes.consume(bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidKey, "{bad:?}");
    }
    for n in [0, 6] {
        let err = votes.consume_n("ada", n).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed, "{n}");
        let err = votes.record_n("ada", n).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed, "{n}");
    }
    assert_eq!(votes.check("ada").await.unwrap().used, 0);
    let per_user = store.quota::<PerUser>();
    for _ in 0..3 {
        per_user.consume(&UserId(7)).await.unwrap();
    }
    assert!(per_user.consume(&UserId(7)).await.is_err());
    per_user.consume(&UserId(8)).await.unwrap();
    // The same owner text in another quota is another owner.
    assert_eq!(votes.check("u7").await.unwrap().used, 0);
    clock.advance(Duration::from_secs(1));
    per_user.consume(&UserId(7)).await.unwrap();
}

/// Before-hooks may refuse (nothing is counted); after-hooks see the usage.
pub async fn quota_hooks_refuse_and_observe(store: Store) {
    let (store, _clock) = clocked(&store);
    let votes = store.quota::<Votes>();
    votes.before_consume("no-bots", |u| async move {
        if u.owner.starts_with("bot") {
            return Err(HookError::new("bots do not vote"));
        }
        Ok(())
    });
    let seen = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&seen);
    votes.after_consume("count", move |used| {
        let counter = Arc::clone(&counter);
        async move {
            counter.store(used.state.used * 10 + used.n, Ordering::SeqCst);
            Ok(())
        }
    });
    votes.before_record("never", |_| async { Err(HookError::new("no records")) });
    let recorded = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&recorded);
    votes.after_record("never-runs", move |_| {
        let r = Arc::clone(&r);
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let err = votes.consume("bot-7").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert_eq!(votes.check("bot-7").await.unwrap().used, 0);
    votes.consume_n("ada", 2).await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 22);
    let err = votes.record("ada").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert_eq!(recorded.load(Ordering::SeqCst), 0);
    assert_eq!(votes.check("ada").await.unwrap().used, 2);
}
