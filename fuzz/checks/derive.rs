//! The derive's attribute parser fed any attribute text: `#[derive(Kv)]`
//! and `#[derive(KvVersion)]` answer with compile errors or with code,
//! never a panic, and the code they emit without an error parses as Rust
//! items.
//!
//! The input is the text inside a container attribute `#[kv(...)]`,
//! optionally followed by a line `--` and the text inside a field's
//! `#[kv(...)]`. Text that is not Rust tokens is skipped: rustc would
//! refuse it before any macro ran.

fn derive_input(data: &[u8]) -> Option<syn::DeriveInput> {
    let text = std::str::from_utf8(data).ok()?;
    let (container, field) = match text.split_once("\n--\n") {
        Some((c, f)) => (c, Some(f)),
        None => (text, None),
    };
    let field_attr = field.map_or(String::new(), |f| format!("#[kv({f})]"));
    let source = format!(
        "#[kv({container})]\nstruct Fuzzed {{\n    {field_attr}\n    pub avatar: String,\n    pub n: u32,\n}}"
    );
    syn::parse_str(&source).ok()
}

fn emitted(kind: &str, data: &[u8], tokens: proc_macro2::TokenStream) {
    let text = tokens.to_string();
    if text.contains("compile_error") {
        return;
    }
    if let Err(e) = syn::parse2::<syn::File>(tokens) {
        panic!(
            "{kind} on {:?} emitted code that does not parse ({e}):\n{text}",
            String::from_utf8_lossy(data)
        );
    }
}

pub fn check(data: &[u8]) {
    let Some(input) = derive_input(data) else {
        return;
    };
    emitted("derive(Kv)", data, crate::expand::derive(&input));
    emitted(
        "derive(KvVersion)",
        data,
        crate::expand::derive_version(&input),
    );
}
