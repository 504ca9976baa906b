//! Reads keep working while writes are stuck: with a row locked by an
//! outside transaction, writes pile up and fail one by one at
//! `lock_timeout` (retryable BACKEND, nothing written) while every public
//! `get` is answered from the read pool, which writes cannot take.

mod support;

use std::time::Duration;
use support::pg;

use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "poolBanner", keys = [banner], write_role = admin)]
struct Banner {
    message: String,
}

/// Hang detection only.
const BOUND: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_answered_while_writes_pile_up_behind_a_row_lock() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    // 12 writers, 3 write connections: four rounds of 1 s lock waits,
    // well within the 10 s deadline.
    let store = Store::open(&format!(
        "{db}?pool_size=3&read_pool_size=2&lock_timeout=1s&op_timeout=10s\
         &application_name=kv_pile"
    ))
    .await
    .unwrap();
    let t = store.table::<Banner>();
    let admin = Ctx::user("ada").with_role("admin");
    let before = t
        .set(
            &admin,
            BannerKey::Banner,
            Banner {
                message: "up".into(),
            },
        )
        .await
        .unwrap();

    let mut outside = pg::admin(&db).await;
    let tx = outside.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM kv_rows WHERE tbl = 'poolBanner' AND key = 'banner' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();

    let writes: Vec<_> = (0..12)
        .map(|i| {
            let t = t.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                t.set(
                    &admin,
                    BannerKey::Banner,
                    Banner {
                        message: format!("w{i}"),
                    },
                )
                .await
            })
        })
        .collect();

    // Wait until every write connection waits for the lock.
    let watcher = pg::admin(&db).await;
    let mut waiting = 0;
    for _ in 0..600 {
        waiting = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kv_pile' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if waiting == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(waiting, 3, "the write pool is saturated by waiting writes");

    // Every public read is answered meanwhile.
    for _ in 0..20 {
        let row = tokio::time::timeout(BOUND, t.get(BannerKey::Banner))
            .await
            .expect("a get returns")
            .expect("a get is answered while writes are stuck")
            .expect("the row");
        assert_eq!(row.value.message, "up");
    }
    let pending = writes.iter().filter(|w| !w.is_finished()).count();
    assert!(pending > 0, "the reads ran while writes were stuck");

    for write in writes {
        let err = tokio::time::timeout(BOUND, write)
            .await
            .expect("a write returns")
            .unwrap()
            .expect_err("a write behind the lock fails");
        assert_eq!(err.code(), ErrorCode::Backend, "{err}");
        assert!(err.is_retryable());
        let text = err.to_string();
        assert!(text.contains("lock_timeout"), "{text}");
        assert!(text.contains("nothing was written"), "{text}");
    }
    tx.rollback().await.unwrap();
    let row = t.get(BannerKey::Banner).await.unwrap().unwrap();
    assert_eq!(row.updated_at, before.updated_at, "no write landed");
    // The write pool works again.
    t.set(
        &admin,
        BannerKey::Banner,
        Banner {
            message: "after".into(),
        },
    )
    .await
    .unwrap();
}
