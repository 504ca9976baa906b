//! The whole story of `kv` in one run: set, get, a conflict caught, a
//! forbidden write, rm, get returning nothing, restore.
//!
//! ```text
//! cargo run --example quickstart                         # SQLite file kv-quickstart.db
//! cargo run --example quickstart -- memory:              # in memory
//! cargo run --example quickstart -- postgres://user@127.0.0.1:5432/db
//! ```

use kv_runtime::{Ctx, Kv, PageRequest, Store};
use serde::{Deserialize, Serialize};

/// Site-wide settings, one row per key.
#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance], write_role = admin, soft_delete)]
pub struct SiteConfig {
    /// Whether the setting is on.
    #[garde(skip)]
    pub active: bool,
    /// What to show; at most 200 bytes.
    #[garde(length(max = 200))]
    pub message: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite://kv-quickstart.db".to_owned());
    let store = Store::open(&url).await?;
    println!("opened {url}");
    let config = store.table::<SiteConfig>();

    let ada = Ctx::user("ada").with_role("admin");
    let grace = Ctx::user("grace").with_role("admin");
    let visitor = Ctx::anonymous();

    // 1. An admin sets the banner.
    let banner = SiteConfig {
        active: true,
        message: "Scheduled maintenance tonight at 22:00 UTC".into(),
    };
    let row = config.set(&ada, SiteConfigKey::Banner, banner).await?;
    println!(
        "set    {} = {:?} (updated_at {}, by {})",
        row.key,
        row.value.message,
        row.updated_at,
        row.updated_by.as_deref().unwrap_or("-")
    );

    // 2. Anyone reads it, no context needed.
    let read = config.get(SiteConfigKey::Banner).await?;
    println!(
        "get    {} -> {:?}",
        SiteConfigKey::Banner,
        read.as_ref().map(|r| &r.value.message)
    );

    // 3. Two admins edit from the same version: the second is told.
    let seen = row.updated_at;
    let newer = SiteConfig {
        active: true,
        message: "Maintenance moved to 23:00 UTC".into(),
    };
    let saved = config
        .set_expecting(&grace, SiteConfigKey::Banner, newer, seen)
        .await?;
    println!(
        "set    by grace, expecting updated_at {seen}: ok, now {}",
        saved.updated_at
    );
    let stale = SiteConfig {
        active: true,
        message: "Maintenance cancelled".into(),
    };
    match config
        .set_expecting(&ada, SiteConfigKey::Banner, stale, seen)
        .await
    {
        Err(e) => println!(
            "set    by ada, expecting updated_at {seen}: {} - {e}",
            e.code()
        ),
        Ok(_) => unreachable!("a stale expectation cannot succeed"),
    }

    // 4. A visitor may read but not write.
    let defaced = SiteConfig {
        active: true,
        message: "pwned".into(),
    };
    match config.set(&visitor, SiteConfigKey::Banner, defaced).await {
        Err(e) => println!("set    by a visitor: {} - {e}", e.code()),
        Ok(_) => unreachable!("visitors cannot write"),
    }

    // 5. A value breaking a field constraint is refused.
    let too_long = SiteConfig {
        active: true,
        message: "x".repeat(500),
    };
    match config.set(&ada, SiteConfigKey::Maintenance, too_long).await {
        Err(e) => println!("set    a 500-byte message: {} - {e}", e.code()),
        Ok(_) => unreachable!("the message is limited to 200 bytes"),
    }

    // 6. Clear the banner (a soft delete): reads see nothing.
    let removed = config.rm(&ada, SiteConfigKey::Banner).await?;
    println!("rm     {}: deleted = {removed}", SiteConfigKey::Banner);
    let gone = config.get(SiteConfigKey::Banner).await?;
    println!(
        "get    {} -> {:?}",
        SiteConfigKey::Banner,
        gone.map(|r| r.value.message)
    );

    // 7. Restore brings it back, with a new version.
    let back = config.restore(&ada, SiteConfigKey::Banner).await?;
    println!(
        "restore {} -> {:?} (updated_at {})",
        back.key, back.value.message, back.updated_at
    );

    // 8. Admins list every live row.
    let page = config.list(&ada, PageRequest::first(10)).await?;
    let keys: Vec<&str> = page.page.iter().map(|r| r.key.as_str()).collect();
    println!("list   {keys:?} (done: {})", page.is_done);
    Ok(())
}
