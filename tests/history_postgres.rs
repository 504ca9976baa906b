//! History on PostgreSQL in a schema of kv's own (`kv_schema`) and with
//! unnamed statements (`prepared_statements=off`, as behind a
//! transaction-mode pooler): every history statement names its schema,
//! and each takes the parameters it declares.

mod support;

use std::time::Duration;

use kv_runtime::{Ctx, HistoryOp, ManualClock, PageRequest, Store};
use support::pg;
use support::tables::{recorded, Recorded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_in_its_own_schema_with_unnamed_statements() {
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Store::open(&format!("{db}?kv_schema=app_kv&prepared_statements=off"))
        .await
        .expect("opens")
        .with_clock(clock.clone());
    let t = store.table::<Recorded>();
    let ctx = Ctx::internal();
    let k = "k".to_owned();
    let first = t.set(&ctx, &k, recorded("a", 1)).await.unwrap();
    t.set(&ctx, &k, recorded("a", 2)).await.unwrap();
    assert!(t.rm(&ctx, &k).await.unwrap());
    t.restore(&ctx, &k).await.unwrap();
    let back = t.revert(&ctx, &k, first.updated_at).await.unwrap();
    assert_eq!(back.value, recorded("a", 1));
    assert!(t.rm(&ctx, &k).await.unwrap());
    clock.advance(Duration::from_secs(3600));
    assert_eq!(t.purge(Duration::from_secs(60)).await.unwrap(), 1);
    let page = t.history(&ctx, &k, PageRequest::first(10)).await.unwrap();
    let ops: Vec<HistoryOp> = page.entries.iter().map(|e| e.op).collect();
    assert_eq!(
        ops,
        [
            HistoryOp::Purge,
            HistoryOp::Rm,
            HistoryOp::Set,
            HistoryOp::Restore,
            HistoryOp::Rm,
            HistoryOp::Set,
            HistoryOp::Set
        ]
    );
    let admin = pg::admin(&db).await;
    let records: i64 = admin
        .query_one("SELECT count(*) FROM app_kv.kv_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(records, 7);
    let elsewhere: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'kv_history' \
             AND schemaname <> 'app_kv'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(elsewhere, 0, "kv_history lives in kv's schema only");
}
