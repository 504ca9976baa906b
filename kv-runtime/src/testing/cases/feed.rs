//! The change feed: every commit, in order.

use super::{admin, editor, note};
use crate::testing::schemas::*;
use crate::{Ctx, Store};

/// The change feed reports every committed change, in commit order, with
/// the row's state after it (none once no live row remains).
pub async fn change_feed_reports_commits_in_order(store: Store) {
    use crate::backend::FeedEvent;
    let mut feed = store.backend().feed().subscribe();
    let t = store.table::<Banner>();
    let notes = store.table::<Note>();
    let set = t
        .set(&admin(), BannerKey::Banner, Banner::new("a"))
        .await
        .unwrap();
    assert!(t.rm(&admin(), BannerKey::Banner).await.unwrap());
    let restored = t.restore(&admin(), BannerKey::Banner).await.unwrap();
    notes
        .set(&editor(), "n".to_owned(), note("n"))
        .await
        .unwrap();
    assert!(notes.rm(&editor(), "n".to_owned()).await.unwrap());
    // Refused and no-op writes publish nothing.
    assert!(t
        .set(&Ctx::anonymous(), BannerKey::Banner, Banner::new("x"))
        .await
        .is_err());
    assert!(!notes.rm(&editor(), "n".to_owned()).await.unwrap());
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.recv())
            .await
            .expect("the change arrives within 10 s")
            .expect("the feed stays open");
        match event {
            FeedEvent::Change(c) if c.table.starts_with("conformance") => seen.push(c),
            FeedEvent::Change(_) => {}
            FeedEvent::Resync => panic!("no resync expected on a healthy backend"),
            _ => {}
        }
    }
    let summary: Vec<(&str, &str, Option<i64>)> = seen
        .iter()
        .map(|c| {
            (
                c.table.as_str(),
                c.key.as_str(),
                c.row.as_ref().map(|r| r.updated_at),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("conformanceBanner", "banner", Some(set.updated_at)),
            ("conformanceBanner", "banner", None),
            ("conformanceBanner", "banner", Some(restored.updated_at)),
            (
                "conformanceNote",
                "n",
                seen[3].row.as_ref().map(|r| r.updated_at)
            ),
            ("conformanceNote", "n", None),
        ]
    );
    assert!(seen[3].row.is_some());
    assert_eq!(
        seen[2].row.as_ref().unwrap().value.json(),
        seen[0].row.as_ref().unwrap().value.json()
    );
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), feed.recv()).await;
    assert!(extra.is_err(), "nothing else was committed: {extra:?}");
}
