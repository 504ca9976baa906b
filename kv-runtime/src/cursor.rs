//! Opaque pagination cursors: the last key of a page, tagged with its table;
//! for a row's history, the last version of a page, tagged with the table
//! and the key.
//!
//! Formats: `v1.<hex of table name>.<hex of key text>` and
//! `h1.<hex of table name>.<hex of key text>.<version>`. Keyset pagination
//! makes a cursor stay valid while rows (or records) are added or removed.

use crate::error::{Error, Result};

const VERSION: &str = "v1";
/// Longest cursor accepted: a maximal key and table name, hex-encoded.
const MAX_LEN: usize = 4 + 2 * 256 + 1 + 2 * crate::schema::MAX_KEY_BYTES + 8;

pub(crate) fn encode(table: &str, last_key: &str) -> String {
    format!(
        "{VERSION}.{}.{}",
        hex(table.as_bytes()),
        hex(last_key.as_bytes())
    )
}

/// Decodes a cursor of `table` into the key it continues after.
pub(crate) fn decode(table: &'static str, cursor: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidCursor {
        table,
        reason: reason.to_owned(),
    };
    if cursor.len() > MAX_LEN {
        return Err(bad("the cursor is too long"));
    }
    let mut parts = cursor.split('.');
    let (Some(version), Some(t), Some(k), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("the cursor is malformed"));
    };
    if version != VERSION {
        return Err(bad("the cursor is malformed or from another version"));
    }
    let t = unhex(t).ok_or_else(|| bad("the cursor is malformed"))?;
    if t != table.as_bytes() {
        return Err(bad("the cursor belongs to another table"));
    }
    let k = unhex(k).ok_or_else(|| bad("the cursor is malformed"))?;
    let key = String::from_utf8(k).map_err(|_| bad("the cursor is malformed"))?;
    // Only a key can be continued after: anything else (NUL, other control
    // characters, an over-long key) was forged, and would reach the backend.
    if crate::key_rules::key_problem(&key).is_some() {
        return Err(bad("the cursor is malformed"));
    }
    Ok(key)
}

const HISTORY_VERSION: &str = "h1";

/// The cursor continuing `key`'s history after (below) `last_version`.
pub(crate) fn encode_history(table: &str, key: &str, last_version: i64) -> String {
    format!(
        "{HISTORY_VERSION}.{}.{}.{last_version}",
        hex(table.as_bytes()),
        hex(key.as_bytes())
    )
}

/// Decodes a history cursor of `key` in `table` into the version it
/// continues below.
pub(crate) fn decode_history(table: &'static str, key: &str, cursor: &str) -> Result<i64> {
    let bad = |reason: &str| Error::InvalidCursor {
        table,
        reason: reason.to_owned(),
    };
    if cursor.len() > MAX_LEN + 21 {
        return Err(bad("the cursor is too long"));
    }
    let mut parts = cursor.split('.');
    let (Some(version), Some(t), Some(k), Some(v), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("the cursor is malformed"));
    };
    if version != HISTORY_VERSION {
        return Err(bad("the cursor is malformed, or not one of a history"));
    }
    let t = unhex(t).ok_or_else(|| bad("the cursor is malformed"))?;
    if t != table.as_bytes() {
        return Err(bad("the cursor belongs to another table"));
    }
    let k = unhex(k).ok_or_else(|| bad("the cursor is malformed"))?;
    if k != key.as_bytes() {
        return Err(bad("the cursor belongs to another key's history"));
    }
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(bad("the cursor is malformed"));
    }
    v.parse().map_err(|_| bad("the cursor is malformed"))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn round_trips_any_key() {
        for key in [
            "a",
            "banner",
            "🦀 ünïcode",
            "with.dots.and\\back",
            "x".repeat(256).as_str(),
        ] {
            let c = encode("siteConfig", key);
            assert_eq!(decode("siteConfig", &c).unwrap(), key);
        }
    }

    #[test]
    fn history_cursors_round_trip_and_belong_to_one_key() {
        let c = encode_history("siteConfig", "banner", 1_700_000_000_123);
        assert_eq!(
            decode_history("siteConfig", "banner", &c).unwrap(),
            1_700_000_000_123
        );
        let c = encode_history("siteConfig", "a.b", -5);
        assert_eq!(decode_history("siteConfig", "a.b", &c).unwrap(), -5);
        let good = encode_history("siteConfig", "banner", 7);
        for (key, c) in [
            ("other", good.clone()),
            ("banner", encode_history("otherTable", "banner", 7)),
            ("banner", encode("siteConfig", "banner")),
            ("banner", format!("{good}.1")),
            ("banner", good.replace(".7", ".x")),
            ("banner", good.replace(".7", ".")),
            ("banner", good.replace(".7", ".99999999999999999999")),
            ("banner", "h1.".repeat(1_000)),
        ] {
            let err = decode_history("siteConfig", key, &c).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidCursor, "cursor {c:?}");
        }
    }

    #[test]
    fn rejects_malformed_and_foreign_cursors() {
        let good = encode("siteConfig", "banner");
        let cases = [
            String::new(),
            "garbage".into(),
            "v1.zz.00".into(),
            "v2.00.00".into(),
            format!("{good}.extra"),
            encode("otherTable", "banner"),
            "v1.73697465436f6e666967.f".into(),
            "v1.73697465436f6e666967.ff".into(), // not UTF-8
            "v1.".repeat(10_000),
            encode("siteConfig", "a\0b"),
            encode("siteConfig", ""),
            encode("siteConfig", &"x".repeat(257)),
        ];
        for c in cases {
            let err = decode("siteConfig", &c).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidCursor, "cursor {c:?}");
        }
    }
}
