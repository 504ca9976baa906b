//! The router (`kv_runtime::web`) fed any request, in process: it never
//! panics, never fails with a 5xx on the memory backend (nothing there can
//! be unavailable), and answers every refusal with a JSON error whose
//! `code` is a documented one, with that code's status.
//!
//! The input is a request written as text: a first line `METHOD /path`,
//! then `name: value` header lines, an empty line, and the body. Input the
//! HTTP types cannot hold (a malformed method, path or header) is skipped:
//! a server never hands such a request to a router.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kv_runtime::web::{self, ApiError};
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

/// Free keys, soft delete (restore route), a field constraint.
#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug)]
#[kv(table = "fuzzFree", write_role = admin, soft_delete, max_value_bytes = 256)]
pub struct FuzzFree {
    #[garde(skip)]
    pub active: bool,
    #[garde(length(max = 40))]
    pub message: String,
}

/// Declared keys.
#[derive(Kv, Serialize, Deserialize, Clone, Debug)]
#[kv(table = "fuzzKeyed", keys = [banner, "site-banner"], write_role = admin)]
pub struct FuzzKeyed {
    pub on: bool,
}

/// The caller from the request: `x-user` (a signed-in user, `admin` with
/// `x-admin`), or refused with `x-deny`.
async fn caller(user: Option<String>, admin: bool, deny: bool) -> Result<Ctx, ApiError> {
    if deny {
        return Err(ApiError::unauthorized("denied"));
    }
    Ok(match user {
        Some(id) if admin => Ctx::user(id).with_role("admin"),
        Some(id) => Ctx::user(id),
        None => Ctx::anonymous(),
    })
}

fn app(store: &Store) -> axum::Router {
    let ctx = |parts: &axum::http::request::Parts| {
        let h = &parts.headers;
        let user = h
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        caller(user, h.contains_key("x-admin"), h.contains_key("x-deny"))
    };
    let free = web::router(store.table::<FuzzFree>(), ctx)
        .with_restore()
        .build();
    let keyed = web::router(store.table::<FuzzKeyed>(), ctx).build();
    axum::Router::new()
        .nest("/free", free)
        .nest("/keyed", keyed)
        .fallback(|| async { OUTSIDE })
}

/// What this harness answers for a path outside both of kv's routers
/// (kv's routers answer their own unknown paths with `NO_ROUTE`): not
/// kv's answer, so not checked.
const OUTSIDE: StatusCode = StatusCode::IM_A_TEAPOT;

/// The request the input describes, if the HTTP types can hold it.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let space = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..space]).ok()?;
    let uri = std::str::from_utf8(&first[space + 1..]).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        builder = builder.header(name, HeaderValue::from_bytes(value).ok()?);
    }
    builder.body(Body::from(body.to_vec())).ok()
}

/// The status of each documented code: the table's errors, then the web
/// layer's own.
fn status_of(code: &str) -> Option<StatusCode> {
    if let Some(c) = ErrorCode::ALL.iter().find(|c| c.as_str() == code) {
        return StatusCode::from_u16(c.http_status()).ok();
    }
    web::codes::ALL
        .contains(&code)
        .then_some(StatusCode::BAD_REQUEST)
}

pub fn check(data: &[u8]) {
    let Some(request) = request(data) else {
        return;
    };
    let shown = format!("{} {}", request.method(), request.uri());
    super::runtime().block_on(async {
        let store = Store::memory();
        // One row per table, so that reads, writes and restores find some.
        let ctx = Ctx::internal();
        let banner = FuzzFree {
            active: true,
            message: "hello".into(),
        };
        let free = store.table::<FuzzFree>();
        free.set(&ctx, &"banner".to_owned(), banner)
            .await
            .expect("a row");
        free.set(
            &ctx,
            &"gone".to_owned(),
            FuzzFree {
                active: false,
                message: String::new(),
            },
        )
        .await
        .expect("a row");
        free.rm(&ctx, &"gone".to_owned()).await.expect("a delete");
        store
            .table::<FuzzKeyed>()
            .set(&ctx, FuzzKeyedKey::Banner, FuzzKeyed { on: true })
            .await
            .expect("a row");

        let response = app(&store).oneshot(request).await.expect("infallible");
        let status = response.status();
        if status == OUTSIDE {
            return;
        }
        assert!(
            !status.is_server_error(),
            "{shown}: {status} on the memory backend"
        );
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if content_type.starts_with("text/event-stream") {
            assert_eq!(status, StatusCode::OK, "{shown}");
            return; // an endless stream
        }
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body reads")
            .to_bytes();
        if status.is_success() {
            assert!(
                content_type.starts_with("application/json"),
                "{shown}: {status} with {content_type:?}"
            );
            serde_json::from_slice::<serde_json::Value>(&body)
                .unwrap_or_else(|e| panic!("{shown}: {status} with a body that is not JSON: {e}"));
            return;
        }
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{shown}: {status} with a body that is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&body)
            )
        });
        let code = error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{shown}: {status} without a code: {error}"));
        let documented =
            status_of(code).unwrap_or_else(|| panic!("{shown}: undocumented code {code}"));
        if ErrorCode::ALL.iter().any(|c| c.as_str() == code) {
            assert_eq!(status, documented, "{shown}: {code}");
        } else {
            assert!(status.is_client_error(), "{shown}: {code} with {status}");
        }
    });
}
