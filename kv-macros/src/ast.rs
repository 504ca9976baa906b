//! The derive's input, read into a small model that keeps spans.

use darling::Error;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields};

use crate::attr::{self, Options};

/// Which derive reads the input: they share the input's model and most
/// options, each with its own attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derive {
    /// `#[derive(Kv)]` with `#[kv(...)]`: a table.
    Kv,
    /// `#[derive(Log)]` with `#[log(...)]`: a log.
    Log,
}

impl Derive {
    /// The derive's name, as written in `#[derive(...)]`.
    pub fn name(self) -> &'static str {
        match self {
            Derive::Kv => "Kv",
            Derive::Log => "Log",
        }
    }

    /// The name of its attribute.
    pub fn attr(self) -> &'static str {
        match self {
            Derive::Kv => "kv",
            Derive::Log => "log",
        }
    }

    /// What one is called, for messages ("table").
    pub fn noun(self) -> &'static str {
        match self {
            Derive::Kv => "table",
            Derive::Log => "log",
        }
    }

    /// What it makes, for messages ("a kv table").
    pub fn what(self) -> &'static str {
        match self {
            Derive::Kv => "a kv table",
            Derive::Log => "a log",
        }
    }
}

/// A `#[derive(Kv)]` (or `#[derive(Log)]`) input that is a struct with
/// named fields, or the reason it is not (in which case only the key enum
/// can be emitted).
pub struct Input<'a> {
    pub ident: &'a syn::Ident,
    pub vis: &'a syn::Visibility,
    pub options: Options,
    /// Whether the struct can be a table (named fields, no generics).
    pub is_table: bool,
    /// Whether any field or the struct itself carries `#[garde(...)]`.
    pub has_garde: bool,
    /// Fields marked `#[kv(file)]`.
    pub file_fields: Vec<&'a syn::Field>,
}

impl<'a> Input<'a> {
    pub fn from_syn(
        input: &'a DeriveInput,
        derive: Derive,
        errors: &mut darling::error::Accumulator,
    ) -> Self {
        let name = derive.name();
        let options = attr::parse_container(&input.attrs, derive, errors);
        let mut is_table = true;
        let mut has_garde = input.attrs.iter().any(|a| a.path().is_ident("garde"));
        let mut file_fields = Vec::new();
        match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => {
                    for field in &named.named {
                        if attr::parse_field(field, derive, errors) {
                            file_fields.push(field);
                        }
                        has_garde |= field.attrs.iter().any(|a| a.path().is_ident("garde"));
                    }
                }
                Fields::Unnamed(f) => {
                    is_table = false;
                    errors.push(
                        Error::custom(format!(
                            "`#[derive({name})]` needs a struct with named fields; a tuple \
                             struct has no field names to store"
                        ))
                        .with_span(&f.span()),
                    );
                }
                Fields::Unit => {
                    is_table = false;
                    errors.push(
                        Error::custom(format!(
                            "`#[derive({name})]` needs a struct with named fields holding the \
                             value; this struct has none"
                        ))
                        .with_span(&input.ident),
                    );
                }
            },
            Data::Enum(e) => {
                is_table = false;
                let example = match derive {
                    Derive::Kv => "struct Setting { value: MyEnum }",
                    Derive::Log => "struct Message { body: MyEnum }",
                };
                errors.push(
                    Error::custom(format!(
                        "`#[derive({name})]` works on structs: wrap this enum in a struct field \
                         (`{example}`)"
                    ))
                    .with_span(&e.enum_token),
                );
            }
            Data::Union(u) => {
                is_table = false;
                errors.push(
                    Error::custom(format!(
                        "`#[derive({name})]` works on structs with named fields, not unions"
                    ))
                    .with_span(&u.union_token),
                );
            }
        }
        if !input.generics.params.is_empty() {
            is_table = false;
            errors.push(
                Error::custom(format!(
                    "{} cannot be generic: it is stored under one name with one schema; \
                     declare one struct per {}",
                    derive.what(),
                    derive.noun()
                ))
                .with_span(&input.generics),
            );
        }
        Input {
            ident: &input.ident,
            vis: &input.vis,
            options,
            is_table,
            has_garde,
            file_fields,
        }
    }
}
