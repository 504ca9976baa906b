//! Checks that span several keys or options, behind one entry point,
//! [`check`], which returns the model `expand` emits from.

use darling::Error;
use proc_macro2::Span;

use crate::ast::Input;
use crate::attr::KeySpec;
use crate::case;

/// The input with every check done: what `expand` emits from.
pub struct Checked<'a> {
    pub input: Input<'a>,
    /// The table name: `table = "..."`, or the struct name in lowerCamelCase.
    pub table: String,
    /// The keys of `keys = [...]` that passed, or `None` without `keys`.
    pub keys: Option<Vec<Key>>,
    /// Whether `clean_files` is on and there are `#[kv(file)]` fields.
    pub clean_files: bool,
    /// The schema version (1 unless `version = N`) and what it comes from.
    pub version: Version,
}

/// A checked `version = N` / `from = Older`.
pub struct Version {
    pub number: u32,
    pub from: Option<syn::Path>,
}

/// A checked key: its text, where it was written, and the enum variant it
/// becomes. The key text rules (length, control characters) are the
/// runtime's, checked at compile time by the code `expand` emits.
pub struct Key {
    pub text: String,
    pub span: Span,
    pub variant: syn::Ident,
}

/// Runs every check on the parsed input, pushing problems to `errors`, and
/// returns what passed.
pub fn check<'a>(input: Input<'a>, errors: &mut darling::error::Accumulator) -> Checked<'a> {
    let table = table(&input, errors);
    let clean_files = clean_files(&input, errors);
    let keys = input
        .options
        .keys
        .as_ref()
        .map(|(specs, span)| keys(specs, *span, errors));
    let version = version(&input.options, input.ident.span(), errors);
    Checked {
        input,
        table,
        keys,
        clean_files,
        version,
    }
}

/// `version = N` (at least 1) and `from = Older` (which needs a version
/// above 1). That `Older` is a version, and an older one, is checked by the
/// compiler on the code `expand` emits.
pub fn version(
    options: &crate::attr::Options,
    default_span: Span,
    errors: &mut darling::error::Accumulator,
) -> Version {
    let (number, span) = options.version.unwrap_or((1, default_span));
    if number == 0 {
        errors.push(
            Error::custom("versions start at 1: the first version is `version = 1`")
                .with_span(&span),
        );
    }
    let mut from = options.from.clone();
    if let Some(path) = from.clone() {
        if options.version.is_none() {
            errors.push(
                Error::custom(
                    "`from` names the previous version: give this one its number too, \
                     `version = N` with N above the previous one's",
                )
                .with_span(&path),
            );
            // Reported: no code from it (one mistake, one error).
            from = None;
        } else if number == 1 {
            errors.push(
                Error::custom(
                    "version 1 is the first and comes from nothing: remove `from`, or number \
                     this version above the one it comes from",
                )
                .with_span(&path),
            );
            from = None;
        }
    }
    Version { number, from }
}

/// The table name, checked.
fn table(input: &Input<'_>, errors: &mut darling::error::Accumulator) -> String {
    match &input.options.table {
        Some((name, span)) => {
            table_name(name, *span, errors);
            name.clone()
        }
        None => {
            let ident = input.ident.to_string();
            let name = case::lower_camel(ident.trim_start_matches("r#"));
            table_name(&name, input.ident.span(), errors);
            name
        }
    }
}

/// `clean_files` needs fields marked `#[kv(file)]`.
fn clean_files(input: &Input<'_>, errors: &mut darling::error::Accumulator) -> bool {
    match input.options.clean_files {
        Some(span) if input.file_fields.is_empty() => {
            errors.push(
                Error::custom(
                    "`clean_files` deletes stored files no longer referenced, but no field is \
                     marked `#[kv(file)]`; mark the fields holding file ids, or remove \
                     `clean_files`",
                )
                .with_span(&span),
            );
            false
        }
        Some(_) => true,
        None => false,
    }
}

/// Checks `keys = [...]`: non-empty, each key giving a valid variant name,
/// no duplicates, no two keys with one variant name. Returns the keys that
/// passed.
fn keys(specs: &[KeySpec], list_span: Span, errors: &mut darling::error::Accumulator) -> Vec<Key> {
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
        if name.is_empty() {
            // No variant name at all (an empty key, or only punctuation).
            errors.push(
                Error::custom(format!(
                    "key {:?} has no letters or digits, so it gives no variant name; a key \
                     needs at least one letter",
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
            span: spec.span,
            variant,
        });
    }
    out
}

/// Checks a `table = "..."` name: 1 to 128 ASCII letters, digits, `_` or `-`.
pub fn table_name(name: &str, span: Span, errors: &mut darling::error::Accumulator) {
    stored_name(name, "a table name", "siteConfig", span, errors);
}

/// Checks a name kv stores things under (a table's, a quota's): `what` and
/// `example` word the error for the kind of name.
pub fn stored_name(
    name: &str,
    what: &str,
    example: &str,
    span: Span,
    errors: &mut darling::error::Accumulator,
) {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        errors.push(
            Error::custom(format!(
                "{what} is 1 to 128 ASCII letters, digits, `_` or `-`, such as \"{example}\""
            ))
            .with_span(&span),
        );
    }
}
