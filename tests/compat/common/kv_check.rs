//! The kv half of every compatibility app, included by each with
//! `#[path = "../../common/kv_check.rs"] mod kv_check;`: a kv SQLite store
//! in its own file, driven through the public API (set, get, list, a
//! conflict, rm, restore, reopen), with every answer checked. A failed
//! check panics, so the app exits non-zero.

use std::path::{Path, PathBuf};

use kv_runtime::{Ctx, ErrorCode, Kv, PageRequest, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, footer], write_role = admin, soft_delete)]
pub struct Site {
    pub message: String,
}

fn site(message: &str) -> Site {
    Site {
        message: message.to_owned(),
    }
}

/// A fresh directory for one run's database files, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(app: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kv-compat-{app}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the scratch directory can be created");
        Scratch(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn open(path: &Path) -> Store {
    Store::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("kv opens its SQLite file")
}

/// Writes and reads through kv in the SQLite file `path` (created here).
pub async fn run(path: &Path) {
    let admin = Ctx::user("ada").with_role("admin");
    {
        let store = open(path).await;
        let table = store.table::<Site>();
        let first = table
            .set(&admin, SiteKey::Banner, site("written by kv"))
            .await
            .expect("set");
        table
            .set(&admin, SiteKey::Footer, site("footer"))
            .await
            .expect("set");
        let got = table.get(SiteKey::Banner).await.expect("get");
        assert_eq!(got.expect("the row just set").value, site("written by kv"));

        // A write based on a stale version is refused and changes nothing.
        let second = table
            .set_expecting(&admin, SiteKey::Banner, site("edit"), first.updated_at)
            .await
            .expect("a write based on the current version");
        let stale = table
            .set_expecting(&admin, SiteKey::Banner, site("lost"), first.updated_at)
            .await
            .expect_err("a write based on a stale version");
        assert_eq!(stale.code(), ErrorCode::Conflict);
        let got = table.get(SiteKey::Banner).await.expect("get");
        assert_eq!(got.expect("still there").updated_at, second.updated_at);

        let page = table
            .list(&admin, PageRequest::first(10))
            .await
            .expect("list");
        let keys: Vec<_> = page.page.iter().map(|r| r.key).collect();
        assert_eq!(keys, [SiteKey::Banner, SiteKey::Footer]);

        assert!(table.rm(&admin, SiteKey::Footer).await.expect("rm"));
        assert!(table.get(SiteKey::Footer).await.expect("get").is_none());
        let restored = table
            .restore(&admin, SiteKey::Footer)
            .await
            .expect("restore");
        assert_eq!(restored.value, site("footer"));
    }
    // The rows are in the file: a new store over it reads them back.
    let store = open(path).await;
    let table = store.table::<Site>();
    let page = table
        .list(&admin, PageRequest::first(10))
        .await
        .expect("list after reopening");
    let values: Vec<_> = page.page.iter().map(|r| r.value.message.as_str()).collect();
    assert_eq!(values, ["edit", "footer"]);
}
