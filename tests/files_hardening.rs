//! `clean_files` under abuse: a row cannot get other files in the folder
//! deleted, a file another row still references stays, and the record of
//! failed deletions stays small whatever callers write.

mod support;

use kv_runtime::files::{FileId, LocalDirFileStore, KEPT_FAILURES};
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};
use support::tempdir::TempDir;

/// Anyone may write it: the file ids come from untrusted callers.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "profiles", write_role = public, clean_files)]
struct Profile {
    #[kv(file)]
    avatar: Option<FileId>,
    #[kv(file)]
    gallery: Vec<String>,
}

fn profile(avatar: Option<&str>, gallery: &[String]) -> Profile {
    Profile {
        avatar: avatar.map(|a| FileId(a.to_owned())),
        gallery: gallery.to_vec(),
    }
}

#[tokio::test]
async fn a_row_cannot_delete_files_the_store_did_not_mint() {
    let dir = TempDir::new("files-foreign");
    for name in [".env", "kv.db", "0123456789abcdef0123456789ABCDEF"] {
        std::fs::write(dir.join(name), b"precious").unwrap();
    }
    let store = Store::memory();
    store.set_file_store(LocalDirFileStore::new(dir.path()).unwrap());
    let t = store.table::<Profile>();
    let anyone = Ctx::anonymous();
    let names = [".env".to_owned(), "kv.db".to_owned()];
    t.set(
        &anyone,
        "p".to_owned(),
        profile(Some("0123456789abcdef0123456789ABCDEF"), &names),
    )
    .await
    .unwrap();
    // Clearing the row would delete the files it referenced.
    t.set(&anyone, "p".to_owned(), profile(None, &[]))
        .await
        .unwrap();
    for name in [".env", "kv.db", "0123456789abcdef0123456789ABCDEF"] {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            b"precious",
            "{name} must survive"
        );
    }
    let failures = store.file_cleanup_failures();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(failures
        .iter()
        .all(|f| f.reason.contains("not an id this store minted")));
}

#[tokio::test]
async fn a_file_another_row_references_is_kept() {
    let dir = TempDir::new("files-shared");
    let files = LocalDirFileStore::new(dir.path()).unwrap();
    let shared = files.put(b"shared").unwrap();
    let own = files.put(b"own").unwrap();
    let store = Store::memory();
    store.set_file_store(files.clone());
    let t = store.table::<Profile>();
    let anyone = Ctx::anonymous();
    t.set(
        &anyone,
        "a".to_owned(),
        profile(Some(shared.as_str()), std::slice::from_ref(&own.0)),
    )
    .await
    .unwrap();
    t.set(
        &anyone,
        "b".to_owned(),
        profile(None, std::slice::from_ref(&shared.0)),
    )
    .await
    .unwrap();
    // `a` drops both: its own file goes, the shared one stays for `b`.
    t.set(&anyone, "a".to_owned(), profile(None, &[]))
        .await
        .unwrap();
    assert!(!files.path(own.as_str()).unwrap().exists());
    assert!(files.path(shared.as_str()).unwrap().exists());
    // Once `b` is gone too, nothing references it.
    assert!(t.rm(&anyone, "b".to_owned()).await.unwrap());
    assert!(!files.path(shared.as_str()).unwrap().exists());
    assert!(store.file_cleanup_failures().is_empty());
}

#[tokio::test]
async fn failed_deletions_are_counted_not_hoarded() {
    const WRITES: usize = 51;
    const IDS: usize = 8_000;
    let dir = TempDir::new("files-bogus");
    let store = Store::memory();
    store.set_file_store(LocalDirFileStore::new(dir.path()).unwrap());
    let t = store.table::<Profile>();
    let anyone = Ctx::anonymous();
    for w in 0..WRITES {
        let bogus: Vec<String> = (0..IDS).map(|i| format!("bogus-{w}-{i}")).collect();
        t.set(&anyone, "p".to_owned(), profile(None, &bogus))
            .await
            .unwrap();
    }
    let expected = ((WRITES - 1) * IDS) as u64;
    assert_eq!(store.file_cleanup_failure_count(), expected);
    let kept = store.file_cleanup_failures();
    assert_eq!(kept.len(), KEPT_FAILURES, "only the most recent are kept");
    assert!(kept
        .last()
        .unwrap()
        .file_id
        .starts_with(&format!("bogus-{}-", WRITES - 2)));
    assert!(store.file_cleanup_failures().is_empty(), "taken once");
    assert_eq!(
        store.file_cleanup_failure_count(),
        expected,
        "the count stays"
    );
}
