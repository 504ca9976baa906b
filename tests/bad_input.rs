//! Outside data (key text, cursors, JSON) never panics and never changes
//! state: thousands of generated hostile inputs each get an error with its
//! code, and the table reads the same afterwards.

use kv_runtime::testing::schemas::{Banner, BannerKey, Note};
use kv_runtime::{Ctx, ErrorCode, PageRequest, Row, Store};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Text built from pieces that tend to break parsers.
    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "banner",
            "v1",
            ".",
            "..",
            "%",
            "_",
            "\\",
            "'",
            "\"",
            "\0",
            "\n",
            "🦀",
            "é",
            "ff",
            "00",
            "zz",
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "null",
            "true",
            "-1",
            "1e999",
            " ",
            "\u{202e}",
            "\u{feff}",
            "site-banner",
            "73697465",
            "=",
            "/",
            "?",
        ];
        let len = (self.next() % 12) as usize;
        let mut out = String::new();
        for _ in 0..len {
            if self.next().is_multiple_of(5) {
                let n = (self.next() % 300) as usize;
                out.push_str(&"x".repeat(n));
            } else {
                out.push_str(PIECES[(self.next() as usize) % PIECES.len()]);
            }
        }
        out
    }
}

#[tokio::test]
async fn generated_keys_and_cursors_get_coded_errors_and_change_nothing() {
    let store = Store::memory();
    let banners = store.table::<Banner>();
    let notes = store.table::<Note>();
    let admin = Ctx::user("ada").with_role("admin");
    let editor = Ctx::user("ed").with_role("editor");
    banners
        .set(&admin, BannerKey::Banner, Banner::new("keep"))
        .await
        .unwrap();
    let before = banners.list(&admin, PageRequest::first(100)).await.unwrap();

    let mut gen = Gen(0x5eed_1234_abcd_ef01);
    for _ in 0..5_000 {
        let text = gen.text();
        // Enum keys: only the declared texts parse.
        match banners.get_str(&text).await {
            Ok(_) => assert!(BannerKey::ALL_STR.contains(&text.as_str()), "{text:?}"),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        // Free keys: accepted or INVALID_KEY, never anything else.
        match notes.get_str(&text).await {
            Ok(row) => assert!(row.is_none()),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        match notes.rm(&editor, text.clone()).await {
            Ok(deleted) => assert!(!deleted),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        // Cursors: every generated cursor is refused with INVALID_CURSOR.
        let err = banners
            .list(&admin, PageRequest::after(text.clone(), 10))
            .await
            .expect_err("a generated cursor is not a cursor of this table");
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "{text:?}");
        // JSON from outside: rows and keys either parse or give an error.
        let _ = serde_json::from_str::<Row<Banner>>(&text);
        let _ = serde_json::from_str::<BannerKey>(&format!("{text:?}"));
    }
    let after = banners.list(&admin, PageRequest::first(100)).await.unwrap();
    assert_eq!(before, after, "no generated input changed state");
}

#[tokio::test]
async fn malformed_json_for_rows_and_keys_is_an_error() {
    for bad in [
        "",
        "{",
        "{\"key\":\"baner\",\"value\":{\"active\":true,\"message\":\"x\"},\"created_at\":1,\"updated_at\":1}",
        "{\"key\":\"banner\",\"value\":{\"active\":\"yes\",\"message\":\"x\"},\"created_at\":1,\"updated_at\":1}",
        "{\"key\":7}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        assert!(serde_json::from_str::<Row<Banner>>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<BannerKey>("\"banner\"").is_ok());
    let err = serde_json::from_str::<BannerKey>("\"baner\"").unwrap_err();
    assert!(err.to_string().contains("not a key"), "{err}");
}
