//! A PostgreSQL restart in the middle of a watch: the watcher and the
//! replica end on the right state, including a write made while their
//! store's listener is still reconnecting (which no notification can bring
//! them: only the resynchronisation can).
//!
//! This stops the shared test server, so it lives alone in its own test
//! binary (cargo runs test binaries one after another) with one test. It
//! needs the variables scripts/test.sh exports for the server it starts
//! (`KV_TEST_PG_CTL`, `KV_TEST_PG_DATA`, `KV_TEST_PG_RUN_AS`,
//! `KV_TEST_PG_OPTS`, `KV_TEST_PG_LOG`); run it with
//! `scripts/test.sh --test watch_postgres_restart`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kv_runtime::{ErrorCode, Store, WatchEvent};
use support::pg;
use support::pg_server::Server;
use support::tables::*;
use support::wait::{bounded, eventually};
use support::watch::next_ok;

/// What the watcher delivered, as a background task consumes it.
#[derive(Default)]
struct Log {
    states: Vec<WatchEvent<Banner>>,
    errors: Vec<ErrorCode>,
}

#[test]
fn watcher_and_replica_end_on_the_right_state_after_a_server_restart() {
    let Some(url) = pg::server_url() else { return };
    let Some(server) = Server::from_env_or_skip() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = pg::fresh_database(&url).await;
        let store = Store::open(&db).await.unwrap();
        let t = store.table::<Banner>();
        let first = t
            .set(&admin(), BannerKey::Banner, banner("before", 1))
            .await
            .unwrap();
        let mut w = t.watch(BannerKey::Banner).await.unwrap();
        let replica = t.replica().await.unwrap();
        assert_eq!(next_ok(&mut w).await.row.as_ref(), Some(&first));
        assert_eq!(replica.get(&BannerKey::Banner).as_deref(), Some(&first));

        let log = Arc::new(Mutex::new(Log::default()));
        let consumer = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Some(item) = w.next().await {
                    let mut log = log.lock().unwrap();
                    match item {
                        Ok(e) => log.states.push(e),
                        Err(e) => log.errors.push(e.code()),
                    }
                }
            })
        };

        let mut down = server.stop();
        let stopped = Instant::now();
        eventually("the replica notices", || !replica.status().in_sync).await;
        // Stay down long enough that the store's listener, retrying with a
        // doubling pause, is between two attempts seconds apart when the
        // server comes back (attempts about 3.1, 6.3 and 11.3 s after the
        // loss), so the write below lands while it is still reconnecting.
        tokio::time::sleep(Duration::from_millis(6600).saturating_sub(stopped.elapsed())).await;
        down.start();

        // A second store, opened after the restart, makes the final write.
        let writer = bounded("a store after the restart", async {
            loop {
                match Store::open(&db).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
        .await;
        let last = writer
            .table::<Banner>()
            .set(&admin(), BannerKey::Banner, banner("after", 2))
            .await
            .unwrap();
        // Was the first store listening when that write committed? Only
        // the writer's own listener may be on the database.
        let admin_client = pg::admin(&url).await;
        let listeners: i64 = admin_client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 \
                 AND query = 'LISTEN kv_changes'",
                &[&db.rsplit('/').next().unwrap_or_default()],
            )
            .await
            .unwrap()
            .get(0);

        eventually("the replica ends on the final write", || {
            replica.get(&BannerKey::Banner).as_deref() == Some(&last)
        })
        .await;
        eventually("the watcher ends on the final write", || {
            log.lock()
                .unwrap()
                .states
                .last()
                .and_then(|e| e.row.as_ref())
                == Some(&last)
        })
        .await;
        let status = replica.status();
        assert!(status.resyncs >= 1, "{status:?}");
        eventually("the replica is in sync again", || replica.status().in_sync).await;

        let log = log.lock().unwrap();
        let arrival = log
            .states
            .iter()
            .find(|e| e.row.as_ref() == Some(&last))
            .unwrap();
        assert!(
            log.errors.iter().all(|c| *c == ErrorCode::Backend),
            "{:?}",
            log.errors
        );
        eprintln!(
            "watcher: {} states, {} errors while the server was down; listeners at the final \
             write: {listeners}; the final state came {}",
            log.states.len(),
            log.errors.len(),
            if arrival.resynced {
                "by resync"
            } else {
                "by notification"
            }
        );
        if listeners == 1 {
            assert!(
                arrival.resynced,
                "the final write was made while the listener was reconnecting, so only a \
                 resync can have delivered it"
            );
        }
        // The watcher never goes back to the state before.
        let after_restart: Vec<_> = log
            .states
            .iter()
            .skip_while(|e| e.row.as_ref() != Some(&last))
            .collect();
        assert!(after_restart.iter().all(|e| e.row.as_ref() == Some(&last)));
        drop(log);
        consumer.abort();
    });
}
