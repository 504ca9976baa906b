//! Serving a feature flag from a replica.
//!
//! The request handler is plain synchronous code: it reads the flag from an
//! in-process replica (no await, no lock, no I/O). An admin's change goes
//! through the store, with every check, and reaches the replica through the
//! change feed; with PostgreSQL it reaches the replicas of every app server.
//!
//! `cargo run --example feature_flag`

use std::time::{Duration, Instant};

use kv_runtime::{Ctx, Kv, Replica, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [new_checkout, dark_mode], write_role = admin)]
pub struct Flags {
    pub enabled: bool,
    /// Share of users who get the feature, 0 to 100.
    pub rollout_percent: u8,
}

/// A request handler: which checkout `user_id` gets. A missing flag means
/// "off".
fn checkout_page(flags: &Replica<Flags>, user_id: u64) -> &'static str {
    let on = flags.get(&FlagsKey::NewCheckout).is_some_and(|row| {
        row.value.enabled && user_id % 100 < u64::from(row.value.rollout_percent)
    });
    if on {
        "new checkout"
    } else {
        "classic checkout"
    }
}

#[tokio::main]
async fn main() -> kv_runtime::Result<()> {
    // Or "sqlite://flags.db", or "postgres://user@host/db" shared by servers.
    let store = Store::open("memory:").await?;
    let flags = store.table::<Flags>();
    let admin = Ctx::user("ada").with_role("admin");
    let ten_percent = Flags {
        enabled: true,
        rollout_percent: 10,
    };
    flags
        .set(&admin, FlagsKey::NewCheckout, ten_percent)
        .await?;

    // Load the table once; from now on the replica follows every change.
    let replica = flags.replica().await?;
    for user in [7, 42] {
        println!("user {user}: {}", checkout_page(&replica, user));
    }

    // An admin widens the rollout. The write goes through the store.
    let half = Flags {
        enabled: true,
        rollout_percent: 50,
    };
    let row = flags.set(&admin, FlagsKey::NewCheckout, half).await?;

    // The replica shows it once the feed has delivered it (microseconds in
    // process, about a millisecond across PostgreSQL servers).
    let deadline = Instant::now() + Duration::from_secs(5);
    while replica.get(&FlagsKey::NewCheckout).map(|r| r.updated_at) != Some(row.updated_at) {
        if Instant::now() > deadline {
            eprintln!("the replica did not catch up: {:?}", replica.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for user in [7, 42] {
        println!("user {user}: {}", checkout_page(&replica, user));
    }
    let status = replica.status();
    println!(
        "replica: {} flags, in sync: {}, changes applied: {}",
        replica.len(),
        status.in_sync,
        status.changes_applied
    );
    Ok(())
}
