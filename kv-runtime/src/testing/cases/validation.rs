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

/// Values with quotes, NUL, emoji and 10 KB strings come back exactly, or
/// are refused with VALIDATION_FAILED (a backend that cannot store NUL in
/// JSON text); never stored altered.
pub async fn hostile_values_round_trip_or_are_refused(store: Store) {
    let t = store.table::<Note>();
    let values = [
        serde_json::json!({ "s": "it's \"quoted\" \\ back" }),
        serde_json::json!({ "s": "🦀 ünïcode ☃ \u{202e}rtl" }),
        serde_json::json!({ "s": "x".repeat(10_000) }),
        serde_json::json!({ "n": 1.5e300, "i": -9007199254740993i64, "u": u64::MAX }),
        serde_json::json!({ "nul": "a\u{0}b" }),
        serde_json::json!(["%", "_", "\\", "'"]),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("v{i}");
        match t.set(&editor(), &key, Note { body: v.clone() }).await {
            Ok(row) => {
                assert_eq!(&row.value.body, v);
                let got = t.get(&key).await.unwrap().expect("stored value reads back");
                assert_eq!(&got.value.body, v, "value {i} must read back exactly");
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::ValidationFailed, "value {i}: {e}");
                assert!(
                    v.to_string().contains("\\u0000"),
                    "only NUL may be refused, not {v}"
                );
                assert_eq!(t.get(&key).await.unwrap(), None);
            }
        }
    }
}
