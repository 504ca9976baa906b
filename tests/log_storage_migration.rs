//! Storage schema version 5 (logs, after history's 4) migrated from version 3, on SQLite and
//! PostgreSQL: a version 3 database opens, keeps its rows and rate-limit
//! counts, gains the log tables, and logs and quotas work on it.

mod support;

use kv_runtime::backend::sqlite::SCHEMA_VERSION;
use kv_runtime::{Ctx, Kv, ManualClock, Quota, Store};
use serde::{Deserialize, Serialize};
use support::tables::{Line, RACE_PARENT};
use support::tempdir::TempDir;
use support::{pg, sqlite};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "oldNote", write_role = public, rate_limit(max = 2, window = "1h"))]
struct OldNote {
    text: String,
}

/// A quota whose counts a version 3 database already holds (under the
/// scope a table of that name would use, `quota:` prefixed).
#[derive(kv_runtime::Quota)]
#[quota(name = "oldQuota", max = 3, window = "1h")]
struct OldQuota;

/// The instant the version 3 counts were made at.
const T: i64 = 1_800_000_000_000;

/// What must hold once a version 3 database was opened by this release.
async fn check_migrated(store: &Store) {
    let store = store.with_clock(ManualClock::new(T + 1_000));
    // The row written at version 3 reads.
    let notes = store.table::<OldNote>();
    let old = notes.get("old".to_owned()).await.unwrap().expect("kept");
    assert_eq!(old.value.text, "from v3");
    // The rate-limit count made at version 3 still counts (it is the same
    // quota primitive): one of two writes is left.
    let bo = Ctx::user("bo");
    notes
        .set(&bo, "new".to_owned(), OldNote { text: "a".into() })
        .await
        .unwrap();
    let err = notes
        .set(&bo, "new".to_owned(), OldNote { text: "b".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), kv_runtime::ErrorCode::RateLimited);
    let quota: Quota<OldQuota> = store.quota();
    assert_eq!(quota.check("ada").await.unwrap().used, 1);
    // Logs work.
    let log = store.log::<Line>();
    let parent = RACE_PARENT.to_owned();
    let line = |i| Line {
        writer: "migrated".into(),
        i,
    };
    let first = log
        .append(&Ctx::internal(), &parent, line(0))
        .await
        .unwrap();
    let second = log
        .append_idempotent(&Ctx::internal(), &parent, "k", line(1))
        .await
        .unwrap();
    assert_eq!((first.seq, second.seq), (1, 2));
    let again = log
        .append_idempotent(&Ctx::internal(), &parent, "k", line(9))
        .await
        .unwrap();
    assert_eq!(again, second);
    assert!(quota.reset("ada").await.unwrap());
}

#[test]
fn a_version_3_sqlite_database_gains_logs() {
    let dir = TempDir::new("sqlite-v3");
    let path = dir.join("kv.db");
    {
        // The schema exactly as version 3 left it.
        let (v1, v3) = (support::sqlite::SCHEMA_V1, support::sqlite::SCHEMA_V1_TO_V3);
        let conn = rusqlite::Connection::open(&path).expect("rusqlite creates it");
        conn.execute_batch(&format!(
            "{v1}{v3}
             INSERT INTO kv_meta (name, value) VALUES ('schema_version', 3);
             INSERT INTO kv_rows VALUES
                 ('oldNote', 'old', '{{\"text\":\"from v3\"}}', 5, 6, NULL, NULL, 1);
             INSERT INTO kv_rate VALUES ('oldNote', 'user:bo', {T});
             INSERT INTO kv_rate VALUES ('quota:oldQuota', 'ada', {T});"
        ))
        .expect("the version 3 schema");
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&sqlite::url(&path))
            .await
            .expect("a version 3 file opens");
        check_migrated(&store).await;
    });
    let conn = rusqlite::Connection::open(&path).expect("rusqlite opens it");
    let version: i64 = conn
        .query_row(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!((version, SCHEMA_VERSION), (5, 5));
    let last: i64 = conn
        .query_row(
            "SELECT last_seq FROM kv_log_parents WHERE tbl = 'raceLog' AND parent = 'room'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, 2);
    // Opening again changes nothing.
    runtime.block_on(async {
        drop(Store::open(&sqlite::url(&path)).await.expect("reopens"));
    });
}

#[tokio::test]
async fn a_version_3_postgres_database_gains_logs() {
    use kv_runtime::backend::postgres::{sql, PostgresBackend};
    let Some(url) = pg::server_url() else { return };
    let db = pg::fresh_database(&url).await;
    let admin = pg::admin(&db).await;
    admin.batch_execute(sql::CREATE_META).await.unwrap();
    // Steps 0 -> 3: the version 3 schema, never edited once released.
    for step in &sql::MIGRATIONS[..3] {
        admin.batch_execute(step).await.unwrap();
    }
    admin
        .batch_execute(&format!(
            "INSERT INTO kv_meta (name, value) VALUES ('schema_version', 3);
             INSERT INTO kv_rows VALUES
                 ('oldNote', 'old', '{{\"text\": \"from v3\"}}', 5, 6, NULL, NULL, 1);
             INSERT INTO kv_rate VALUES ('oldNote', 'user:bo', ARRAY[{T}]::bigint[], true);
             INSERT INTO kv_rate VALUES ('quota:oldQuota', 'ada', ARRAY[{T}]::bigint[], true);"
        ))
        .await
        .unwrap();
    let store = Store::open(&db).await.expect("a version 3 database opens");
    check_migrated(&store).await;
    let version: i64 = admin
        .query_one(
            "SELECT value FROM kv_meta WHERE name = 'schema_version'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((version, PostgresBackend::SCHEMA_VERSION), (5, 5));
    let last: i64 = admin
        .query_one(
            "SELECT last_seq FROM kv_log_parents WHERE tbl = 'raceLog' AND parent = 'room'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(last, 2);
    drop(Store::open(&db).await.expect("reopens"));
}
