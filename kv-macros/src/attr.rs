//! Parsing of the container attribute `#[kv(...)]`.
//!
//! Each option is parsed on its own so that every mistake is reported in
//! one build, and so that the options that did parse still drive the
//! expansion next to the errors.

use darling::{Error, FromMeta};
use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, Meta, Token};

/// Every option name, for "did you mean" suggestions.
const OPTIONS: &[&str] = &[
    "table",
    "keys",
    "write_role",
    "soft_delete",
    "max_value_bytes",
    "rate_limit",
    "clean_files",
    "version",
    "from",
    "history",
];

/// The longest rate-limit window accepted: one day.
const MAX_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// The longest history retention accepted (`keep_for`): 100 years, as for
/// a purge's retention.
const MAX_KEEP_FOR_MS: u64 = 100 * 365 * 24 * 60 * 60 * 1000;

/// The parsed `#[kv(...)]` options.
#[derive(Default)]
pub struct Options {
    /// `table = "name"` and the span of its value.
    pub table: Option<(String, Span)>,
    /// `keys = [...]`, with the span of the whole list.
    pub keys: Option<(Vec<KeySpec>, Span)>,
    /// `write_role = ...`.
    pub write_role: WriteRoleOpt,
    /// `soft_delete`.
    pub soft_delete: bool,
    /// `max_value_bytes = N`.
    pub max_value_bytes: Option<usize>,
    /// `rate_limit = N` or `rate_limit(max = N, window = "30s")`.
    pub rate_limit: Option<RateLimitOpt>,
    /// `clean_files`, with the span of the word for errors.
    pub clean_files: Option<Span>,
    /// `version = N`, with the span of the value.
    pub version: Option<(u32, Span)>,
    /// `from = path::To::Older`.
    pub from: Option<syn::Path>,
    /// `history`, `history(keep = N)`, `history(keep_for = "30d")`.
    pub history: Option<HistoryOpt>,
}

/// A parsed `history` option: how many records per row, and for how long.
/// Neither is set for a bare `history`, which keeps the runtime's default
/// number (`kv_runtime::DEFAULT_HISTORY_KEEP`).
pub struct HistoryOpt {
    pub keep: Option<u32>,
    pub keep_for_ms: Option<u64>,
}

/// A parsed rate limit: `max` writes per `window_ms`.
pub struct RateLimitOpt {
    pub max: u32,
    pub window_ms: u64,
}

/// One key of `keys = [...]`: its text and where it was written.
pub struct KeySpec {
    pub text: String,
    pub span: Span,
}

/// The forms of `write_role`.
#[derive(Default)]
pub enum WriteRoleOpt {
    /// Omitted or `internal`.
    #[default]
    Internal,
    /// `public`.
    Public,
    /// `admin` or `"content-editor"`.
    Role(String),
    /// `write_role(predicate = path::to::fn)`.
    Predicate(syn::Path),
}

const WRITE_ROLE_HELP: &str = "expected `write_role = <role name>` (such as `admin` or \
     \"content-editor\"), `write_role = public`, `write_role = internal`, or \
     `write_role(predicate = path::to::function)`";

/// Parses every `#[kv(...)]` attribute of the container into `options`.
pub fn parse_container(
    attrs: &[syn::Attribute],
    errors: &mut darling::error::Accumulator,
) -> Options {
    let mut options = Options::default();
    let mut seen: Vec<String> = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("kv")) {
        let metas = match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => metas,
            Err(e) => {
                errors.push(Error::from(e));
                continue;
            }
        };
        for meta in metas {
            let name = meta
                .path()
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            if seen.contains(&name) {
                errors.push(
                    Error::custom(format!("the option `{name}` is given twice"))
                        .with_span(&meta.path()),
                );
                continue;
            }
            seen.push(name.clone());
            let result =
                match name.as_str() {
                    "table" => String::from_meta(&meta)
                        .map(|t| options.table = Some((t, value_span(&meta)))),
                    "keys" => parse_keys(&meta, errors).map(|k| options.keys = Some(k)),
                    "write_role" => parse_write_role(&meta).map(|w| options.write_role = w),
                    "soft_delete" => {
                        darling::util::Flag::from_meta(&meta).map(|_| options.soft_delete = true)
                    }
                    "max_value_bytes" => usize::from_meta(&meta).and_then(|n| {
                        if n == 0 {
                            Err(Error::custom("`max_value_bytes` must be at least 1")
                                .with_span(&value_span(&meta)))
                        } else {
                            options.max_value_bytes = Some(n);
                            Ok(())
                        }
                    }),
                    "rate_limit" => parse_rate_limit(&meta).map(|r| options.rate_limit = Some(r)),
                    "version" => u32::from_meta(&meta)
                        .map(|n| options.version = Some((n, value_span(&meta)))),
                    "from" => syn::Path::from_meta(&meta).map(|p| options.from = Some(p)),
                    "clean_files" => darling::util::Flag::from_meta(&meta)
                        .map(|_| options.clean_files = Some(meta.path().span())),
                    "history" => parse_history(&meta).map(|h| options.history = Some(h)),
                    _ => Err(unknown_option(&meta.path().to_token_stream_string())
                        .with_span(&meta.path())),
                };
            if let Err(e) = result {
                errors.push(e.with_span(&meta));
            }
        }
    }
    options
}

/// An unknown option: darling's "did you mean" when one is close, else
/// every option by name (darling stops listing them past nine).
fn unknown_option(name: &str) -> Error {
    let error = Error::unknown_field_with_alts(name, OPTIONS);
    if error.to_string().contains("Did you mean") {
        return error;
    }
    let mut names: Vec<&str> = OPTIONS.to_vec();
    names.sort_unstable();
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    Error::custom(format!(
        "Unknown field: `{name}`. Available values: {}",
        names.join(", ")
    ))
}

/// Refuses, on a previous version (`#[derive(KvVersion)]`), every option
/// but `version` and `from`: the rest belong to the table.
pub fn only_version_options(attrs: &[syn::Attribute], errors: &mut darling::error::Accumulator) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("kv")) {
        let Ok(metas) = attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
        else {
            continue; // reported by parse_container
        };
        for meta in metas {
            let path = meta.path();
            if !(path.is_ident("version") || path.is_ident("from")) {
                errors.push(
                    Error::custom(format!(
                        "`{}` belongs on the table (`#[derive(Kv)]`); a previous version takes \
                         only `version` and `from`",
                        path.to_token_stream_string()
                    ))
                    .with_span(&path),
                );
            }
        }
    }
}

/// Parses `#[kv(...)]` on a field: only `file` exists. Returns whether the
/// field is marked `file`.
pub fn parse_field(field: &syn::Field, errors: &mut darling::error::Accumulator) -> bool {
    let mut is_file = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("kv")) {
        let metas = match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => metas,
            Err(e) => {
                errors.push(Error::from(e));
                continue;
            }
        };
        for meta in metas {
            match &meta {
                Meta::Path(p) if p.is_ident("file") => is_file = true,
                _ => errors.push(
                    Error::unknown_field_with_alts(
                        &meta.path().to_token_stream_string(),
                        &["file"],
                    )
                    .with_span(&meta),
                ),
            }
        }
    }
    is_file
}

fn value_span(meta: &Meta) -> Span {
    match meta {
        Meta::NameValue(nv) => nv.value.span(),
        other => other.span(),
    }
}

/// Parses `keys = [...]`. Malformed elements are reported and skipped, so
/// the well-formed keys still produce the key enum.
fn parse_keys(
    meta: &Meta,
    errors: &mut darling::error::Accumulator,
) -> darling::Result<(Vec<KeySpec>, Span)> {
    let Meta::NameValue(nv) = meta else {
        return Err(Error::custom("expected `keys = [key, \"other-key\", ...]`").with_span(meta));
    };
    let Expr::Array(array) = &nv.value else {
        return Err(Error::custom(
            "expected a list of keys in brackets: `keys = [banner, maintenance]`",
        )
        .with_span(&nv.value));
    };
    let mut keys = Vec::new();
    for elem in &array.elems {
        match elem {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let ident = p.path.get_ident().expect("checked by the guard");
                keys.push(KeySpec {
                    text: ident.to_string().trim_start_matches("r#").to_owned(),
                    span: ident.span(),
                });
            }
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => keys.push(KeySpec {
                text: s.value(),
                span: s.span(),
            }),
            other => errors.push(
                Error::custom(
                    "a key is an identifier (`banner`) or a string literal (\"site-banner\")",
                )
                .with_span(other),
            ),
        }
    }
    Ok((keys, array.span()))
}

/// Parses `rate_limit = N` (per minute) or `rate_limit(max = N, window = "30s")`.
fn parse_rate_limit(meta: &Meta) -> darling::Result<RateLimitOpt> {
    let (max, window_ms) = match meta {
        Meta::NameValue(nv) => {
            let max = u32::from_expr(&nv.value).map_err(|e| e.with_span(&nv.value))?;
            (max, 60_000)
        }
        Meta::List(list) => {
            #[derive(FromMeta)]
            struct Args {
                max: syn::LitInt,
                window: syn::LitStr,
            }
            let nested = darling::ast::NestedMeta::parse_meta_list(list.tokens.clone())?;
            let args = Args::from_list(&nested)?;
            let max = args.max.base10_parse::<u32>().map_err(|_| {
                Error::custom("`max` is a number of writes, 1 to 4294967295").with_span(&args.max)
            })?;
            let window = parse_window(&args.window.value())
                .map_err(|msg| Error::custom(msg).with_span(&args.window))?;
            (max, window)
        }
        Meta::Path(_) => {
            return Err(Error::custom(
                "expected `rate_limit = N` (writes per minute) or \
                 `rate_limit(max = N, window = \"30s\")`",
            )
            .with_span(meta))
        }
    };
    if max == 0 {
        return Err(Error::custom(
            "a rate limit of 0 would refuse every write; allow at least 1, or remove `rate_limit`",
        )
        .with_span(meta));
    }
    Ok(RateLimitOpt { max, window_ms })
}

/// Parses `history` (keep the default number of records),
/// `history(keep = N)`, `history(keep_for = "30d")` or both.
fn parse_history(meta: &Meta) -> darling::Result<HistoryOpt> {
    let list = match meta {
        Meta::Path(_) => {
            return Ok(HistoryOpt {
                keep: None,
                keep_for_ms: None,
            })
        }
        Meta::List(list) => list,
        Meta::NameValue(_) => {
            return Err(Error::custom(
                "expected `history`, `history(keep = 100)` or `history(keep_for = \"30d\")`",
            )
            .with_span(meta))
        }
    };
    #[derive(FromMeta)]
    struct Args {
        keep: Option<syn::LitInt>,
        keep_for: Option<syn::LitStr>,
    }
    let nested = darling::ast::NestedMeta::parse_meta_list(list.tokens.clone())?;
    let args = Args::from_list(&nested)?;
    let mut errors = Error::accumulator();
    let keep = args.keep.as_ref().and_then(|lit| {
        let problem = match lit.base10_parse::<u32>() {
            Ok(0) => "`keep = 0` would keep no record: keep at least 1, or remove `history`",
            Ok(n) => return Some(n),
            Err(_) => "`keep` is a number of records per row, 1 to 4294967295",
        };
        errors.push(Error::custom(problem).with_span(lit));
        None
    });
    let keep_for_ms = args
        .keep_for
        .as_ref()
        .and_then(|lit| match parse_keep_for(&lit.value()) {
            Ok(ms) => Some(ms),
            Err(msg) => {
                errors.push(Error::custom(msg).with_span(lit));
                None
            }
        });
    errors.finish()?;
    if keep.is_none() && keep_for_ms.is_none() {
        return Err(Error::custom(
            "say how much history to keep: `history(keep = 100)`, `history(keep_for = \"30d\")`, \
             or a bare `history` (the last 100 records per row)",
        )
        .with_span(meta));
    }
    Ok(HistoryOpt { keep, keep_for_ms })
}

/// Parses `"500ms"`, `"30s"`, `"1m"`, `"2h"`, `"1d"` into milliseconds
/// (saturating); `what` names the duration in the message ("a window").
/// The caller checks the bounds.
fn parse_duration(text: &str, what: &str) -> Result<u64, String> {
    let help = || {
        format!(
            "{what} is a whole number and a unit, such as \"500ms\", \"30s\", \"1m\", \"2h\" \
             or \"1d\""
        )
    };
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| help())?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(help()),
    };
    Ok(number.saturating_mul(scale))
}

/// A rate-limit window: between 1 ms and one day.
fn parse_window(text: &str) -> Result<u64, String> {
    let ms = parse_duration(text, "a window")?;
    if ms == 0 {
        return Err("a window of zero length admits nothing; use at least \"1ms\"".into());
    }
    if ms > MAX_WINDOW_MS {
        return Err(format!(
            "a window longer than one day is not supported (got {text}); use \"1d\" or less"
        ));
    }
    Ok(ms)
}

/// A history retention (`keep_for`): between one second and 100 years.
fn parse_keep_for(text: &str) -> Result<u64, String> {
    let ms = parse_duration(text, "a retention")?;
    if ms < 1_000 {
        return Err(
            "history kept for less than a second is no history; keep it at least \"1s\"".into(),
        );
    }
    if ms > MAX_KEEP_FOR_MS {
        return Err(format!(
            "a retention longer than 100 years is not supported (got {text}); use \"36500d\" \
             or less"
        ));
    }
    Ok(ms)
}

fn parse_write_role(meta: &Meta) -> darling::Result<WriteRoleOpt> {
    match meta {
        Meta::NameValue(nv) => match &nv.value {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                let ident = p
                    .path
                    .get_ident()
                    .expect("checked by the guard")
                    .to_string();
                Ok(match ident.as_str() {
                    "public" => WriteRoleOpt::Public,
                    "internal" => WriteRoleOpt::Internal,
                    _ => WriteRoleOpt::Role(ident),
                })
            }
            Expr::Path(p) => Err(Error::custom(format!(
                "a path names a predicate function: write it as `write_role(predicate = {})`",
                p.path.to_token_stream_string()
            ))
            .with_span(&nv.value)),
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => {
                let role = s.value();
                if role.trim().is_empty() || role.chars().any(char::is_control) {
                    Err(
                        Error::custom("a role name must not be empty or hold control characters")
                            .with_span(&s.span()),
                    )
                } else {
                    Ok(WriteRoleOpt::Role(role))
                }
            }
            other => Err(Error::custom(WRITE_ROLE_HELP).with_span(other)),
        },
        Meta::List(list) => {
            #[derive(FromMeta)]
            struct PredicateArgs {
                predicate: syn::Path,
            }
            let nested = darling::ast::NestedMeta::parse_meta_list(list.tokens.clone())?;
            PredicateArgs::from_list(&nested).map(|a| WriteRoleOpt::Predicate(a.predicate))
        }
        Meta::Path(_) => Err(Error::custom(WRITE_ROLE_HELP).with_span(meta)),
    }
}

/// Renders a path as source text (`a::b`).
trait PathText {
    fn to_token_stream_string(&self) -> String;
}

impl PathText for syn::Path {
    fn to_token_stream_string(&self) -> String {
        let segments: Vec<String> = self.segments.iter().map(|s| s.ident.to_string()).collect();
        let lead = if self.leading_colon.is_some() {
            "::"
        } else {
            ""
        };
        format!("{lead}{}", segments.join("::"))
    }
}
