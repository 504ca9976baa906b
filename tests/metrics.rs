//! Metrics move for every operation and outcome (feature `metrics`), seen
//! through `metrics-util`'s debugging recorder.

use std::collections::HashMap;
use std::time::Duration;

use kv_runtime::{Ctx, Kv, ManualClock, PageRequest, Store};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "metered", keys = [a, b], write_role = admin, soft_delete, rate_limit = 3)]
struct Metered {
    n: u32,
}

type Labels = Vec<(String, String)>;
type Counters = HashMap<(String, Labels), u64>;
type Snapshot = (Counters, Vec<(String, Labels)>, HashMap<String, f64>);

/// Counters and which histograms and gauges were recorded, by name and labels.
fn snapshot(snapshotter: &Snapshotter) -> Snapshot {
    let mut counters = HashMap::new();
    let mut histograms = Vec::new();
    let mut gauges = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = key.into_parts();
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        let name = key.name().to_owned();
        match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                counters.insert((name, labels), n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(values)) if !values.is_empty() => {
                histograms.push((name, labels));
            }
            (MetricKind::Gauge, DebugValue::Gauge(v)) => {
                gauges.insert(name, v.into_inner());
            }
            _ => {}
        }
    }
    (counters, histograms, gauges)
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

#[test]
fn operations_are_counted_by_outcome_and_timed() {
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let clock = ManualClock::new(1_700_000_000_000);
            let store = Store::memory().with_clock(clock.clone());
            let t = store.table::<Metered>();
            let replica = t.replica().await.unwrap();
            let ada = Ctx::user("ada").with_role("admin");
            let row = t.set(&ada, MeteredKey::A, Metered { n: 1 }).await.unwrap();
            t.set_expecting(&ada, MeteredKey::A, Metered { n: 2 }, row.updated_at - 1)
                .await
                .unwrap_err(); // CONFLICT
            t.set(&Ctx::anonymous(), MeteredKey::A, Metered { n: 3 })
                .await
                .unwrap_err(); // FORBIDDEN
            t.rm(&ada, MeteredKey::A).await.unwrap();
            t.set(&ada, MeteredKey::B, Metered { n: 4 })
                .await
                .unwrap_err(); // RATE_LIMITED
            t.restore(&ada, MeteredKey::A).await.unwrap();
            t.get(MeteredKey::A).await.unwrap();
            t.list(&ada, PageRequest::first(10)).await.unwrap();
            clock.advance(Duration::from_secs(120));
            t.purge(Duration::from_secs(60)).await.unwrap();
            // The replica applies the changes on its task.
            for _ in 0..100 {
                if replica.get(&MeteredKey::A).is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    });
    let (counters, histograms, gauges) = snapshot(&recorder.snapshotter());
    let count = |op: &str, outcome: &str| {
        counters
            .get(&(
                "kv_operations_total".to_owned(),
                labels(&[("table", "metered"), ("op", op), ("outcome", outcome)]),
            ))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count("set", "ok"), 1, "{counters:?}");
    assert_eq!(count("set", "CONFLICT"), 1);
    assert_eq!(count("set", "FORBIDDEN"), 1);
    assert_eq!(count("set", "RATE_LIMITED"), 1);
    assert_eq!(count("rm", "ok"), 1);
    assert_eq!(count("restore", "ok"), 1);
    assert_eq!(count("get", "ok"), 1);
    assert_eq!(count("list", "ok"), 1);
    assert_eq!(count("purge", "ok"), 1);
    for op in ["set", "rm", "restore", "list", "purge"] {
        assert!(
            histograms.contains(&(
                "kv_operation_duration_seconds".to_owned(),
                labels(&[("table", "metered"), ("op", op)])
            )),
            "{op} is timed: {histograms:?}"
        );
    }
    assert!(
        !histograms
            .iter()
            .any(|(_, l)| l.contains(&("op".to_owned(), "get".to_owned()))),
        "get is not timed"
    );
    assert_eq!(gauges.get("kv_replica_in_sync"), Some(&1.0), "{gauges:?}");
    assert!(gauges.contains_key("kv_replica_lag_seconds"), "{gauges:?}");
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "metered_reads", keys = [a, b], write_role = admin)]
struct MeteredReads {
    n: u32,
}

/// `get`s of table `metered_reads` counted `ok` in a snapshot.
fn gets_ok(snapshot: Snapshot) -> u64 {
    snapshot
        .0
        .get(&(
            "kv_operations_total".to_owned(),
            labels(&[("table", "metered_reads"), ("op", "get"), ("outcome", "ok")]),
        ))
        .copied()
        .unwrap_or(0)
}

/// Successful gets keep their counter handle per thread. A recorder that
/// replaces another at the same address (a test helper called twice) still
/// sees each of its gets, not the first recorder.
#[test]
fn each_local_recorder_counts_its_own_gets() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Store::memory();
    let t = store.table::<MeteredReads>();
    runtime
        .block_on(t.set(&Ctx::internal(), MeteredReadsKey::A, MeteredReads { n: 1 }))
        .unwrap();
    let gets_under_a_new_recorder = |n: usize| {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            for i in 0..n {
                let key = if i % 2 == 0 {
                    MeteredReadsKey::A
                } else {
                    MeteredReadsKey::B
                };
                runtime.block_on(t.get(key)).unwrap();
            }
        });
        gets_ok(snapshot(&recorder.snapshotter()))
    };
    assert_eq!(gets_under_a_new_recorder(3), 3);
    assert_eq!(gets_under_a_new_recorder(5), 5);
    assert_eq!(gets_under_a_new_recorder(1), 1);
}

/// Under the global recorder (as an app installs it), every successful get
/// on every thread is counted, also once the handles are kept; a failed get
/// is counted under its code.
#[test]
fn the_global_recorder_counts_gets_from_every_thread() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::set_global_recorder(recorder).expect("the only global recorder of this test binary");
    let store = Store::memory();
    let t = store.table::<MeteredReads>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(t.set(&Ctx::internal(), MeteredReadsKey::A, MeteredReads { n: 1 }))
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for i in 0..1000 {
                    let key = if i % 3 == 0 {
                        MeteredReadsKey::B
                    } else {
                        MeteredReadsKey::A
                    };
                    runtime.block_on(t.get(key)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // And on the runtime's worker threads.
    runtime.block_on(async {
        for _ in 0..10 {
            let t = t.clone();
            tokio::spawn(async move { t.get(MeteredReadsKey::A).await.unwrap() })
                .await
                .unwrap();
        }
    });
    assert_eq!(
        gets_ok(snapshot(&snapshotter)),
        4010,
        "every get counted once"
    );
}
