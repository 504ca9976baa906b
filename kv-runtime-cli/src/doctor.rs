//! `kv doctor`: what a store can say about itself ([`Backend::diagnose`](kv_runtime::backend::Backend::diagnose):
//! schema version, SQLite's integrity check, the rate limiter), its health
//! ([`Store::health`](kv_runtime::Store::health): reachable, the change feed verified on PostgreSQL),
//! and a pass over every row checking the bookkeeping kv relies on
//! (versions and floors not ahead of the clock, `created_at <= updated_at`,
//! `deleted_at <= updated_at`).

use kv_runtime::backend::{Check, CheckState};
use kv_runtime::Store;

use crate::BATCH;

/// How far ahead of the clock a version may be before it is reported (a
/// clock that stepped back, or a row written by a machine whose clock was
/// ahead: new versions then jump to it).
pub const CLOCK_SKEW_MS: i64 = 60_000;

/// Every check of `store`, at time `now`.
pub async fn doctor(store: &Store, now: i64) -> Vec<Check> {
    let backend = store.backend();
    let mut checks = Vec::new();
    let health = store.health().await;
    let b = &health.backend;
    checks.push(if b.reachable {
        Check::ok(
            "reachable",
            format!(
                "{} answered in {:?}",
                b.backend,
                b.round_trip.unwrap_or_default()
            ),
        )
    } else {
        Check::failed(
            "reachable",
            format!("{}: {}", b.backend, b.error.clone().unwrap_or_default()),
        )
    });
    checks.push(if b.feed.is_healthy() {
        Check::ok("change feed", format!("{:?}", b.feed))
    } else {
        Check::new(
            "change feed",
            CheckState::Warning,
            format!(
                "{:?}: watchers and replicas may miss changes made by other processes; see \
                 the PostgreSQL backend's docs on poolers and `listen_url`",
                b.feed
            ),
        )
    });
    checks.extend(backend.diagnose().await);
    checks.push(versions(&**backend, now).await);
    checks
}

/// The pass over every row and floor.
async fn versions(backend: &dyn kv_runtime::backend::Backend, now: i64) -> Check {
    let name = "versions and floors";
    let mut snapshot = match backend.snapshot().await {
        Ok(s) => s,
        Err(e) => return Check::failed(name, e.to_string()),
    };
    let tables = match snapshot.tables().await {
        Ok(t) => t,
        Err(e) => return Check::failed(name, e.to_string()),
    };
    let limit = now.saturating_add(CLOCK_SKEW_MS);
    let mut problems = Vec::new();
    let mut rows = 0u64;
    for table in &tables {
        if let Some(floor) = table.version_floor.filter(|f| *f > limit) {
            problems.push(format!(
                "table `{}`: version floor {floor} is ahead of the clock ({now})",
                table.name
            ));
        }
        let mut after: Option<String> = None;
        loop {
            let page = match snapshot.scan(&table.name, after.as_deref(), BATCH).await {
                Ok(p) => p,
                Err(e) => return Check::failed(name, e.to_string()),
            };
            for r in &page {
                rows += 1;
                let mut bad = |what: String| {
                    if problems.len() < 20 {
                        problems.push(format!("table `{}`, key {:?}: {what}", table.name, r.key));
                    }
                };
                if r.created_at > r.updated_at {
                    bad(format!(
                        "created_at {} after updated_at {}",
                        r.created_at, r.updated_at
                    ));
                }
                if r.deleted_at.is_some_and(|d| d > r.updated_at) {
                    bad("deleted_at after updated_at".to_owned());
                }
                if r.updated_at > limit {
                    bad(format!(
                        "updated_at {} is ahead of the clock ({now})",
                        r.updated_at
                    ));
                }
            }
            match page.last() {
                Some(last) if page.len() == BATCH => after = Some(last.key.clone()),
                _ => break,
            }
        }
    }
    if problems.is_empty() {
        Check::ok(
            name,
            format!("{} tables, {rows} rows: consistent", tables.len()),
        )
    } else {
        Check::new(
            name,
            CheckState::Warning,
            format!(
                "{}; a version ahead of the clock makes later writes jump to it: check the \
                 clocks of the machines writing",
                problems.join("; ")
            ),
        )
    }
}
