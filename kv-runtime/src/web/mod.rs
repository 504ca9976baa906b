#![doc = include_str!("../../docs/web.md")]

mod client;
mod errors;
mod extract;
mod health;
mod origin;
mod router;
mod server;
mod sse;
mod streams;

pub use client::Client;
pub use errors::{codes, ApiError};
pub use extract::{ctx_from_extension, Caller};
pub use health::health_router;
pub use origin::OriginPolicy;
pub use router::{router, ContextFn, KvRouter, BODY_LIMIT_MARGIN};
pub use server::{serve, shutdown_signal, Server};
pub use streams::{DEFAULT_MAX_EVENT_STREAMS, DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT};
