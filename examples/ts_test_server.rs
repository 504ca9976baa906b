//! The server the TypeScript client's tests (`clients/ts/test/`) start: the
//! site-banner demo (its banner table at `/api/kv/site`, signed in with
//! the demo's cookie `kv_demo_user=<name>`) and a notes table at
//! `/api/kv/notes`, whose callers are named by `Authorization: Bearer
//! <name>` (every named caller is an `editor`; none is anonymous).
//!
//! ```text
//! cargo run --example ts_test_server -- [port] [store URL]
//! ```
//!
//! Defaults: a free port, `memory:`. When it listens it prints one line,
//! `listening on http://127.0.0.1:<port>`; SIGTERM or Ctrl-C stops it.

#[path = "site_banner/app.rs"]
mod app;
#[path = "ts_test_server/tables.rs"]
mod tables;

use std::io::Write as _;

use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use kv_runtime::web::{self, ApiError};
use kv_runtime::{Ctx, Store};

/// `Authorization: Bearer <name>` is the editor `<name>`; no header is an
/// anonymous caller; anything else is 401.
fn bearer(value: Option<HeaderValue>) -> Result<Ctx, ApiError> {
    let Some(value) = value else {
        return Ok(Ctx::anonymous());
    };
    match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
        Some(name) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Ctx::user(name).with_role("editor"))
        }
        _ => Err(ApiError::unauthorized("use `Authorization: Bearer <name>`")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port: u16 = 0;
    let mut url = "memory:".to_owned();
    for arg in std::env::args().skip(1) {
        match arg.parse::<u16>() {
            Ok(p) => port = p,
            Err(_) => url = arg,
        }
    }
    let store = Store::open(&url).await?;
    let notes = web::router(store.table::<tables::Note>(), |parts: &Parts| {
        let caller = bearer(parts.headers.get(header::AUTHORIZATION).cloned());
        async move { caller }
    })
    .build();
    let app = app::app(store.table()).nest("/api/kv/notes", notes);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    web::serve(listener, app).await?;
    Ok(())
}
