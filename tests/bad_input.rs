//! Outside data (key text, cursors, values, JSON) never panics and never
//! changes state: thousands of generated hostile inputs each get an error
//! with its code, and the table reads the same afterwards; and every
//! backend gives the same answer to each of them.

mod support;

use kv_runtime::testing::schemas::{Banner, BannerKey, Note};
use kv_runtime::{Ctx, ErrorCode, PageRequest, Row, Store};
use support::{pg, sqlite};

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

/// `ok`, or the error's code: what a caller sees of an answer.
fn answer<T>(result: &kv_runtime::Result<T>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().as_str().to_owned(),
    }
}

/// Runs the generated inputs against `store`, checking each answer's code,
/// and returns the answers in order.
async fn hostile_inputs(store: Store) -> Vec<String> {
    let banners = store.table::<Banner>();
    let notes = store.table::<Note>();
    let admin = Ctx::user("ada").with_role("admin");
    let editor = Ctx::user("ed").with_role("editor");
    banners
        .set(&admin, BannerKey::Banner, Banner::new("keep"))
        .await
        .unwrap();
    let before = banners.list(&admin, PageRequest::first(100)).await.unwrap();
    let mut answers = Vec::new();

    let mut gen = Gen(0x5eed_1234_abcd_ef01);
    for _ in 0..2_000 {
        let text = gen.text();
        // Enum keys: only the declared texts parse.
        let got = banners.get_str(&text).await;
        match &got {
            Ok(_) => assert!(BannerKey::ALL_STR.contains(&text.as_str()), "{text:?}"),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        answers.push(answer(&got));
        // Free keys: accepted or INVALID_KEY, never anything else.
        let got = notes.get_str(&text).await;
        match &got {
            Ok(row) => assert!(row.is_none()),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        answers.push(answer(&got));
        let got = notes.rm(&editor, text.clone()).await;
        match &got {
            Ok(deleted) => assert!(!deleted),
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidKey, "{text:?}"),
        }
        answers.push(answer(&got));
        // Cursors: every generated cursor is refused with INVALID_CURSOR.
        let got = banners
            .list(&admin, PageRequest::after(text.clone(), 10))
            .await;
        let err = got
            .as_ref()
            .expect_err("a generated cursor is not a cursor of this table");
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "{text:?}");
        answers.push(answer(&got));
        // Values: stored exactly, or refused as VALIDATION_FAILED (NUL);
        // the key is a fixed good one, so only the value is on trial.
        let value = Note {
            body: serde_json::json!({ "t": text, text.clone(): [text.clone()] }),
        };
        let got = notes.set(&editor, "v".to_owned(), value.clone()).await;
        match &got {
            Ok(row) => {
                assert_eq!(row.value, value);
                let read = notes.get("v".to_owned()).await.unwrap().expect("stored");
                assert_eq!(read.value, value, "{text:?} reads back exactly");
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::ValidationFailed, "{text:?}");
                assert!(text.contains('\0'), "only NUL is refused: {text:?}");
            }
        }
        answers.push(answer(&got));
        // JSON from outside: rows and keys either parse or give an error.
        let _ = serde_json::from_str::<Row<Banner>>(&text);
        let _ = serde_json::from_str::<BannerKey>(&format!("{text:?}"));
    }
    let after = banners.list(&admin, PageRequest::first(100)).await.unwrap();
    assert_eq!(before, after, "no generated input changed state");
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_gives_the_same_answer_to_hostile_input() {
    let memory = hostile_inputs(Store::memory()).await;
    assert!(memory.iter().any(|a| a == "ok"));
    assert!(
        memory.iter().any(|a| a == "VALIDATION_FAILED"),
        "NUL was generated"
    );
    let (store, _dir) = sqlite::temp_store().await;
    assert_eq!(
        hostile_inputs(store).await,
        memory,
        "SQLite answers as memory does"
    );
    if let Some(url) = pg::server_url() {
        let store = pg::fresh_store(&url).await;
        assert_eq!(
            hostile_inputs(store).await,
            memory,
            "PostgreSQL answers as memory does"
        );
    }
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
