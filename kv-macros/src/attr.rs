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
];

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
            let result = match name.as_str() {
                "table" => {
                    String::from_meta(&meta).map(|t| options.table = Some((t, value_span(&meta))))
                }
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
                _ => Err(Error::unknown_field_with_alts(
                    &meta.path().to_token_stream_string(),
                    OPTIONS,
                )
                .with_span(&meta.path())),
            };
            if let Err(e) = result {
                errors.push(e.with_span(&meta));
            }
        }
    }
    options
}

/// Rejects `#[kv(...)]` on fields: no field options exist yet.
pub fn reject_field_attrs(field: &syn::Field, errors: &mut darling::error::Accumulator) {
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("kv")) {
        errors.push(
            Error::custom(
                "`#[kv(...)]` takes no options on a field; put table options on the struct",
            )
            .with_span(attr),
        );
    }
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
        return Err(
            Error::custom("expected a list of keys in brackets: `keys = [banner, maintenance]`")
                .with_span(&nv.value),
        );
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
