//! Between typed values and stored rows: validation and encoding on the way
//! in, one decoder on the way out.

use std::sync::Arc;

use serde::Serialize;

use crate::backend::{Payload, RawRow};
use crate::error::{Error, FieldError, Result};
use crate::row::Row;
use crate::schema::{KvKey, KvSchema};
use crate::version::KvVersion;

/// Validates a value (its field constraints, then its size as JSON) and
/// encodes it for storage. The payload keeps the value itself beside its
/// JSON, so that rows this process wrote read back without decoding.
pub(crate) fn encode<S: KvSchema>(value: &S) -> Result<Payload> {
    encode_value(S::TABLE, S::MAX_VALUE_BYTES, value.validate_value(), value)
}

/// [`encode`] for any value type of a table or log: `validated` is the
/// outcome of its field constraints, `max_bytes` its size limit.
pub(crate) fn encode_value<T: KvVersion + Serialize + Clone>(
    table: &'static str,
    max_bytes: usize,
    validated: std::result::Result<(), Vec<FieldError>>,
    value: &T,
) -> Result<Payload> {
    let invalid = |message: String| Error::ValidationFailed {
        table,
        fields: vec![FieldError::new("", message)],
    };
    if let Err(fields) = validated {
        return Err(Error::ValidationFailed { table, fields });
    }
    let json = serde_json::to_string(value)
        .map_err(|e| invalid(format!("the value cannot be serialized: {e}")))?;
    if let Some(path) = nul_path(&json) {
        // PostgreSQL's JSONB cannot hold it; refused everywhere, so that
        // every backend gives the same answer.
        return Err(Error::ValidationFailed {
            table,
            fields: vec![FieldError::new(
                path,
                "text must not contain the NUL character (U+0000)",
            )],
        });
    }
    if json.len() > max_bytes {
        return Err(invalid(format!(
            "the value is {} bytes as JSON; this table accepts at most {max_bytes}",
            json.len(),
        )));
    }
    // Refuse what could not be read back (say, nesting deeper than the JSON
    // decoder accepts), rather than acknowledge a write that is then lost.
    if let Err(e) = serde_json::from_str::<T>(&json) {
        return Err(invalid(format!(
            "the value would not read back from storage: {e}"
        )));
    }
    Ok(Payload::encoded(json, T::VERSION, Arc::new(value.clone())))
}

/// Where the JSON text `json` (as serde_json writes it) holds the NUL
/// character in a string or an object key: `None` when nowhere, else the
/// path of the first such place (`""` for the value itself, `a.b[2]`).
fn nul_path(json: &str) -> Option<String> {
    // Fast scan: NUL is always written as the escape `\u0000`; `\\` (an
    // escaped backslash) is skipped whole so that `\\u0000` is not taken
    // for one.
    let bytes = json.as_bytes();
    let mut i = 0;
    let mut found = false;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1..i + 6) == Some(&b"u0000"[..]) {
                found = true;
                break;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    if !found {
        return None;
    }
    // Rare: find where, for the error.
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(find_nul(&value, String::new()).unwrap_or_default())
}

fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                find_nul(v, here)
            }
        }),
        _ => None,
    }
}

/// The typed key of a stored row; a key the schema does not declare (an
/// orphan of an older schema) is [`Error::Unreadable`].
pub(crate) fn key_of<S: KvSchema>(raw: &RawRow) -> Result<S::Key> {
    S::Key::parse_key(S::TABLE, &raw.key).map_err(|_| {
        Error::unreadable(
            S::TABLE,
            &raw.key,
            raw.value.schema(),
            "the key is not one this schema declares",
        )
    })
}

/// Turns a stored row whose key is `key` into a typed one: the value this
/// process encoded when the payload still holds it, else decoded from the
/// JSON as the version that wrote it and migrated to the current one
/// ([`KvVersion`](crate::KvVersion)). A value that does not decode, or was
/// written by a newer version, is [`Error::Unreadable`].
#[inline]
pub(crate) fn decode<S: KvSchema>(raw: &RawRow, key: S::Key) -> Result<Row<S>> {
    let row = |value| Row {
        value,
        key,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by.clone(),
    };
    // The value this process wrote is cloned straight into the row, not
    // through a `Result` (which, with `Error` beside it, is moved again).
    match cached::<S>(&raw.value) {
        Some(value) => Ok(row(value.clone())),
        None => decode_json(S::TABLE, &raw.key, &raw.value).map(row),
    }
}

/// A stored row taken by value ([`decode_owned`]).
pub(crate) enum Decoded<S: KvSchema> {
    /// A readable row.
    Row(Row<S>),
    /// A key the schema does not declare (an orphan of an older schema):
    /// the key text.
    Orphan(String),
    /// A declared key whose value does not read: the key text and the
    /// [`Error::Unreadable`].
    Unreadable(String, Error),
}

/// [`decode`] taking the stored row by value: its key text becomes the
/// typed key without a copy where the key type holds text
/// ([`KvKey::parse_stored`]), and its fields move.
pub(crate) fn decode_owned<S: KvSchema>(raw: RawRow) -> Decoded<S> {
    let RawRow {
        key,
        value,
        created_at,
        updated_at,
        deleted_at,
        updated_by,
    } = raw;
    let key = match S::Key::parse_stored(S::TABLE, key) {
        Ok(key) => key,
        Err(text) => return Decoded::Orphan(text),
    };
    match decode_value::<S>(S::TABLE, key.as_str(), &value) {
        Ok(value) => Decoded::Row(Row {
            key,
            value,
            created_at,
            updated_at,
            deleted_at,
            updated_by,
        }),
        Err(e) => Decoded::Unreadable(key.as_str().to_owned(), e),
    }
}

/// The value of a payload stored under `key` (for messages) in `table`:
/// the value this process encoded when the payload still holds it, else
/// decoded as the version that wrote it and migrated to `T`'s. `key` is
/// written out only for an error (a log entry's name is built from its
/// parent and number, which a page of entries would otherwise format for
/// every entry).
#[inline]
pub(crate) fn decode_value<T: KvVersion + Clone>(
    table: &'static str,
    key: impl std::fmt::Display,
    payload: &Payload,
) -> Result<T> {
    match cached::<T>(payload) {
        Some(value) => Ok(value.clone()),
        None => decode_json(table, key, payload),
    }
}

/// The value this process encoded, while the payload still holds it and
/// it is of `T`'s version.
#[inline]
fn cached<T: KvVersion>(payload: &Payload) -> Option<&T> {
    payload
        .typed::<T>()
        .filter(|_| payload.schema() == T::VERSION)
}

/// [`decode_value`] from the payload's JSON: out of line, so that the
/// callers inlining the cached case do not carry serde's decoder.
#[inline(never)]
fn decode_json<T: KvVersion>(
    table: &'static str,
    key: impl std::fmt::Display,
    payload: &Payload,
) -> Result<T> {
    T::decode_version(payload.schema(), payload.json())
        .map_err(|e| Error::unreadable(table, &key.to_string(), payload.schema(), e))
}

/// [`decode`] with the key read from the row ([`key_of`]).
pub(crate) fn decode_row<S: KvSchema>(raw: &RawRow) -> Result<Row<S>> {
    decode(raw, key_of::<S>(raw)?)
}

#[cfg(test)]
mod tests {
    use super::nul_path;

    #[test]
    fn finds_nul_in_strings_and_keys_only() {
        let text = |v: serde_json::Value| serde_json::to_string(&v).unwrap();
        assert_eq!(nul_path(&text(serde_json::json!({"a": "x"}))), None);
        // A backslash followed by "u0000" is not a NUL.
        assert_eq!(nul_path(&text(serde_json::json!({"a": "\\u0000"}))), None);
        assert_eq!(
            nul_path(&text(serde_json::json!("a\0b"))),
            Some(String::new())
        );
        assert_eq!(
            nul_path(&text(serde_json::json!({"a": {"b": ["ok", "n\0"]}}))),
            Some("a.b[1]".to_owned())
        );
        assert_eq!(
            nul_path(&text(serde_json::json!({"k\0": 1}))),
            Some("k\0".to_owned())
        );
    }
}
