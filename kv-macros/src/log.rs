//! `#[derive(Log)]`: the same stages as `#[derive(Kv)]` (the input model,
//! the `#[log(...)]` options and the checks are shared), emitting
//! `impl LogSchema`, `impl LogSoftDelete` with `soft_delete`, and the entry
//! alias `<Struct>Entry`. Behaviour lives in `kv-runtime`'s `Log`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ast::{Derive, Input};
use crate::expand::{
    max_bytes_const, predicate_fn, rate_limit_const, role_tokens, validate_fn, version_impl,
};
use crate::valid::{self, Checked};

pub fn derive(node: &syn::DeriveInput) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    let input = Input::from_syn(node, Derive::Log, &mut errors);
    let model = valid::check(input, &mut errors);
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
        #schema
        #errors
    }
}

fn schema_impl(model: &Checked<'_>) -> TokenStream {
    let Checked { input, table, .. } = model;
    let ident = input.ident;
    let vis = input.vis;
    let options = &input.options;
    let parent = match &options.parent {
        Some(ty) => quote!(#ty),
        None => quote!(::std::string::String),
    };
    let soft_delete = options.soft_delete;
    let write_role = role_tokens(&options.write_role);
    // Reads default to the write role: `public` must be said.
    let read = options.read_role.as_ref().unwrap_or(&options.write_role);
    let read_role = role_tokens(read);
    let write_predicate = predicate_fn("write_predicate", &options.write_role);
    let read_predicate = predicate_fn("read_predicate", read);
    let max_bytes = max_bytes_const(input);
    let validate = validate_fn(input);
    let rate_limit = rate_limit_const(input);
    let soft = soft_delete.then(|| {
        quote! {
            #[diagnostic::do_not_recommend]
            impl ::kv_runtime::LogSoftDelete for #ident {}
        }
    });
    let entry_alias = format_ident!("{}Entry", ident);
    let entry_doc = format!("A stored entry of log `{table}`.");
    quote! {
        impl ::kv_runtime::LogSchema for #ident {
            type Parent = #parent;
            const TABLE: &'static str = #table;
            const SOFT_DELETE: bool = #soft_delete;
            const WRITE_ROLE: ::kv_runtime::WriteRole = #write_role;
            const READ_ROLE: ::kv_runtime::WriteRole = #read_role;
            #max_bytes
            #rate_limit
            #write_predicate
            #read_predicate
            #validate
        }
        #soft
        #[doc = #entry_doc]
        #vis type #entry_alias = ::kv_runtime::LogEntry<#ident>;
    }
}
