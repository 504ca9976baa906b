//! Validation: field constraints, size limits, values that would not read back.

use super::{admin, editor, note};
use crate::testing::schemas::*;
use crate::{ErrorCode, Store};

/// A value breaking a field constraint is VALIDATION_FAILED naming the
/// field; the stored row is unchanged.
pub async fn validation_failure_names_fields_and_changes_nothing(store: Store) {
    let t = store.table::<Banner>();
    let row = t
        .set(&admin(), BannerKey::Banner, Banner::new("fine"))
        .await
        .unwrap();
    for bad in [String::new(), "x".repeat(201)] {
        let err = t
            .set(
                &admin(),
                BannerKey::Banner,
                Banner {
                    active: true,
                    message: bad,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed);
        match &err {
            crate::Error::ValidationFailed { fields, .. } => {
                assert!(fields.iter().any(|f| f.path == "message"), "{fields:?}")
            }
            other => panic!("expected ValidationFailed, got {other:?}"),
        }
    }
    let err = t
        .set(
            &admin(),
            BannerKey::Maintenance,
            Banner {
                active: true,
                message: String::new(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get(BannerKey::Banner).await.unwrap().unwrap(), row);
    assert_eq!(t.get(BannerKey::Maintenance).await.unwrap(), None);
}

/// A value over the table's size limit is refused.
pub async fn oversize_values_are_refused(store: Store) {
    let t = store.table::<Note>();
    let big = note(&"x".repeat(70_000));
    let err = t.set(&editor(), "big".to_owned(), big).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get("big".to_owned()).await.unwrap(), None);
    t.set(&editor(), "ok".to_owned(), note(&"x".repeat(60_000)))
        .await
        .unwrap();
}

/// A value that could not be read back (nesting too deep for the decoder)
/// is refused at write time rather than stored unreadable.
pub async fn unreadable_values_are_refused_at_write(store: Store) {
    let t = store.table::<Note>();
    let mut deep = serde_json::Value::Null;
    for _ in 0..1000 {
        deep = serde_json::Value::Array(vec![deep]);
    }
    let err = t
        .set(&editor(), "deep".to_owned(), Note { body: deep })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get("deep".to_owned()).await.unwrap(), None);
    let mut ok = serde_json::Value::Null;
    for _ in 0..100 {
        ok = serde_json::Value::Array(vec![ok]);
    }
    let row = t
        .set(&editor(), "ok".to_owned(), Note { body: ok.clone() })
        .await
        .unwrap();
    assert_eq!(t.get("ok".to_owned()).await.unwrap().unwrap(), row);
    assert_eq!(row.value.body, ok);
}

/// Values with quotes, emoji, extreme numbers and 10 KB strings come back
/// exactly on every backend; a string (or an object key) holding NUL is
/// refused with VALIDATION_FAILED naming where, on every backend (PostgreSQL
/// cannot store it, so none does), and nothing is stored.
pub async fn hostile_values_round_trip_and_nul_is_refused_everywhere(store: Store) {
    let t = store.table::<Note>();
    let values = [
        serde_json::json!({ "s": "it's \"quoted\" \\ back" }),
        serde_json::json!({ "s": "🦀 ünïcode ☃ \u{202e}rtl" }),
        serde_json::json!({ "s": "x".repeat(10_000) }),
        serde_json::json!({ "n": 1.5e300, "i": -9007199254740993i64, "u": u64::MAX }),
        serde_json::json!(["%", "_", "\\", "'", "\\u0000"]),
        serde_json::json!({ "ctl": "\u{1}\u{1f}\u{7f}\u{85}" }),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("v{i}");
        let row = t
            .set(&editor(), &key, Note { body: v.clone() })
            .await
            .unwrap_or_else(|e| panic!("value {i} is stored: {e}"));
        assert_eq!(&row.value.body, v);
        let got = t.get(&key).await.unwrap().expect("stored value reads back");
        assert_eq!(&got.value.body, v, "value {i} must read back exactly");
    }
    let nul = [
        (serde_json::json!({ "nul": "a\u{0}b" }), "body.nul"),
        (
            serde_json::json!({ "deep": [1, { "x": "\u{0}" }] }),
            "body.deep[1].x",
        ),
        (serde_json::json!({ "k\u{0}": 1 }), "body.k\u{0}"),
        (serde_json::json!("\u{0}"), "body"),
    ];
    for (i, (v, path)) in nul.iter().enumerate() {
        let key = format!("nul{i}");
        let err = t
            .set(&editor(), &key, Note { body: v.clone() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed, "{v}: {err}");
        let crate::Error::ValidationFailed { fields, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(fields[0].path, *path, "{v}");
        assert_eq!(t.get(&key).await.unwrap(), None);
    }
}

/// The largest key (256 bytes of UTF-8) and the largest value
/// (`max_value_bytes` of JSON) round-trip exactly; one byte more of either
/// is refused with its code and stores nothing.
pub async fn the_largest_key_and_value_round_trip(store: Store) {
    use crate::KvSchema;
    let t = store.table::<Note>();
    // 64 four-byte characters: 256 bytes, 64 chars.
    let key = "🦀".repeat(64);
    assert_eq!(key.len(), crate::MAX_KEY_BYTES);
    // `{"body":"xx...x"}` of exactly the limit.
    let overhead = serde_json::to_string(&Note {
        body: serde_json::json!(""),
    })
    .unwrap()
    .len();
    let fill = "x".repeat(Note::MAX_VALUE_BYTES - overhead);
    let big = Note {
        body: serde_json::json!(fill),
    };
    assert_eq!(
        serde_json::to_string(&big).unwrap().len(),
        Note::MAX_VALUE_BYTES
    );
    let row = t.set(&editor(), &key, big.clone()).await.unwrap();
    assert_eq!(row.key, key);
    let got = t.get(&key).await.unwrap().expect("the row reads back");
    assert_eq!(got.value, big);
    let page = t
        .list(&editor(), crate::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.page.len(), 1);
    assert_eq!(page.page[0].key, key);

    let too_long = format!("{key}x");
    let err = t.set(&editor(), &too_long, note("x")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidKey);
    let bigger = Note {
        body: serde_json::json!(format!("{fill}x")),
    };
    let err = t
        .set(&editor(), "other".to_owned(), bigger)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    assert_eq!(t.get("other".to_owned()).await.unwrap(), None);
}
