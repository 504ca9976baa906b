//! The web layer (feature `web`): an axum router for any table, JSON errors
//! with stable codes, and a typed client.
//!
//! # Routes
//!
//! Relative to where the application nests the router (say
//! `Router::nest("/api/kv/site", ...)`):
//!
//! | route | who | answer |
//! |---|---|---|
//! | `GET /{key}` | anyone; the context function is not called | the live [`Row`](crate::Row) as JSON with `ETag: "<updated_at>"`, or `null` |
//! | `GET /{key}/events` | anyone; no context | server-sent events: the key's current state, then every change; each event's data is the row as JSON, or `null` when there is none |
//! | `GET /?cursor=..&limit=..` (nested: the mount path itself, `/api/kv/site?limit=10`) | write role | a [`Page`](crate::Page): `{ "page": [rows], "is_done", "continue_cursor" }`; `limit` 1 to 1000, default 100 |
//! | `PUT /{key}` | write role | body `{ "value": <the value>, "expected_updated_at": <optional> }`; the new row |
//! | `DELETE /{key}` | write role | `{ "deleted": true \| false }` |
//! | `POST /{key}/restore` | write role; only when built [`with_restore`](KvRouter::with_restore) | the restored row (a live row comes back unchanged) |
//!
//! Keys are the path segment, percent-decoded: a key the table does not
//! have is 400 `INVALID_KEY`, never a 404.
//!
//! ## Writing with an expected version
//!
//! `PUT` writes unconditionally unless it names the version it is based
//! on, in either of two forms (both at once must agree):
//!
//! - the header `If-Match: "1718000000000"`: exactly one strong entity tag
//!   holding the row's `updated_at` in decimal, as `GET /{key}` returns it
//!   in `ETag` (`*`, weak tags and lists are 400 `MALFORMED_HEADER`);
//! - the body field `"expected_updated_at": 1718000000000`.
//!
//! A mismatch is 409 `CONFLICT` with the row's `current_updated_at`
//! (`null` when there is no live row).
//!
//! To write only when there is no live row (the key is missing or
//! soft-deleted; [`Table::set_if_absent`](crate::Table::set_if_absent)),
//! send `If-None-Match: *`; when a live row exists the answer is 409
//! `CONFLICT` with its `current_updated_at`. Any other `If-None-Match`, and
//! `If-None-Match: *` together with `If-Match` or a body
//! `expected_updated_at`, is 400 `MALFORMED_HEADER`.
//!
//! ## Requests refused before they reach the table
//!
//! None of these changes anything: a body larger than the
//! [limit](KvRouter::body_limit) is 413 `PAYLOAD_TOO_LARGE`; a `PUT` that is
//! not `Content-Type: application/json` is 415 `UNSUPPORTED_MEDIA_TYPE`
//! (which also keeps cross-site HTML forms out); JSON with a syntax error
//! is 400 `MALFORMED_BODY`; JSON of the wrong shape or types is 422
//! `VALIDATION_FAILED` naming the path in the body (`value.active`); a bad
//! query is 400 `MALFORMED_QUERY`; a known path with another method is 405
//! `METHOD_NOT_ALLOWED`; an unknown path is 404 `NO_ROUTE`. See
//! [`ApiError`] for the JSON shape of every error.
//!
//! # Who is calling
//!
//! The application supplies a [`ContextFn`]: it turns the request head
//! into a [`Ctx`](crate::Ctx). The router never makes up a caller, and
//! never an internal one.

mod client;
mod errors;
mod router;
mod sse;

pub use client::Client;
pub use errors::{codes, ApiError};
pub use router::{router, ContextFn, KvRouter, BODY_LIMIT_MARGIN};
