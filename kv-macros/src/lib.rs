//! The `#[derive(Kv)]`, `#[derive(Log)]` and `#[derive(Quota)]` macros. Use
//! them through `kv-runtime`, which re-exports them and documents every
//! option.
//!
//! The derive is staged like thiserror's: [`ast`] reads the struct, [`attr`]
//! parses `#[kv(...)]`, [`valid`] runs every check and returns the checked
//! model, [`expand`] emits code from it. Every mistake is collected and
//! reported together; alongside errors the derive still emits the items
//! other code refers to, so one mistake gives one error.

mod ast;
mod attr;
mod case;
mod expand;
mod log;
mod quota;
mod valid;

use proc_macro::TokenStream;

/// `#[derive(Kv)]` generates the key enum `<Struct>Key` (with `keys = [...]`),
/// `impl KvSchema` (and `SoftDelete` with `soft_delete`) and the row alias
/// `<Struct>Row`. `kv-runtime` re-exports it and documents every option in
/// the "Options" section of its crate documentation.
#[proc_macro_derive(Kv, attributes(kv))]
pub fn derive_kv(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}

/// `#[derive(KvVersion)]` with `#[kv(version = N, from = Older)]` marks a
/// previous version of a table's value type, kept so that rows written by
/// it still read (migrated through `From` into each next version). The
/// table itself says which version it is with `#[derive(Kv)]` and
/// `#[kv(version = N, from = Previous)]`. See "Changing a schema" in the
/// `kv-runtime` documentation.
#[proc_macro_derive(KvVersion, attributes(kv))]
pub fn derive_kv_version(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_version(&input).into()
}

/// `#[derive(Log)]` with `#[log(...)]` makes the struct an append-only log's
/// entry value: `impl LogSchema` (and `LogSoftDelete` with `soft_delete`)
/// and the entry alias `<Struct>Entry`. `kv-runtime` re-exports it and
/// documents every option in the "Logs" section of its crate documentation.
#[proc_macro_derive(Log, attributes(log))]
pub fn derive_log(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    log::derive(&input).into()
}

/// `#[derive(Quota)]` with `#[quota(max = N, window = "1h")]` declares a
/// per-owner sliding-window quota: `impl QuotaSchema`. `kv-runtime`
/// re-exports it and documents every option in the "Quotas" section of its
/// crate documentation.
#[proc_macro_derive(Quota, attributes(quota))]
pub fn derive_quota(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    quota::derive(&input).into()
}
