//! Each write statement of the PostgreSQL backend while another
//! transaction changes its row: the other transaction holds the row's lock
//! with its change uncommitted, the kv call starts (its statement's
//! snapshot still shows the row as it was) and waits for the lock, then
//! the change commits. The call must act on the row as committed, as if
//! it had run after the change: check and write agree on one version.
//!
//! Found by the linearizability tests (a `restore` racing an `rm` failed
//! with "restore locked a deleted row but did not update it"); the other
//! interleavings are here so that every write statement is held to it.

mod support;

use kv_runtime::{Ctx, ErrorCode, Kv, Row, Store};
use serde::{Deserialize, Serialize};
use support::pg;
use support::wait::bounded;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "raced", soft_delete)]
struct Raced {
    n: u32,
}

/// What the other transaction does to row `k`, in SQL: a soft delete, or
/// a revival, each bumping the version by one as kv would.
const SOFT_RM: &str =
    "UPDATE kv_rows SET deleted_at = updated_at + 1, updated_at = updated_at + 1 \
     WHERE tbl = 'raced' AND key = 'k'";
const REVIVE: &str = "UPDATE kv_rows SET deleted_at = NULL, updated_at = updated_at + 1 \
     WHERE tbl = 'raced' AND key = 'k'";
const OVERWRITE: &str = "UPDATE kv_rows SET value = '{\"n\": 99}', updated_at = updated_at + 1 \
     WHERE tbl = 'raced' AND key = 'k'";

/// A database with row `k` (`n: 1`), live or soft-deleted; its version.
async fn setup(live: bool) -> (String, Store, i64) {
    let server = pg::server_url().expect("checked by the caller");
    let db = pg::fresh_database(&server).await;
    let store = Store::open(&db).await.unwrap();
    let t = store.table::<Raced>();
    let ctx = Ctx::internal();
    let mut row = t.set(&ctx, "k".to_owned(), Raced { n: 1 }).await.unwrap();
    if !live {
        assert!(t.rm(&ctx, "k".to_owned()).await.unwrap());
        row.updated_at = stored_version(&t).await;
    }
    (db, store, row.updated_at)
}

/// The stored version of `k`, live or not.
async fn stored_version(t: &kv_runtime::Table<Raced>) -> i64 {
    t.store()
        .backend()
        .scan("raced", None, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key == "k")
        .expect("row k is stored")
        .updated_at
}

/// Runs `call` while another transaction holds row `k` with `change`
/// uncommitted: once the call waits for the lock, the change commits.
async fn interleaved<T: Send + 'static>(
    db: &str,
    change: &str,
    call: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    let mut other = pg::admin(db).await;
    let tx = other.transaction().await.unwrap();
    assert_eq!(tx.execute(change, &[]).await.unwrap(), 1, "{change}");
    let call = tokio::spawn(call);
    let watcher = pg::admin(db).await;
    let name = db.rsplit('/').next().unwrap().to_owned();
    bounded("the call waiting for the row lock", async {
        loop {
            let row = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                     AND wait_event_type = 'Lock'",
                    &[&name],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    tx.commit().await.unwrap();
    bounded("the call after the commit", call).await.unwrap()
}

fn live(result: kv_runtime::Result<Row<Raced>>) -> Row<Raced> {
    let row = result.unwrap_or_else(|e| panic!("the call succeeds: {e}"));
    assert_eq!(row.deleted_at, None);
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_after_a_concurrent_rm_revives_the_row() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(true).await;
    let t = store.table::<Raced>();
    let restore = {
        let t = t.clone();
        async move { t.restore(&Ctx::internal(), "k".to_owned()).await }
    };
    let row = live(interleaved(&db, SOFT_RM, restore).await);
    // The rm made version v + 1; the restore revived it after that.
    assert!(row.updated_at > v + 1, "{row:?}");
    assert_eq!(row.value, Raced { n: 1 });
    assert_eq!(t.get("k".to_owned()).await.unwrap(), Some(row));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_after_a_concurrent_revival_returns_the_live_row() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(false).await;
    let t = store.table::<Raced>();
    let restore = {
        let t = t.clone();
        async move { t.restore(&Ctx::internal(), "k".to_owned()).await }
    };
    let row = live(interleaved(&db, REVIVE, restore).await);
    assert_eq!(
        row.updated_at,
        v + 1,
        "unchanged since the revival: {row:?}"
    );
    assert_eq!(t.get("k".to_owned()).await.unwrap(), Some(row));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_after_a_concurrent_rm_removes_nothing() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(true).await;
    let t = store.table::<Raced>();
    let rm = {
        let t = t.clone();
        async move { t.rm(&Ctx::internal(), "k".to_owned()).await }
    };
    assert!(!interleaved(&db, SOFT_RM, rm).await.unwrap());
    assert_eq!(stored_version(&t).await, v + 1, "deleted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_expecting_after_a_concurrent_write_conflicts() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(true).await;
    let t = store.table::<Raced>();
    let set = {
        let t = t.clone();
        async move {
            t.set_expecting(&Ctx::internal(), "k".to_owned(), Raced { n: 2 }, v)
                .await
        }
    };
    let err = interleaved(&db, OVERWRITE, set).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    match err {
        kv_runtime::Error::Conflict {
            current_updated_at, ..
        } => assert_eq!(current_updated_at, Some(v + 1)),
        other => panic!("{other}"),
    }
    assert_eq!(t.get("k".to_owned()).await.unwrap().unwrap().value.n, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_if_absent_after_a_concurrent_rm_revives_the_row() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(true).await;
    let t = store.table::<Raced>();
    let set = {
        let t = t.clone();
        async move {
            t.set_if_absent(&Ctx::internal(), "k".to_owned(), Raced { n: 3 })
                .await
        }
    };
    let row = live(interleaved(&db, SOFT_RM, set).await);
    assert!(row.updated_at > v + 1, "{row:?}");
    assert_eq!(row.value, Raced { n: 3 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_if_absent_after_a_concurrent_revival_conflicts() {
    if pg::server_url().is_none() {
        return;
    }
    let (db, store, v) = setup(false).await;
    let t = store.table::<Raced>();
    let set = {
        let t = t.clone();
        async move {
            t.set_if_absent(&Ctx::internal(), "k".to_owned(), Raced { n: 3 })
                .await
        }
    };
    let err = interleaved(&db, REVIVE, set).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    assert_eq!(
        t.get("k".to_owned()).await.unwrap().unwrap().updated_at,
        v + 1
    );
}
