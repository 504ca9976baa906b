#![doc = include_str!("../../docs/web.md")]

mod client;
mod errors;
mod router;
mod sse;

pub use client::Client;
pub use errors::{codes, ApiError};
pub use router::{router, ContextFn, KvRouter, BODY_LIMIT_MARGIN};
