//! `list`: full pages, cursors that survive changes, bounded page sizes.

use super::{admin, editor, note};
use crate::testing::schemas::*;
use crate::{ErrorCode, PageRequest, Store};

/// Soft-deleted rows are skipped before paging: every page but the last is
/// full, and the pages together hold each live row once, in key order.
pub async fn list_pages_are_full_despite_soft_deleted_rows(store: Store) {
    let t = store.table::<Banner>();
    for (i, k) in BannerKey::ALL.iter().enumerate() {
        t.set(&admin(), k, Banner::new(&format!("m{i}")))
            .await
            .unwrap();
    }
    let mut live: Vec<&str> = Vec::new();
    for (i, k) in BannerKey::ALL.iter().enumerate() {
        if i % 3 != 0 {
            assert!(t.rm(&admin(), k).await.unwrap());
        } else {
            live.push(k.as_str());
        }
    }
    live.sort_unstable();
    for size in 1..=5 {
        let mut request = PageRequest::first(size);
        let mut got: Vec<String> = Vec::new();
        loop {
            let page = t.list(&admin(), request.clone()).await.unwrap();
            if !page.is_done {
                assert_eq!(
                    page.page.len(),
                    size,
                    "a page that is not the last must be full"
                );
            }
            got.extend(page.page.iter().map(|r| r.key.as_str().to_owned()));
            match page.continue_cursor {
                Some(c) => request = PageRequest::after(c, size),
                None => {
                    assert!(page.is_done);
                    break;
                }
            }
        }
        assert_eq!(got, live, "page size {size}");
    }
}

/// A cursor keeps working while rows before and after it come and go.
pub async fn list_cursor_survives_inserts_and_deletes(store: Store) {
    let t = store.table::<Note>();
    for k in ["b", "d", "f", "h"] {
        t.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    let first = t.list(&editor(), PageRequest::first(2)).await.unwrap();
    let keys: Vec<_> = first.page.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, ["b", "d"]);
    let cursor = first.continue_cursor.expect("more rows follow");
    // Delete the row the cursor points at, and rows around it; add new ones.
    assert!(t.rm(&editor(), "d".to_owned()).await.unwrap());
    assert!(t.rm(&editor(), "f".to_owned()).await.unwrap());
    t.set(&editor(), "a".to_owned(), note("a")).await.unwrap();
    t.set(&editor(), "e".to_owned(), note("e")).await.unwrap();
    let next = t
        .list(&editor(), PageRequest::after(cursor, 2))
        .await
        .unwrap();
    let keys: Vec<_> = next.page.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys, ["e", "h"]);
    assert!(next.is_done);
}

/// Malformed cursors, and cursors of another table, are INVALID_CURSOR.
pub async fn list_rejects_malformed_and_foreign_cursors(store: Store) {
    let notes = store.table::<Note>();
    for k in ["a", "b", "c"] {
        notes.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    let foreign = notes
        .list(&editor(), PageRequest::first(1))
        .await
        .unwrap()
        .continue_cursor
        .expect("more notes follow");
    let banners = store.table::<Banner>();
    banners
        .set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    let bad = [
        foreign.as_str(),
        "",
        "not a cursor",
        "v1.zz.zz",
        "v9.00.00",
        "v1..",
        "v1.636f6e666f726d616e636542616e6e6572.zz",
        "\u{0}\u{1}",
        "🦀🦀🦀",
    ];
    for c in bad {
        let err = banners
            .list(&admin(), PageRequest::after(c, 10))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "cursor {c:?}");
    }
    let long = "v1.".to_owned() + &"a".repeat(100_000);
    let err = banners
        .list(&admin(), PageRequest::after(long, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCursor);
}

/// Page sizes above the maximum are refused; 0 means the default.
pub async fn list_page_size_is_bounded(store: Store) {
    let t = store.table::<Banner>();
    t.set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    let err = t
        .list(&admin(), PageRequest::first(PageRequest::MAX_ITEMS + 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    let page = t.list(&admin(), PageRequest::first(0)).await.unwrap();
    assert_eq!(page.page.len(), 1);
}

/// Rows whose key the schema does not declare are skipped by `list`, and
/// pages stay full unless last; hooks of one schema do not leak to another
/// schema over the same table.
pub async fn list_skips_undeclared_keys_and_keeps_pages_full(store: Store) {
    let declared = store.table::<Banner>();
    let any = store.table::<BannerAnyKey>();
    let v = || BannerAnyKey {
        active: true,
        message: "x".into(),
    };
    for k in [
        "aa-orphan",
        "ab-orphan",
        "ac-orphan",
        "b-orphan",
        "zz-orphan",
    ] {
        any.set(&admin(), k.to_owned(), v()).await.unwrap();
    }
    for k in [
        BannerKey::Alpha,
        BannerKey::Beta,
        BannerKey::Gamma,
        BannerKey::Zeta,
    ] {
        declared.set(&admin(), k, Banner::new("d")).await.unwrap();
    }
    let mut request = PageRequest::first(2);
    let mut got = Vec::new();
    loop {
        let page = declared.list(&admin(), request.clone()).await.unwrap();
        if !page.is_done {
            assert_eq!(
                page.page.len(),
                2,
                "a page that is not the last must be full"
            );
        }
        got.extend(page.page.iter().map(|r| r.key));
        match page.continue_cursor {
            Some(c) => request = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(
        got,
        [
            BannerKey::Alpha,
            BannerKey::Beta,
            BannerKey::Gamma,
            BannerKey::Zeta
        ]
    );
    // A hook registered on one schema does not apply to (or erase) the other's.
    declared.before_set("refuse-all", |_| async {
        Err(crate::hooks::HookError::new("no"))
    });
    any.set(&admin(), "free".to_owned(), v()).await.unwrap();
    let err = declared
        .set(&admin(), BannerKey::Alpha, Banner::new("z"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
}

/// A cursor built by hand around any bytes (NUL and other control
/// characters, invalid UTF-8, an empty or over-long key) is INVALID_CURSOR
/// on every backend: it never reaches the storage as a key.
pub async fn forged_cursors_holding_any_bytes_are_invalid_cursor(store: Store) {
    let banners = store.table::<Banner>();
    banners
        .set(&admin(), BannerKey::Banner, Banner::new("x"))
        .await
        .unwrap();
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    let table = hex(b"conformanceBanner");
    let forged: Vec<Vec<u8>> = vec![
        b"\0".to_vec(),
        b"a\0b".to_vec(),
        b"\x01".to_vec(),
        b"\x7f".to_vec(),
        "\u{85}".as_bytes().to_vec(),
        vec![0xff, 0xfe],
        Vec::new(),
        vec![b'x'; crate::MAX_KEY_BYTES + 1],
    ];
    for key in forged {
        let cursor = format!("v1.{table}.{}", hex(&key));
        let err = banners
            .list(&admin(), PageRequest::after(cursor, 10))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "key bytes {key:?}");
    }
    // The same format around a real key works.
    let cursor = format!("v1.{table}.{}", hex(b"alpha"));
    let page = banners
        .list(&admin(), PageRequest::after(cursor, 10))
        .await
        .unwrap();
    assert_eq!(page.page.len(), 1, "banner sorts after alpha");
}
