//! Key parsing: `FromStr` (and serde) of a generated key enum, and the
//! rules for free string keys. Any text parses to the key it names or
//! fails with `INVALID_KEY`, and the two ways agree.

use std::str::FromStr;

use kv_runtime::{ErrorCode, Kv, KvKey};
use serde::{Deserialize, Serialize};

/// A table with declared keys, one of them not an identifier (only its key
/// type is used).
#[allow(dead_code)]
#[derive(Kv, Serialize, Deserialize, Clone, Debug)]
#[kv(table = "fuzzKeys", keys = [banner, "site-banner", maintenance, b2])]
pub struct FuzzKeys {
    pub on: bool,
}

/// Whether free key text passes the documented rules: non-empty, at most
/// 256 bytes, no control characters.
fn free_key_ok(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && !text.chars().any(char::is_control)
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let declared = FuzzKeysKey::ALL_STR.contains(&text);
    match FuzzKeysKey::from_str(text) {
        Ok(key) => {
            assert!(declared, "{text:?} parsed as a key");
            assert_eq!(key.as_str(), text);
            assert_eq!(key.to_string(), text);
        }
        Err(e) => {
            assert!(!declared, "declared key {text:?} refused: {e}");
            assert_eq!(e.code(), ErrorCode::InvalidKey);
            let _ = e.to_string();
        }
    }
    // serde reads the key text the same way.
    let json = serde_json::to_string(text).expect("a string serializes");
    let by_serde = serde_json::from_str::<FuzzKeysKey>(&json).ok();
    assert_eq!(
        by_serde,
        FuzzKeysKey::from_str(text).ok(),
        "serde and FromStr differ on {text:?}"
    );
    match String::parse_key("fuzzFree", text) {
        Ok(key) => {
            assert!(free_key_ok(text), "free key {text:?} accepted");
            assert_eq!(key, text);
        }
        Err(e) => {
            assert!(!free_key_ok(text), "free key {text:?} refused: {e}");
            assert_eq!(e.code(), ErrorCode::InvalidKey);
            let _ = e.to_string();
        }
    }
}
