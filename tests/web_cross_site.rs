//! What a cross-site page can send to the write routes (`PUT`, `DELETE`,
//! `POST .../restore`) is refused before the context function runs, and
//! changes nothing: form content types are 415, a foreign or `null`
//! `Origin` is 403 `CROSS_ORIGIN`. Same-origin requests, allowed origins
//! and clients that send no `Origin` pass.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::web::{self, ApiError};
use kv_runtime::{Ctx, Kv, Row, Store, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, gone], write_role = admin, soft_delete)]
struct SiteBanner {
    active: bool,
    message: String,
}

/// The host the test requests are sent to.
const HOST: &str = "kv.example";
const ALLOWED: &str = "https://admin.example.com";

struct Fixture {
    app: Router,
    table: Table<SiteBanner>,
    banner: Row<SiteBanner>,
    ctx_calls: Arc<AtomicUsize>,
}

/// A table with a live `banner` and a soft-deleted `gone`; the admin is
/// whoever sends the session cookie, as a browser would.
async fn fixture() -> Fixture {
    let store = Store::open("memory:").await.expect("memory store");
    let table = store.table::<SiteBanner>();
    let admin = Ctx::user("ada").with_role("admin");
    let value = SiteBanner {
        active: true,
        message: "original".into(),
    };
    let banner = table
        .set(&admin, SiteBannerKey::Banner, value.clone())
        .await
        .expect("seed");
    table
        .set(&admin, SiteBannerKey::Gone, value)
        .await
        .expect("seed");
    table
        .rm(&admin, SiteBannerKey::Gone)
        .await
        .expect("soft delete");
    let ctx_calls = Arc::new(AtomicUsize::new(0));
    let calls = ctx_calls.clone();
    let ctx = move |parts: &axum::http::request::Parts| {
        calls.fetch_add(1, Ordering::SeqCst);
        let cookie = parts.headers.get(header::COOKIE).cloned();
        async move {
            match cookie.as_ref().map(|c| c.as_bytes()) {
                Some(b"session=ada") => Ok(Ctx::user("ada").with_role("admin")),
                _ => Err(ApiError::unauthorized("sign in")),
            }
        }
    };
    let app = Router::new().nest(
        "/api/kv/site",
        web::router(table.clone(), ctx)
            .with_restore()
            .allow_origin(ALLOWED)
            .build(),
    );
    Fixture {
        app,
        table,
        banner,
        ctx_calls,
    }
}

/// A request from a signed-in browser: the session cookie and `Host`.
fn browser(method: Method, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("/api/kv/site/{path}"))
        .header(header::HOST, HOST)
        .header(header::COOKIE, "session=ada")
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn put_body() -> String {
    json!({ "value": { "active": false, "message": "defaced" } }).to_string()
}

/// The three write routes, each as (name, method, path, body).
fn writes() -> [(&'static str, Method, &'static str, String); 3] {
    [
        ("PUT", Method::PUT, "banner", put_body()),
        ("DELETE", Method::DELETE, "banner", String::new()),
        ("restore", Method::POST, "gone/restore", String::new()),
    ]
}

async fn assert_unchanged(f: &Fixture, case: &str) {
    let banner = f.table.get(SiteBannerKey::Banner).await.expect("read");
    assert_eq!(
        banner.as_ref(),
        Some(&f.banner),
        "{case}: the banner changed"
    );
    let gone = f.table.get(SiteBannerKey::Gone).await.expect("read");
    assert_eq!(gone, None, "{case}: the deleted row came back");
}

#[tokio::test]
async fn cross_site_requests_are_refused_and_change_nothing() {
    let f = fixture().await;
    let form_types = [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----x",
        "text/plain;charset=UTF-8",
    ];
    for (route, method, path, body) in writes() {
        // What an HTML form sends (no Origin: an old browser, or a client
        // that is not one).
        for content_type in form_types {
            let request = browser(method.clone(), path)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body.clone()))
                .expect("request");
            let (status, json) = send(&f.app, request).await;
            let case = format!("{route} as {content_type}");
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{case}: {json}");
            assert_eq!(json["code"], "UNSUPPORTED_MEDIA_TYPE", "{case}");
            assert_unchanged(&f, &case).await;
        }
        // What a browser sends from another origin, with any content type.
        for origin in [
            "https://evil.example",
            "null",
            "http://kv.example.evil.example",
            "https://kv.example:8443",
            "not an origin",
        ] {
            for content_type in ["application/json", form_types[0]] {
                let request = browser(method.clone(), path)
                    .header(header::ORIGIN, origin)
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body.clone()))
                    .expect("request");
                let (status, json) = send(&f.app, request).await;
                let case = format!("{route} from {origin} as {content_type}");
                assert_eq!(status, StatusCode::FORBIDDEN, "{case}: {json}");
                assert_eq!(json["code"], "CROSS_ORIGIN", "{case}");
                assert_unchanged(&f, &case).await;
            }
        }
        // The browser says the request is cross-site, though Origin names
        // this host (a page on http:// posting to the https:// site).
        let request = browser(method.clone(), path)
            .header(header::ORIGIN, format!("http://{HOST}"))
            .header("sec-fetch-site", "cross-site")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.clone()))
            .expect("request");
        let (status, json) = send(&f.app, request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}: {json}");
        assert_eq!(json["code"], "CROSS_ORIGIN");
        assert_unchanged(&f, route).await;
    }
    assert_eq!(
        f.ctx_calls.load(Ordering::SeqCst),
        0,
        "the context function ran for a refused request"
    );
}

#[tokio::test]
async fn same_origin_allowed_origin_and_non_browser_requests_pass() {
    let origins = [
        Some(format!("https://{HOST}")),
        Some(format!("http://{HOST}")),
        Some(ALLOWED.to_owned()),
        None,
    ];
    for origin in origins {
        let f = fixture().await;
        let case = origin.clone().unwrap_or_else(|| "no Origin".to_owned());
        for (route, method, path, body) in writes() {
            let mut request = browser(method, path);
            if let Some(origin) = &origin {
                request = request.header(header::ORIGIN, origin.as_str());
                // What Chromium sends with a same-origin fetch.
                if !origin.contains("admin") {
                    request = request.header("sec-fetch-site", "same-origin");
                }
            }
            if !body.is_empty() {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            let request = request.body(Body::from(body)).expect("request");
            let (status, json) = send(&f.app, request).await;
            assert_eq!(status, StatusCode::OK, "{route} from {case}: {json}");
        }
        let banner = f.table.get(SiteBannerKey::Banner).await.expect("read");
        assert_eq!(banner, None, "{case}: DELETE went through");
        let gone = f.table.get(SiteBannerKey::Gone).await.expect("read");
        assert!(gone.is_some(), "{case}: restore went through");
        assert_eq!(f.ctx_calls.load(Ordering::SeqCst), 3, "{case}");
    }
}

#[tokio::test]
async fn reads_are_not_checked() {
    // A cross-site page may read public rows (it could embed them anyway);
    // only writes are refused.
    let f = fixture().await;
    let request = Request::get("/api/kv/site/banner")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::empty())
        .expect("request");
    let (status, json) = send(&f.app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["value"]["message"], "original");
}
