//! Malformed and unauthorised requests to the web router: each gets the
//! right status and code, and none changes anything.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::web::{self, ApiError};
use kv_runtime::{Ctx, Kv, PageRequest, Row, Store, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance], write_role = admin, soft_delete, max_value_bytes = 2048)]
struct SiteBanner {
    #[garde(skip)]
    active: bool,
    #[garde(length(chars, max = 200))]
    message: String,
}

/// Free string keys, to see hostile key text reach key validation.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin)]
struct Note {
    text: String,
}

/// No `write_role`: internal callers only, which no request can be.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [cron])]
struct Schedule {
    next: i64,
}

/// Only here to hand out cursors that belong to another table.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin)]
struct Flag {
    on: bool,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner], write_role = admin, rate_limit(max = 2, window = "1m"))]
struct Limited {
    n: u32,
}

/// The test app's credentials: `Bearer admin` is an admin, `Bearer visitor`
/// a user without the role, no header is anonymous, anything else is 401.
fn bearer_ctx(
    calls: Arc<AtomicUsize>,
) -> impl Fn(&axum::http::request::Parts) -> std::future::Ready<Result<Ctx, ApiError>>
       + Send
       + Sync
       + 'static {
    move |parts| {
        calls.fetch_add(1, Ordering::SeqCst);
        let auth = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        std::future::ready(match auth {
            None => Ok(Ctx::anonymous()),
            Some(b"Bearer admin") => Ok(Ctx::user("ada").with_role("admin")),
            Some(b"Bearer visitor") => Ok(Ctx::user("vic")),
            Some(_) => Err(ApiError::unauthorized("unknown token")),
        })
    }
}

struct Fixture {
    app: Router,
    banners: Table<SiteBanner>,
    notes: Table<Note>,
    row0: Row<SiteBanner>,
    note0: Row<Note>,
    ctx_calls: Arc<AtomicUsize>,
    foreign_cursor: String,
}

async fn fixture() -> Fixture {
    let store = Store::open("memory:").await.expect("memory store");
    let banners = store.table::<SiteBanner>();
    let notes = store.table::<Note>();
    let admin = Ctx::user("ada").with_role("admin");
    let row0 = banners
        .set(
            &admin,
            SiteBannerKey::Banner,
            SiteBanner {
                active: true,
                message: "original".into(),
            },
        )
        .await
        .expect("seed banner");
    let note0 = notes
        .set(&admin, "n1".to_owned(), Note { text: "hi".into() })
        .await
        .expect("seed note");
    let flags = store.table::<Flag>();
    for key in ["a", "b"] {
        flags
            .set(&admin, key.to_owned(), Flag { on: true })
            .await
            .expect("seed flag");
    }
    let foreign_cursor = flags
        .list(&admin, PageRequest::first(1))
        .await
        .expect("list flags")
        .continue_cursor
        .expect("a second page");
    let ctx_calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .nest(
            "/api/kv/site",
            web::router(banners.clone(), bearer_ctx(ctx_calls.clone()))
                .with_restore()
                .build(),
        )
        .nest(
            "/api/kv/notes",
            web::router(notes.clone(), bearer_ctx(ctx_calls.clone())).build(),
        )
        .nest(
            "/api/kv/schedule",
            web::router(store.table::<Schedule>(), bearer_ctx(ctx_calls.clone())).build(),
        );
    Fixture {
        app,
        banners,
        notes,
        row0,
        note0,
        ctx_calls,
        foreign_cursor,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{} answered a non-JSON body ({e}): {:?}",
            parts.status,
            String::from_utf8_lossy(&bytes)
        )
    });
    Answer {
        status: parts.status,
        headers: parts.headers,
        json,
    }
}

fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri)
}

fn admin_put(uri: &str) -> axum::http::request::Builder {
    req(Method::PUT, uri)
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
}

fn good_body() -> String {
    json!({ "value": { "active": false, "message": "changed" } }).to_string()
}

/// Nothing changed: the same rows, read in process and over HTTP.
async fn assert_unchanged(f: &Fixture, case: &str) {
    let now = f
        .banners
        .get(SiteBannerKey::Banner)
        .await
        .expect("read banner");
    assert_eq!(now.as_ref(), Some(&f.row0), "{case}: the banner changed");
    let maintenance = f
        .banners
        .get(SiteBannerKey::Maintenance)
        .await
        .expect("read maintenance");
    assert_eq!(maintenance, None, "{case}: maintenance appeared");
    let notes = f
        .notes
        .list(&Ctx::internal(), PageRequest::first(100))
        .await
        .expect("list notes");
    assert_eq!(
        notes.page,
        vec![f.note0.clone()],
        "{case}: the notes changed"
    );
    let over_http = send(
        &f.app,
        req(Method::GET, "/api/kv/site/banner")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(over_http.status, StatusCode::OK, "{case}");
    assert_eq!(
        over_http.json,
        serde_json::to_value(&f.row0).expect("row json"),
        "{case}: GET shows a change"
    );
}

struct Case {
    name: &'static str,
    request: Request<Body>,
    status: StatusCode,
    code: &'static str,
}

fn case(
    name: &'static str,
    request: axum::http::request::Builder,
    body: impl Into<Body>,
    status: StatusCode,
    code: &'static str,
) -> Case {
    Case {
        name,
        request: request.body(body.into()).expect("valid test request"),
        status,
        code,
    }
}

#[tokio::test]
async fn malformed_and_unauthorised_requests_change_nothing() {
    let f = fixture().await;
    let v0 = f.row0.updated_at;
    let stale = v0 - 1;
    let long_key = "k".repeat(10_000);
    let big = json!({ "value": { "active": true, "message": "x".repeat(8000) } }).to_string();
    let over_garde = json!({ "value": { "active": true, "message": "é".repeat(201) } }).to_string();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 1024])).collect();
    let streamed_big = Body::from_stream(futures_util::stream::iter(chunks));

    use StatusCode as S;
    let cases = vec![
        // Bodies.
        case(
            "syntax error",
            admin_put("/api/kv/site/banner"),
            "{\"value\":",
            S::BAD_REQUEST,
            "MALFORMED_BODY",
        ),
        case(
            "empty body",
            admin_put("/api/kv/site/banner"),
            "",
            S::BAD_REQUEST,
            "MALFORMED_BODY",
        ),
        case(
            "trailing text",
            admin_put("/api/kv/site/banner"),
            format!("{} x", good_body()),
            S::BAD_REQUEST,
            "MALFORMED_BODY",
        ),
        case(
            "not UTF-8",
            admin_put("/api/kv/site/banner"),
            vec![b'{', 0xff, b'}'],
            S::BAD_REQUEST,
            "MALFORMED_BODY",
        ),
        case(
            "wrong type",
            admin_put("/api/kv/site/banner"),
            r#"{"value":{"active":"yes","message":"x"}}"#,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "raw value, no envelope",
            admin_put("/api/kv/site/banner"),
            r#"{"active":true,"message":"x"}"#,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "unknown envelope field",
            admin_put("/api/kv/site/banner"),
            r#"{"value":{"active":true,"message":"x"},"force":true}"#,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "null value",
            admin_put("/api/kv/site/banner"),
            r#"{"value":null}"#,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "version of the wrong type",
            admin_put("/api/kv/site/banner"),
            r#"{"value":{"active":true,"message":"x"},"expected_updated_at":"1"}"#,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "message over the garde limit",
            admin_put("/api/kv/site/banner"),
            over_garde,
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "oversize body",
            admin_put("/api/kv/site/banner"),
            big,
            S::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        case(
            "oversize streamed body",
            admin_put("/api/kv/site/banner"),
            streamed_big,
            S::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        case(
            "text/plain",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "text/plain"),
            good_body(),
            S::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        case(
            "no content type",
            req(Method::PUT, "/api/kv/site/banner").header(header::AUTHORIZATION, "Bearer admin"),
            good_body(),
            S::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        case(
            "form post",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            "value=x",
            S::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        case(
            "latin-1 JSON",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json; charset=latin1"),
            good_body(),
            S::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        // Keys.
        case(
            "unknown key",
            admin_put("/api/kv/site/nope"),
            good_body(),
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "key of another case",
            req(Method::GET, "/api/kv/site/BANNER"),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "percent-encoded NUL",
            req(Method::GET, "/api/kv/site/banner%00"),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "dot-dot",
            req(Method::GET, "/api/kv/site/.."),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "encoded dot-dot",
            admin_put("/api/kv/site/%2E%2E"),
            good_body(),
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "encoded slash",
            req(Method::DELETE, "/api/kv/site/..%2Fbanner")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "very long key",
            req(Method::GET, &format!("/api/kv/site/{long_key}")),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "invalid UTF-8 in the key",
            req(Method::GET, "/api/kv/site/%FF%FE"),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "free key with NUL",
            req(Method::PUT, "/api/kv/notes/a%00b")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json"),
            r#"{"value":{"text":"x"}}"#,
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "free key too long",
            req(Method::PUT, &format!("/api/kv/notes/{}", "n".repeat(300)))
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json"),
            r#"{"value":{"text":"x"}}"#,
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        case(
            "free key with a newline",
            req(Method::DELETE, "/api/kv/notes/n1%0A")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "INVALID_KEY",
        ),
        // Credentials.
        case(
            "PUT without credentials",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "PUT with a wrong token",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer guess")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::UNAUTHORIZED,
            "UNAUTHORIZED",
        ),
        case(
            "PUT by a user without the role",
            req(Method::PUT, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer visitor")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "PUT of a new key without credentials",
            req(Method::PUT, "/api/kv/site/maintenance")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "DELETE without credentials",
            req(Method::DELETE, "/api/kv/site/banner"),
            "",
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "DELETE with a wrong token",
            req(Method::DELETE, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Basic YWRhOmFkYQ=="),
            "",
            S::UNAUTHORIZED,
            "UNAUTHORIZED",
        ),
        case(
            "restore without credentials",
            req(Method::POST, "/api/kv/site/banner/restore"),
            "",
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "list without credentials",
            req(Method::GET, "/api/kv/site"),
            "",
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "list by a user without the role",
            req(Method::GET, "/api/kv/notes?limit=10")
                .header(header::AUTHORIZATION, "Bearer visitor"),
            "",
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        case(
            "an internal-only table, even for an admin",
            req(Method::PUT, "/api/kv/schedule/cron")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json"),
            r#"{"value":{"next":1}}"#,
            S::FORBIDDEN,
            "FORBIDDEN",
        ),
        // Versions.
        case(
            "stale If-Match",
            admin_put("/api/kv/site/banner").header(header::IF_MATCH, format!("\"{stale}\"")),
            good_body(),
            S::CONFLICT,
            "CONFLICT",
        ),
        case(
            "stale body version",
            admin_put("/api/kv/site/banner"),
            json!({ "value": { "active": true, "message": "x" }, "expected_updated_at": stale })
                .to_string(),
            S::CONFLICT,
            "CONFLICT",
        ),
        case(
            "If-Match on a key with no row",
            admin_put("/api/kv/site/maintenance").header(header::IF_MATCH, format!("\"{v0}\"")),
            good_body(),
            S::CONFLICT,
            "CONFLICT",
        ),
        case(
            "unquoted If-Match",
            admin_put("/api/kv/site/banner").header(header::IF_MATCH, v0.to_string()),
            good_body(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "If-Match: *",
            admin_put("/api/kv/site/banner").header(header::IF_MATCH, "*"),
            good_body(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "weak If-Match",
            admin_put("/api/kv/site/banner").header(header::IF_MATCH, format!("W/\"{v0}\"")),
            good_body(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "If-Match disagreeing with the body",
            admin_put("/api/kv/site/banner").header(header::IF_MATCH, format!("\"{v0}\"")),
            json!({ "value": { "active": true, "message": "x" }, "expected_updated_at": stale })
                .to_string(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "If-None-Match: * on a live row",
            admin_put("/api/kv/site/banner").header(header::IF_NONE_MATCH, "*"),
            good_body(),
            S::CONFLICT,
            "CONFLICT",
        ),
        case(
            "If-None-Match with an entity tag",
            admin_put("/api/kv/site/banner").header(header::IF_NONE_MATCH, format!("\"{v0}\"")),
            good_body(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "If-None-Match: * with If-Match",
            admin_put("/api/kv/site/maintenance")
                .header(header::IF_NONE_MATCH, "*")
                .header(header::IF_MATCH, format!("\"{v0}\"")),
            good_body(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "If-None-Match: * with a body version",
            admin_put("/api/kv/site/maintenance").header(header::IF_NONE_MATCH, "*"),
            json!({ "value": { "active": true, "message": "x" }, "expected_updated_at": v0 })
                .to_string(),
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "conditional DELETE",
            req(Method::DELETE, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::IF_MATCH, format!("\"{v0}\"")),
            "",
            S::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        case(
            "restore of a key that never existed",
            req(Method::POST, "/api/kv/site/maintenance/restore")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::NOT_FOUND,
            "NOT_FOUND",
        ),
        // Methods and routes.
        case(
            "PATCH",
            req(Method::PATCH, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "POST to a key",
            req(Method::POST, "/api/kv/site/banner")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json"),
            good_body(),
            S::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "DELETE the table",
            req(Method::DELETE, "/api/kv/site").header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "PUT to the event stream",
            admin_put("/api/kv/site/banner/events"),
            good_body(),
            S::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "GET restore",
            req(Method::GET, "/api/kv/site/banner/restore"),
            "",
            S::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        case(
            "restore on a table built without it",
            req(Method::POST, "/api/kv/notes/n1/restore")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::NOT_FOUND,
            "NO_ROUTE",
        ),
        case(
            "a deeper path",
            req(Method::GET, "/api/kv/site/banner/events/more"),
            "",
            S::NOT_FOUND,
            "NO_ROUTE",
        ),
        // Pages.
        case(
            "garbage cursor",
            req(Method::GET, "/api/kv/site?cursor=bm90LWEtY3Vyc29y")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "INVALID_CURSOR",
        ),
        case(
            "cursor of another table",
            req(
                Method::GET,
                &format!("/api/kv/site?cursor={}", f.foreign_cursor),
            )
            .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "INVALID_CURSOR",
        ),
        case(
            "limit over the maximum",
            req(Method::GET, "/api/kv/site?limit=5000")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "limit zero",
            req(Method::GET, "/api/kv/site?limit=0").header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        case(
            "limit not a number",
            req(Method::GET, "/api/kv/site?limit=ten")
                .header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "MALFORMED_QUERY",
        ),
        case(
            "negative limit",
            req(Method::GET, "/api/kv/site?limit=-1").header(header::AUTHORIZATION, "Bearer admin"),
            "",
            S::BAD_REQUEST,
            "MALFORMED_QUERY",
        ),
    ];
    assert!(cases.len() >= 25);
    let count = cases.len();
    for c in cases {
        let answer = send(&f.app, c.request).await;
        assert_eq!(answer.status, c.status, "{}: {}", c.name, answer.json);
        assert_eq!(answer.json["code"], c.code, "{}: {}", c.name, answer.json);
        assert!(
            answer.json["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}: no message in {}",
            c.name,
            answer.json
        );
        assert_eq!(
            answer
                .headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "{}",
            c.name
        );
        assert_unchanged(&f, c.name).await;
    }
    println!("{count} refused requests, none changed anything");
}

#[tokio::test]
async fn public_reads_never_call_the_context_function() {
    let f = fixture().await;
    for uri in [
        "/api/kv/site/banner",
        "/api/kv/site/maintenance",
        "/api/kv/site/nope",
        "/api/kv/notes/n1",
    ] {
        let request = req(Method::GET, uri)
            .header(header::AUTHORIZATION, "Bearer guess")
            .body(Body::empty())
            .expect("request");
        let answer = send(&f.app, request).await;
        assert_ne!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
    }
    assert_eq!(f.ctx_calls.load(Ordering::SeqCst), 0);
    // A write does ask the application who is calling.
    let request = req(Method::DELETE, "/api/kv/site/banner")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&f.app, request).await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.ctx_calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn error_bodies_carry_their_details() {
    let f = fixture().await;
    let v0 = f.row0.updated_at;

    let stale = send(
        &f.app,
        admin_put("/api/kv/site/banner")
            .header(header::IF_MATCH, format!("\"{}\"", v0 - 1))
            .body(Body::from(good_body()))
            .expect("request"),
    )
    .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.json["current_updated_at"], json!(v0));
    assert_eq!(stale.json["key"], "banner");

    let missing = send(
        &f.app,
        admin_put("/api/kv/site/maintenance")
            .header(header::IF_MATCH, format!("\"{v0}\""))
            .body(Body::from(good_body()))
            .expect("request"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::CONFLICT);
    assert_eq!(missing.json["current_updated_at"], Value::Null);
    assert!(missing
        .json
        .as_object()
        .is_some_and(|o| o.contains_key("current_updated_at")));

    let wrong_type = send(
        &f.app,
        admin_put("/api/kv/site/banner")
            .body(Body::from(r#"{"value":{"active":"yes","message":"x"}}"#))
            .expect("request"),
    )
    .await;
    assert_eq!(wrong_type.json["fields"][0]["path"], "value.active");

    let too_long = send(
        &f.app,
        admin_put("/api/kv/site/banner")
            .body(Body::from(
                json!({ "value": { "active": true, "message": "x".repeat(201) } }).to_string(),
            ))
            .expect("request"),
    )
    .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.json["fields"][0]["path"], "message");

    let forbidden = send(
        &f.app,
        req(Method::DELETE, "/api/kv/site/banner")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(forbidden.json["op"], "rm");

    let patch = send(
        &f.app,
        req(Method::PATCH, "/api/kv/site/banner")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = patch
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        allow.contains("PUT") && allow.contains("DELETE"),
        "{allow:?}"
    );
    assert_eq!(forbidden.json["table"], "siteBanner");
    assert_unchanged(&f, "details").await;
}

#[tokio::test]
async fn rate_limited_writes_are_429_with_retry_after() {
    let store = Store::open("memory:").await.expect("memory store");
    let table = store.table::<Limited>();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().nest("/l", web::router(table.clone(), bearer_ctx(calls)).build());
    let put = |n: u32| {
        admin_put("/l/banner")
            .body(Body::from(json!({ "value": { "n": n } }).to_string()))
            .expect("request")
    };
    assert_eq!(send(&app, put(1)).await.status, StatusCode::OK);
    assert_eq!(send(&app, put(2)).await.status, StatusCode::OK);
    let limited = send(&app, put(3)).await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.json
    );
    assert_eq!(limited.json["code"], "RATE_LIMITED");
    let ms = limited.json["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!(ms > 0 && ms <= 60_000, "{ms}");
    let seconds: u64 = limited
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert_eq!(seconds, ms.div_ceil(1000).max(1));
    let row = table.get(LimitedKey::Banner).await.expect("read");
    assert_eq!(
        row.map(|r| r.value.n),
        Some(2),
        "the refused write changed the row"
    );
}
