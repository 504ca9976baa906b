//! Keys: free string keys checked, declared key text, hostile keys in byte order.

use std::collections::BTreeSet;

use super::{editor, note};
use crate::testing::schemas::*;
use crate::{ErrorCode, PageRequest, Store};

/// Free string keys: empty, over 256 bytes, or with control characters are
/// INVALID_KEY everywhere; 256 bytes is accepted.
pub async fn free_string_keys_are_checked(store: Store) {
    let t = store.table::<Note>();
    let bad = [
        String::new(),
        "x".repeat(257),
        "a\nb".into(),
        "nul\u{0}".into(),
        "\u{7f}".into(),
    ];
    for k in bad {
        let err = t.set(&editor(), &k, note("x")).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidKey, "{k:?}");
        assert_eq!(t.get(&k).await.unwrap_err().code(), ErrorCode::InvalidKey);
        assert_eq!(
            t.get_str(&k).await.unwrap_err().code(),
            ErrorCode::InvalidKey
        );
        assert_eq!(
            t.rm(&editor(), &k).await.unwrap_err().code(),
            ErrorCode::InvalidKey
        );
    }
    let max = "é".repeat(128);
    assert_eq!(max.len(), 256);
    t.set(&editor(), &max, note("x")).await.unwrap();
    assert!(t.get(&max).await.unwrap().is_some());
    let page = t.list(&editor(), PageRequest::first(10)).await.unwrap();
    assert_eq!(page.page.len(), 1);
}

/// Key text that is not a declared key is INVALID_KEY, naming the keys.
pub async fn unknown_enum_key_text_is_invalid_key(store: Store) {
    let t = store.table::<Banner>();
    for text in ["baner", "Banner", "", "banner ", "site_banner"] {
        let err = t.get_str(text).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidKey, "{text:?}");
        let parsed: Result<BannerKey, _> = text.parse();
        assert_eq!(parsed.unwrap_err().code(), ErrorCode::InvalidKey);
    }
    let err = t.get_str("baner").await.unwrap_err();
    assert!(
        err.to_string().contains("banner"),
        "the message lists the keys: {err}"
    );
    assert_eq!(
        "site-banner".parse::<BannerKey>().unwrap(),
        BannerKey::SiteBanner
    );
}

/// Keys with quotes, wildcards, backslashes, emoji and maximal length are
/// stored and read back exactly, and listed in byte order.
pub async fn hostile_keys_round_trip_in_byte_order(store: Store) {
    let t = store.table::<Note>();
    let keys = [
        "'; DROP TABLE kv; --",
        "\"quoted\"",
        "100%",
        "under_score",
        "_",
        "%",
        "back\\slash",
        "🦀 crab",
        "Ünïcödé",
        "a",
        "A",
        "a b",
        "x".repeat(256).leak(),
    ];
    for k in keys {
        t.set(&editor(), k.to_owned(), note(k)).await.unwrap();
    }
    for k in keys {
        let row = t
            .get(k.to_owned())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{k:?} missing"));
        assert_eq!(row.key, k);
        assert_eq!(row.value, note(k));
    }
    let page = t.list(&editor(), PageRequest::first(100)).await.unwrap();
    let listed: Vec<&str> = page.page.iter().map(|r| r.key.as_str()).collect();
    let expected: Vec<&str> = keys
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(listed, expected, "keys list in byte order");
    // Wildcards match themselves only.
    assert!(t.rm(&editor(), "%".to_owned()).await.unwrap());
    assert!(t.get("100%".to_owned()).await.unwrap().is_some());
    assert!(t.get("%".to_owned()).await.unwrap().is_none());
    assert!(t.get("_".to_owned()).await.unwrap().is_some());
    assert!(t.get("under_score".to_owned()).await.unwrap().is_some());
}
