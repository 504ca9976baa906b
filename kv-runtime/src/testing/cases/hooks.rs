//! Hooks: before-hooks changing or refusing writes, after-hooks, panics, and hooks
//! running again when the row changed under them.

use super::admin;
use crate::testing::schemas::*;
use crate::{Ctx, ErrorCode, Store};

/// `before_set` can change the value (which is validated again) and
/// sees the previous row; `after_set` sees the stored row.
pub async fn before_set_hooks_change_values_and_see_previous(store: Store) {
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    let seen_previous: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let stored: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let seen_previous = Arc::clone(&seen_previous);
        t.before_set("shout", move |change| {
            let seen_previous = Arc::clone(&seen_previous);
            async move {
                tokio::task::yield_now().await;
                seen_previous
                    .lock()
                    .unwrap()
                    .push(change.previous.map(|r| r.value.message));
                let mut value = change.value;
                value.message = value.message.to_uppercase();
                Ok(value)
            }
        });
    }
    t.before_set("suffix", |change| async move {
        let mut value = change.value;
        value.message.push('!');
        Ok(value)
    });
    {
        let stored = Arc::clone(&stored);
        t.after_set("record", move |done| {
            let stored = Arc::clone(&stored);
            async move {
                stored.lock().unwrap().push(done.row.value.message);
                Ok(())
            }
        });
    }
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("hi"))
        .await
        .unwrap();
    assert_eq!(row.value.message, "HI!");
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "HI!"
    );
    t.set(&admin(), BannerKey::Banner, Banner::new("again"))
        .await
        .unwrap();
    assert_eq!(
        *seen_previous.lock().unwrap(),
        [None, Some("HI!".to_owned())]
    );
    assert_eq!(*stored.lock().unwrap(), ["HI!", "AGAIN!"]);
    // A hook output breaking the constraints is refused like any value.
    t.before_set("blank", |change| async move {
        let mut value = change.value;
        value.message = "x".repeat(300);
        Ok(value)
    });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("z"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(
        t.get(BannerKey::Banner)
            .await
            .unwrap()
            .unwrap()
            .value
            .message,
        "AGAIN!"
    );
}

/// A refusing hook fails the write with REJECTED naming it; nothing changes.
pub async fn hooks_can_refuse_writes_and_deletes(store: Store) {
    use crate::hooks::HookError;
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("keep"))
        .await
        .unwrap();
    t.before_set("no-swearing", |change| async move {
        if change.value.message.contains("darn") {
            Err(HookError::new("keep it civil"))
        } else {
            Ok(change.value)
        }
    });
    t.before_rm("pinned", |change| async move {
        if change.row.key == BannerKey::Banner {
            Err(HookError::new("the banner is pinned"))
        } else {
            Ok(())
        }
    });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("darn"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    let text = err.to_string();
    assert!(
        text.contains("no-swearing") && text.contains("keep it civil"),
        "{text}"
    );
    let err = t.rm(&admin(), BannerKey::Banner).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert!(err.to_string().contains("pinned"));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    // Other keys may still be removed; rm of a missing key calls no hook.
    t.set(&admin(), BannerKey::Maintenance, Banner::new("m"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Maintenance).await.unwrap());
    assert!(!t.rm(&admin(), BannerKey::Alpha).await.unwrap());
}

/// A panicking hook fails only its own write (INTERNAL); the store goes on;
/// after-hooks that fail or panic leave the committed write standing.
pub async fn panicking_hooks_do_not_poison_the_store(store: Store) {
    use crate::hooks::HookError;
    let t = store.table::<Banner>();
    t.before_set("explodes-on-boom", |change| async move {
        if change.value.message == "boom" {
            panic!("hook exploded");
        }
        Ok(change.value)
    });
    t.after_set("always-fails", |_| async {
        Err(HookError::new("mail server down"))
    });
    t.after_rm("always-panics", |_| async { panic!("after_rm exploded") });
    let err = t
        .set(&admin(), BannerKey::Banner, Banner::new("boom"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.to_string().contains("hook exploded"));
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("fine"))
        .await
        .unwrap();
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
    t.set(&admin(), BannerKey::Maintenance, Banner::new("still works"))
        .await
        .unwrap();
}

/// A `before_set` hook that saw no row, while another writer creates
/// the row between the hook and the write: the write does not overwrite
/// the row unseen; the hook runs again and sees it as `previous`.
pub async fn before_set_hooks_rerun_when_the_row_appears_meanwhile(store: Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    let runs = Arc::new(AtomicUsize::new(0));
    // (value being written, previous seen) per run.
    type Seen = Vec<(String, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    {
        let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), t.clone());
        t.before_set("record", move |change| {
            let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), other.clone());
            async move {
                seen.lock().unwrap().push((
                    change.value.message.clone(),
                    change.previous.as_ref().map(|r| r.value.message.clone()),
                ));
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer gets in between this hook and the write.
                    other
                        .set(&Ctx::internal(), BannerKey::Banner, Banner::new("sneaky"))
                        .await
                        .map_err(|e| crate::hooks::HookError::new(e.to_string()))?;
                }
                Ok(change.value)
            }
        });
    }
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("outer"))
        .await
        .unwrap();
    assert_eq!(row.value.message, "outer");
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), Some(row));
    let seen = seen.lock().unwrap().clone();
    let outer: Vec<Option<String>> = seen
        .iter()
        .filter(|(value, _)| value == "outer")
        .map(|(_, previous)| previous.clone())
        .collect();
    assert_eq!(
        outer,
        [None, Some("sneaky".to_owned())],
        "the hook must run again and see the row created meanwhile"
    );
}

/// A `before_rm` hook that approved one version of the row, while another
/// writer changes the row before the delete: the delete does not take the
/// changed row unseen; the hook runs again, sees the new row, and only
/// then is it deleted.
pub async fn before_rm_hooks_rerun_when_the_row_changes_meanwhile(store: Store) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let t = store.table::<Banner>();
    t.set(&admin(), BannerKey::Banner, Banner::new("approved"))
        .await
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let deleted: Arc<Mutex<Vec<String>>> = Arc::default();
    {
        let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), t.clone());
        t.before_rm("record", move |change| {
            let (runs, seen, other) = (Arc::clone(&runs), Arc::clone(&seen), other.clone());
            async move {
                seen.lock().unwrap().push(change.row.value.message.clone());
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Another writer changes the row after this approval.
                    other
                        .set(&Ctx::internal(), BannerKey::Banner, Banner::new("changed"))
                        .await
                        .map_err(|e| crate::hooks::HookError::new(e.to_string()))?;
                }
                Ok(())
            }
        });
    }
    {
        let deleted = Arc::clone(&deleted);
        t.after_rm("record", move |change| {
            let deleted = Arc::clone(&deleted);
            async move {
                deleted.lock().unwrap().push(change.row.value.message);
                Ok(())
            }
        });
    }
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        ["approved", "changed"],
        "the hook must run again and see the changed row"
    );
    assert_eq!(*deleted.lock().unwrap(), ["changed"]);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap(), None);
}
