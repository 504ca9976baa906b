//! `#[derive(Quota)]`: parse `#[quota(...)]`, check, emit `impl
//! QuotaSchema`. Small enough for one file; the stages are the same as the
//! other derives'.

use darling::{Error, FromMeta};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Meta, Token};

use crate::{attr, case};

/// Every option name of `#[quota(...)]`.
const OPTIONS: &[&str] = &["max", "window", "name", "owner"];

/// The longest quota window: a year.
const MAX_DAYS: u64 = 366;

/// The parsed and checked `#[quota(...)]`.
struct Options {
    max: Option<u32>,
    /// Whether `max` was written at all (valid or not).
    max_given: bool,
    window_ms: u64,
    name: Option<(String, Span)>,
    owner: Option<syn::Type>,
}

pub fn derive(node: &syn::DeriveInput) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    let options = parse(&node.attrs, &mut errors);
    let mut ok = true;
    if !matches!(node.data, syn::Data::Struct(_)) {
        ok = false;
        errors.push(
            Error::custom(
                "`#[derive(Quota)]` goes on a struct, usually a unit one: `struct Votes;`",
            )
            .with_span(&node.ident),
        );
    }
    if !node.generics.params.is_empty() {
        ok = false;
        errors.push(
            Error::custom("a quota cannot be generic: it is counted under one name; declare one struct per quota")
                .with_span(&node.generics),
        );
    }
    let name = match &options.name {
        Some((name, span)) => {
            crate::valid::stored_name(name, "a quota name", "votes", *span, &mut errors);
            name.clone()
        }
        None => case::lower_camel(node.ident.to_string().trim_start_matches("r#")),
    };
    let max = match options.max {
        Some(max) => max,
        // Given but refused: that error was reported already.
        None if options.max_given => {
            ok = false;
            0
        }
        None => {
            ok = false;
            errors.push(
                Error::custom(
                    "a quota needs its size: `#[quota(max = 5, window = \"1h\")]` admits 5 uses \
                     per owner in any hour",
                )
                .with_span(&node.ident),
            );
            0
        }
    };
    let imp = ok.then(|| {
        let ident = &node.ident;
        let window_ms = options.window_ms;
        let owner = match &options.owner {
            Some(ty) => quote!(#ty),
            None => quote!(str),
        };
        quote! {
            impl ::kv_runtime::QuotaSchema for #ident {
                type Owner = #owner;
                const NAME: &'static str = #name;
                const MAX: u32 = #max;
                const WINDOW_MS: u64 = #window_ms;
            }
        }
    });
    let errors = match errors.finish() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.write_errors(),
    };
    quote!(#imp #errors)
}

fn parse(attrs: &[syn::Attribute], errors: &mut darling::error::Accumulator) -> Options {
    let mut options = Options {
        max: None,
        max_given: false,
        window_ms: 60_000,
        name: None,
        owner: None,
    };
    let mut seen: Vec<String> = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("quota")) {
        let metas = match a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
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
                "max" => {
                    options.max_given = true;
                    u32::from_meta(&meta).and_then(|n| {
                        if n == 0 {
                            Err(Error::custom(
                                "a quota of 0 would refuse every use; allow at least 1",
                            )
                            .with_span(&value_span(&meta)))
                        } else {
                            options.max = Some(n);
                            Ok(())
                        }
                    })
                }
                "window" => String::from_meta(&meta).and_then(|text| {
                    attr::parse_window(&text, MAX_DAYS)
                        .map(|ms| options.window_ms = ms)
                        .map_err(|msg| Error::custom(msg).with_span(&value_span(&meta)))
                }),
                "name" => {
                    String::from_meta(&meta).map(|n| options.name = Some((n, value_span(&meta))))
                }
                "owner" => parse_owner(&meta).map(|t| options.owner = Some(t)),
                _ => Err(Error::unknown_field_with_alts(&name, OPTIONS).with_span(&meta.path())),
            };
            if let Err(e) = result {
                errors.push(e.with_span(&meta));
            }
        }
    }
    options
}

fn parse_owner(meta: &Meta) -> darling::Result<syn::Type> {
    let help = "expected `owner = Type`, a type that implements `Display` (such as `UserId`)";
    let Meta::NameValue(nv) = meta else {
        return Err(Error::custom(help).with_span(meta));
    };
    match &nv.value {
        Expr::Path(p) if p.qself.is_none() => Ok(syn::Type::Path(syn::TypePath {
            qself: None,
            path: p.path.clone(),
        })),
        other => Err(Error::custom(help).with_span(other)),
    }
}

fn value_span(meta: &Meta) -> Span {
    match meta {
        Meta::NameValue(nv) => nv.value.span(),
        other => other.span(),
    }
}
