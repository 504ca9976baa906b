//! Stored files: `clean_files` deleting the files a write leaves unreferenced.

use super::{admin, clocked};
use crate::testing::schemas::*;
use crate::Store;

/// With `clean_files`: an overwrite deletes the files it drops, a soft
/// delete keeps them (restore brings the row back intact), a purge or a
/// hard delete deletes them; a failing file store never fails the write.
pub async fn clean_files_deletes_unreferenced_files(store: Store) {
    use crate::files::FileId;
    use std::sync::Arc;
    use std::time::Duration;
    let (store, clock) = clocked(&store);
    let files = Arc::new(RecordingFiles::default());
    store.set_file_store(Arc::clone(&files));
    let t = store.table::<Attachment>();
    let a = |file: &str, thumbs: &[&str]| Attachment {
        file: file.to_owned(),
        thumbs: thumbs.iter().map(|s| FileId((*s).to_owned())).collect(),
        title: "t".into(),
    };
    t.set(&admin(), "doc".to_owned(), a("f1", &["t1", "t2"]))
        .await
        .unwrap();
    t.set(&admin(), "doc".to_owned(), a("f1", &["t2", "t3"]))
        .await
        .unwrap();
    assert_eq!(files.deleted(), ["t1"], "only the dropped thumbnail goes");
    assert!(t.rm(&admin(), "doc".to_owned()).await.unwrap());
    assert_eq!(files.deleted(), ["t1"], "a soft delete keeps files");
    let back = t.restore(&admin(), "doc".to_owned()).await.unwrap();
    assert_eq!(back.value, a("f1", &["t2", "t3"]));
    assert!(t.rm(&admin(), "doc".to_owned()).await.unwrap());
    clock.advance(Duration::from_secs(7_200));
    assert_eq!(t.purge(Duration::from_secs(3_600)).await.unwrap(), 1);
    let mut deleted = files.deleted();
    deleted.sort();
    assert_eq!(deleted, ["f1", "t1", "t2", "t3"]);

    let uploads = store.table::<Upload>();
    let up = |id: &str| Upload {
        file: Some(FileId(id.to_owned())),
    };
    uploads
        .set(&admin(), "u".to_owned(), up("u1"))
        .await
        .unwrap();
    assert!(uploads.rm(&admin(), "u".to_owned()).await.unwrap());
    assert!(
        files.deleted().contains(&"u1".to_owned()),
        "a hard delete deletes the file"
    );
    assert!(store.file_cleanup_failures().is_empty());
    // The file store fails: the write still succeeds; the failure is reported.
    files.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    uploads
        .set(&admin(), "v".to_owned(), up("v1"))
        .await
        .unwrap();
    let row = uploads
        .set(&admin(), "v".to_owned(), Upload { file: None })
        .await
        .unwrap();
    assert_eq!(row.value.file, None);
    let failures = store.file_cleanup_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].file_id, "v1");
    assert_eq!(failures[0].table, "conformanceUpload");
}
