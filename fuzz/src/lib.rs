//! The fuzz targets' checks (`../checks/`), and the derive's own modules
//! (`kv-macros/src/`) compiled here at the crate root, where they find
//! each other (`crate::attr`, ...), so that the derive can be called on a
//! parsed `syn::DeriveInput` outside a compiler.

#[path = "../../kv-macros/src/ast.rs"]
mod ast;
#[path = "../../kv-macros/src/attr.rs"]
mod attr;
#[path = "../../kv-macros/src/case.rs"]
mod case;
#[path = "../../kv-macros/src/expand.rs"]
mod expand;
#[path = "../../kv-macros/src/valid.rs"]
mod valid;

#[path = "../checks/mod.rs"]
pub mod checks;
