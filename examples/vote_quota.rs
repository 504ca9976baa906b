//! A vote quota: each user may vote 3 times an hour. `consume` counts a
//! use and refuses one over the quota with `RATE_LIMITED` and how long to
//! wait; the count is exact across app servers sharing a SQLite file or a
//! PostgreSQL database.
//!
//! `cargo run --example vote_quota`

use kv_runtime::hooks::HookError;
use kv_runtime::{Error, Quota, Store};

/// 3 votes per user in any hour (a sliding window).
#[derive(Quota)]
#[quota(max = 3, window = "1h")]
pub struct Votes;

#[tokio::main]
async fn main() -> kv_runtime::Result<()> {
    // Or "sqlite://votes.db", or "postgres://user@host/db".
    let store = Store::open("memory:").await?;
    let votes: Quota<Votes> = store.quota();

    // An audit line for every admitted vote (hooks run around the count).
    votes.after_consume("audit", |used| async move {
        println!(
            "  audit: {} voted, {} left this hour",
            used.owner, used.state.remaining
        );
        Ok::<(), HookError>(())
    });

    for attempt in 1..=4 {
        match votes.consume("ada").await {
            Ok(state) => println!("vote {attempt} by ada: counted ({} used)", state.used),
            Err(e @ Error::RateLimited { retry_after, .. }) => println!(
                "vote {attempt} by ada: refused, {} (retry in {} s)",
                e.code(),
                retry_after.as_secs()
            ),
            Err(e) => return Err(e),
        }
    }

    // Each owner has a quota of their own.
    let bo = votes.consume("bo").await?;
    println!("bo: {} used, {} left", bo.used, bo.remaining);

    // `check` reads without counting.
    let ada = votes.check("ada").await?;
    println!(
        "ada: {} used, next vote in {:?}",
        ada.used,
        ada.retry_after.map(|d| d.as_secs())
    );

    // A moderator gives ada her votes back.
    votes.reset("ada").await?;
    println!(
        "after reset, ada has {} left",
        votes.check("ada").await?.remaining
    );
    Ok(())
}
