//! Between typed values and stored rows: validation and encoding on the way
//! in, one decoder on the way out.

use std::sync::Arc;

use crate::backend::{Payload, RawRow};
use crate::error::{Error, FieldError, Result};
use crate::row::Row;
use crate::schema::{KvKey, KvSchema};

/// Validates a value (its field constraints, then its size as JSON) and
/// encodes it for storage. The payload keeps the value itself beside its
/// JSON, so that rows this process wrote read back without decoding.
pub(crate) fn encode<S: KvSchema>(value: &S) -> Result<Payload> {
    let invalid = |message: String| Error::ValidationFailed {
        table: S::TABLE,
        fields: vec![FieldError::new("", message)],
    };
    if let Err(fields) = value.validate_value() {
        return Err(Error::ValidationFailed {
            table: S::TABLE,
            fields,
        });
    }
    let json = serde_json::to_string(value)
        .map_err(|e| invalid(format!("the value cannot be serialized: {e}")))?;
    if json.len() > S::MAX_VALUE_BYTES {
        return Err(invalid(format!(
            "the value is {} bytes as JSON; this table accepts at most {}",
            json.len(),
            S::MAX_VALUE_BYTES
        )));
    }
    // Refuse what could not be read back (say, nesting deeper than the JSON
    // decoder accepts), rather than acknowledge a write that is then lost.
    if let Err(e) = serde_json::from_str::<S>(&json) {
        return Err(invalid(format!(
            "the value would not read back from storage: {e}"
        )));
    }
    Ok(Payload::encoded(json, Arc::new(value.clone())))
}

/// The typed key of a stored row; a key the schema does not declare (an
/// orphan of an older schema) is [`Error::Unreadable`].
pub(crate) fn key_of<S: KvSchema>(raw: &RawRow) -> Result<S::Key> {
    S::Key::parse_key(S::TABLE, &raw.key).map_err(|_| {
        Error::unreadable(
            S::TABLE,
            &raw.key,
            "the key is not one this schema declares",
        )
    })
}

/// Turns a stored row whose key is `key` into a typed one: the value this
/// process encoded when the payload still holds it, else decoded from the
/// JSON. A value that does not decode is [`Error::Unreadable`].
pub(crate) fn decode<S: KvSchema>(raw: &RawRow, key: S::Key) -> Result<Row<S>> {
    let value = match raw.value.typed::<S>() {
        Some(value) => value.clone(),
        None => serde_json::from_str::<S>(raw.value.json())
            .map_err(|e| Error::unreadable(S::TABLE, &raw.key, e))?,
    };
    Ok(Row {
        key,
        value,
        created_at: raw.created_at,
        updated_at: raw.updated_at,
        deleted_at: raw.deleted_at,
        updated_by: raw.updated_by.clone(),
    })
}

/// [`decode`] with the key read from the row ([`key_of`]).
pub(crate) fn decode_row<S: KvSchema>(raw: &RawRow) -> Result<Row<S>> {
    decode(raw, key_of::<S>(raw)?)
}
