//! Code generation: parse, validate, emit, in a straight line.
//!
//! Generated code is small: the key enum with its trait impls, a constant
//! checking a key's text against the runtime's key rules for each key that
//! might break one, the `KvSchema` impl with constants, and a row alias. Behaviour lives in
//! `kv-runtime`. Everything is named by absolute path.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use crate::ast::{Derive, Input};
use crate::attr::WriteRoleOpt;
use crate::valid::{self, Checked};

pub fn derive(node: &syn::DeriveInput) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    let input = Input::from_syn(node, Derive::Kv, &mut errors);
    let model = valid::check(input, &mut errors);

    let key_enum = model
        .keys
        .as_ref()
        .map(|keys| key_enum(&model, keys))
        .unwrap_or_default();
    let schema = if model.input.is_table {
        let version = version_impl(model.input.ident, &model.version);
        let schema = schema_impl(&model);
        quote!(#version #schema)
    } else {
        TokenStream::new()
    };
    let errors = match errors.finish() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.write_errors(),
    };
    quote! {
        #key_enum
        #schema
        #errors
    }
}

fn key_enum_ident(input: &Input<'_>) -> syn::Ident {
    format_ident!("{}Key", input.ident)
}

fn key_enum(model: &Checked<'_>, keys: &[valid::Key]) -> TokenStream {
    let input = &model.input;
    let table = &model.table;
    let vis = input.vis;
    let ident = key_enum_ident(input);
    let doc = format!("The keys of table `{table}` ([`{}`]).", input.ident);
    // The key text rules live in the runtime; a key that may break one is
    // checked against them in a constant, so a bad key is a compile error
    // at its token. Constants cost compile time (each is type-checked and
    // evaluated), so keys that cannot break any rule get none.
    let key_rules = keys
        .iter()
        .filter(|k| may_break_key_rules(&k.text))
        .map(|k| {
            let text = &k.text;
            quote_spanned! {k.span=>
                const _: () = if let ::core::option::Option::Some(problem) =
                    ::kv_runtime::__private::key_problem(#text)
                {
                    ::core::panic!("{}", problem)
                };
            }
        });
    let variants = keys.iter().map(|k| {
        let v = &k.variant;
        let doc = format!("Key `{}`.", k.text);
        quote!(#[doc = #doc] #v)
    });
    let arms = keys.iter().map(|k| {
        let v = &k.variant;
        let text = &k.text;
        quote!(Self::#v => #text)
    });
    let parse_arms = keys.iter().map(|k| {
        let v = &k.variant;
        let text = &k.text;
        quote!(#text => ::core::result::Result::Ok(Self::#v))
    });
    let all = keys.iter().map(|k| {
        let v = &k.variant;
        quote!(Self::#v)
    });
    let texts = keys.iter().map(|k| &k.text);
    quote! {
        #(#key_rules)*

        #[doc = #doc]
        #[derive(::core::clone::Clone, ::core::marker::Copy, ::core::fmt::Debug,
                 ::core::cmp::PartialEq, ::core::cmp::Eq, ::core::hash::Hash)]
        #vis enum #ident {
            #(#variants,)*
        }

        impl #ident {
            /// Every key, in declaration order.
            pub const ALL: &'static [Self] = &[#(#all),*];
            /// Every key's text, in declaration order.
            pub const ALL_STR: &'static [&'static str] = &[#(#texts),*];

            /// The exact key text, as stored.
            // Every function emitted here is `#[inline]`: compiled only
            // where a program uses it, not once per declared table.
            #[inline]
            pub const fn as_str(&self) -> &'static str {
                match *self { #(#arms,)* }
            }
        }

        impl ::kv_runtime::KvKey for #ident {
            const KEYS: ::core::option::Option<&'static [&'static str]> =
                ::core::option::Option::Some(Self::ALL_STR);
            #[inline]
            fn as_str(&self) -> &str {
                #ident::as_str(self)
            }
            #[inline]
            fn parse_key(table: &'static str, text: &str) -> ::kv_runtime::Result<Self> {
                match text {
                    #(#parse_arms,)*
                    _ => ::core::result::Result::Err(
                        ::kv_runtime::__private::unknown_key(table, text, Self::ALL_STR)),
                }
            }
        }

        impl ::core::fmt::Display for #ident {
            #[inline]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::str::FromStr for #ident {
            type Err = ::kv_runtime::Error;
            #[inline]
            fn from_str(text: &str) -> ::kv_runtime::Result<Self> {
                <Self as ::kv_runtime::KvKey>::parse_key(#table, text)
            }
        }

        impl ::core::cmp::PartialOrd for #ident {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> ::core::option::Option<::core::cmp::Ordering> {
                ::core::option::Option::Some(::core::cmp::Ord::cmp(self, other))
            }
        }

        /// Keys order by their text, as rows are listed.
        impl ::core::cmp::Ord for #ident {
            #[inline]
            fn cmp(&self, other: &Self) -> ::core::cmp::Ordering {
                ::core::cmp::Ord::cmp(self.as_str(), other.as_str())
            }
        }

        impl ::kv_runtime::__private::serde::Serialize for #ident {
            fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: ::kv_runtime::__private::serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::kv_runtime::__private::serde::Deserialize<'de> for #ident {
            fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
            where
                D: ::kv_runtime::__private::serde::Deserializer<'de>,
            {
                ::kv_runtime::__private::deserialize_key(deserializer, #table)
            }
        }
    }
}

/// Whether key text may break one of the runtime's key rules (empty, at
/// most `MAX_KEY_BYTES` bytes, no control characters): a superset of the
/// keys `key_problem` refuses, so that every such key gets its check. Plain
/// keys (`banner`, `maintenance-window`) get none. Should a rule be added
/// to `key_problem`, widen this too; the `tests/ui/keys` cases fail
/// otherwise.
fn may_break_key_rules(text: &str) -> bool {
    text.is_empty() || text.len() > 128 || text.bytes().any(|b| b < 0x20 || b == 0x7F || b >= 0x80)
}

/// `#[derive(KvVersion)]`: a previous version of a table's value type,
/// kept to read old rows. Only `version` and `from` apply.
pub fn derive_version(node: &syn::DeriveInput) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    let options = crate::attr::parse_container(&node.attrs, Derive::Kv, &mut errors);
    crate::attr::only_version_options(&node.attrs, &mut errors);
    if options.version.is_none() {
        errors.push(
            darling::Error::custom(
                "a previous version needs its number: `#[kv(version = N)]` (and `from = Older` \
                 unless it is the first)",
            )
            .with_span(&node.ident),
        );
    }
    if !node.generics.params.is_empty() {
        errors.push(
            darling::Error::custom("a schema version cannot be generic").with_span(&node.generics),
        );
    }
    let version = valid::version(&options, node.ident.span(), &mut errors);
    let imp = if node.generics.params.is_empty() {
        version_impl(&node.ident, &version)
    } else {
        TokenStream::new()
    };
    let errors = match errors.finish() {
        Ok(()) => TokenStream::new(),
        Err(e) => e.write_errors(),
    };
    quote!(#imp #errors)
}

/// `impl KvVersion`, and for `from`, a constant checking that the previous
/// version is older.
pub(crate) fn version_impl(ident: &syn::Ident, version: &valid::Version) -> TokenStream {
    let number = version.number;
    let decode = match &version.from {
        None => quote! {
            ::kv_runtime::__private::decode_first::<Self>(#number, stored, json)
        },
        Some(from) => quote! {
            ::kv_runtime::__private::decode_next::<Self, #from>(#number, stored, json)
        },
    };
    let order = version.from.as_ref().map(|from| {
        let message = format!(
            "`from` must name an older version: its `version` must be below {number} (versions \
             go up, one type each)"
        );
        let span = syn::spanned::Spanned::span(from);
        quote_spanned! {span=>
            const _: () = ::core::assert!(
                <#from as ::kv_runtime::KvVersion>::VERSION < #number,
                #message
            );
        }
    });
    quote! {
        impl ::kv_runtime::KvVersion for #ident {
            const VERSION: u32 = #number;
            // Inline: not compiled until a program reads the type, so a
            // crate declaring many tables does not pay for serde_json's
            // decoder of each one up front.
            #[inline]
            fn decode_version(
                stored: u32,
                json: &str,
            ) -> ::core::result::Result<Self, ::kv_runtime::VersionError> {
                #decode
            }
        }
        #order
    }
}

fn schema_impl(model: &Checked<'_>) -> TokenStream {
    let Checked {
        input,
        table,
        keys,
        clean_files,
        ..
    } = model;
    let ident = input.ident;
    let vis = input.vis;
    let key_ty = if keys.is_some() {
        let k = key_enum_ident(input);
        quote!(#k)
    } else {
        quote!(::std::string::String)
    };
    let soft_delete = input.options.soft_delete;
    let write_role = role_tokens(&input.options.write_role);
    let predicate = predicate_fn("write_predicate", &input.options.write_role);
    let max_bytes = max_bytes_const(input);
    let validate = validate_fn(input);
    let rate_limit = rate_limit_const(input);
    let file_ids = (!input.file_fields.is_empty()).then(|| {
        let collect = input.file_fields.iter().map(|f| {
            let name = f.ident.as_ref().expect("named fields have names");
            let span = syn::spanned::Spanned::span(&f.ty);
            quote_spanned!(span=> ::kv_runtime::files::FileField::collect_file_ids(&self.#name, out);)
        });
        quote! {
            const CLEAN_FILES: bool = #clean_files;
            #[inline]
            fn file_ids<'a>(&'a self, out: &mut ::std::vec::Vec<&'a str>) {
                #(#collect)*
            }
        }
    });
    let soft = soft_delete.then(|| {
        quote! {
            #[diagnostic::do_not_recommend]
            impl ::kv_runtime::SoftDelete for #ident {}
        }
    });
    let history = input.options.history.as_ref().map(|h| {
        let keep = match (h.keep, h.keep_for_ms) {
            (Some(n), _) => quote!(::core::option::Option::Some(#n)),
            // A bare `history`.
            (None, None) => {
                quote!(::core::option::Option::Some(
                    ::kv_runtime::DEFAULT_HISTORY_KEEP
                ))
            }
            (None, Some(_)) => quote!(::core::option::Option::None),
        };
        let keep_for_ms = match h.keep_for_ms {
            Some(ms) => quote!(::core::option::Option::Some(#ms)),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            const HISTORY: ::core::option::Option<::kv_runtime::HistoryPolicy> =
                ::core::option::Option::Some(::kv_runtime::HistoryPolicy {
                    keep: #keep,
                    keep_for_ms: #keep_for_ms,
                });
        }
    });
    let history_marker = input.options.history.is_some().then(|| {
        quote! {
            #[diagnostic::do_not_recommend]
            impl ::kv_runtime::History for #ident {}
        }
    });
    let row_alias = format_ident!("{}Row", ident);
    let row_doc = format!("A stored row of table `{table}`.");
    quote! {
        impl ::kv_runtime::KvSchema for #ident {
            type Key = #key_ty;
            const TABLE: &'static str = #table;
            const SOFT_DELETE: bool = #soft_delete;
            const WRITE_ROLE: ::kv_runtime::WriteRole = #write_role;
            #max_bytes
            #rate_limit
            #history
            #file_ids
            #predicate
            #validate
        }
        #soft
        #history_marker
        #[doc = #row_doc]
        #vis type #row_alias = ::kv_runtime::Row<#ident>;
    }
}

/// A `write_role` (or `read_role`) as a `WriteRole` value.
pub(crate) fn role_tokens(role: &WriteRoleOpt) -> TokenStream {
    match role {
        WriteRoleOpt::Internal => quote!(::kv_runtime::WriteRole::Internal),
        WriteRoleOpt::Public => quote!(::kv_runtime::WriteRole::Public),
        WriteRoleOpt::Role(r) => quote!(::kv_runtime::WriteRole::Role(#r)),
        WriteRoleOpt::Predicate(p) => {
            let text = quote!(#p).to_string().replace(' ', "");
            quote!(::kv_runtime::WriteRole::Predicate(#text))
        }
    }
}

/// For a predicate role, the trait method `name` calling it; else nothing.
pub(crate) fn predicate_fn(name: &str, role: &WriteRoleOpt) -> TokenStream {
    match role {
        WriteRoleOpt::Predicate(p) => {
            let name = format_ident!("{}", name);
            let span = syn::spanned::Spanned::span(p);
            let call = quote_spanned!(span=> ::kv_runtime::__private::resolve_predicate(#p(ctx)));
            quote! {
                #[inline]
                fn #name(ctx: &::kv_runtime::Ctx) -> ::kv_runtime::BoxFuture<'_, bool> {
                    ::std::boxed::Box::pin(async move { #call.await })
                }
            }
        }
        _ => TokenStream::new(),
    }
}

/// `const MAX_VALUE_BYTES` when `max_value_bytes` is given.
pub(crate) fn max_bytes_const(input: &Input<'_>) -> Option<TokenStream> {
    input
        .options
        .max_value_bytes
        .map(|n| quote!(const MAX_VALUE_BYTES: usize = #n;))
}

/// `fn validate_value` running garde, when a `#[garde]` attribute is there.
pub(crate) fn validate_fn(input: &Input<'_>) -> Option<TokenStream> {
    input.has_garde.then(|| {
        quote! {
            #[inline]
            fn validate_value(&self) -> ::core::result::Result<(), ::std::vec::Vec<::kv_runtime::FieldError>> {
                ::garde::Validate::validate(self).map_err(|report| {
                    report
                        .iter()
                        .map(|(path, error)| ::kv_runtime::__private::field_error(path, error.message()))
                        .collect()
                })
            }
        }
    })
}

/// `const RATE_LIMIT` when `rate_limit` is given.
pub(crate) fn rate_limit_const(input: &Input<'_>) -> Option<TokenStream> {
    input.options.rate_limit.as_ref().map(|r| {
        let (max, window_ms) = (r.max, r.window_ms);
        quote! {
            const RATE_LIMIT: ::core::option::Option<::kv_runtime::RateLimit> =
                ::core::option::Option::Some(::kv_runtime::RateLimit { max: #max, window_ms: #window_ms });
        }
    })
}
