//! Checks that span several keys or options.

use darling::Error;
use proc_macro2::Span;

use crate::attr::KeySpec;
use crate::case;

/// Longest key text, in bytes (the runtime's `MAX_KEY_BYTES`).
const MAX_KEY_BYTES: usize = 256;

/// A checked key: its text and the enum variant it becomes.
pub struct Key {
    pub text: String,
    pub variant: syn::Ident,
}

/// Checks `keys = [...]`: non-empty, each key a valid key text giving a
/// valid variant name, no duplicates, no two keys with one variant name.
/// Returns the keys that passed.
pub fn keys(
    specs: &[KeySpec],
    list_span: Span,
    errors: &mut darling::error::Accumulator,
) -> Vec<Key> {
    if specs.is_empty() {
        errors.push(
            Error::custom(
                "`keys = []` declares a table that can hold nothing; list at least one key, \
                 or remove `keys` to accept any string key",
            )
            .with_span(&list_span),
        );
    }
    let mut out: Vec<Key> = Vec::new();
    for spec in specs {
        if let Err(msg) = key_text(&spec.text) {
            errors.push(Error::custom(msg).with_span(&spec.span));
            continue;
        }
        if out.iter().any(|k| k.text == spec.text) {
            errors.push(
                Error::custom(format!("duplicate key `{}`", spec.text)).with_span(&spec.span),
            );
            continue;
        }
        let name = case::upper_camel(&spec.text);
        if name == "ALL" || name == "ALL_STR" {
            errors.push(
                Error::custom(format!(
                    "key `{}` gives the variant name `{name}`, which the key enum already uses \
                     for its list of keys; rename the key",
                    spec.text
                ))
                .with_span(&spec.span),
            );
            continue;
        }
        let variant = match syn::parse_str::<syn::Ident>(&name) {
            Ok(_) if name != "Self" => syn::Ident::new(&name, spec.span),
            _ => {
                let fix = if name.starts_with(|c: char| c.is_alphabetic()) {
                    "it is a Rust keyword; rename the key"
                } else if name.is_empty() {
                    "the key has no letters or digits; add some"
                } else {
                    "start the key with a letter"
                };
                errors.push(
                    Error::custom(format!(
                        "key `{}` gives the variant name `{name}`, which is not a valid Rust \
                         identifier: {fix}",
                        spec.text
                    ))
                    .with_span(&spec.span),
                );
                continue;
            }
        };
        if let Some(first) = out.iter().find(|k| k.variant == variant) {
            errors.push(
                Error::custom(format!(
                    "keys `{}` and `{}` both become the variant `{name}`; rename one of them",
                    first.text, spec.text
                ))
                .with_span(&spec.span),
            );
            continue;
        }
        out.push(Key {
            text: spec.text.clone(),
            variant,
        });
    }
    out
}

fn key_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("a key must not be empty".into());
    }
    if text.len() > MAX_KEY_BYTES {
        return Err(format!("a key is at most {MAX_KEY_BYTES} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err("a key must not contain control characters".into());
    }
    Ok(())
}

/// Checks a `table = "..."` name: 1 to 128 ASCII letters, digits, `_` or `-`.
pub fn table_name(name: &str, span: Span, errors: &mut darling::error::Accumulator) {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        errors.push(
            Error::custom(
                "a table name is 1 to 128 ASCII letters, digits, `_` or `-`, such as \"siteConfig\"",
            )
            .with_span(&span),
        );
    }
}
