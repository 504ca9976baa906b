//! Opaque pagination cursors: the last key of a page, tagged with its table.
//!
//! Format: `v1.<hex of table name>.<hex of key text>`. Keyset pagination
//! makes a cursor stay valid while rows are added or removed.

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

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
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
