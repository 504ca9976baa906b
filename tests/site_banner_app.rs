//! The site-banner demo's own defences, in process: its sign-in refuses
//! posts from other origins (login CSRF), and its pages carry a
//! Content-Security-Policy that their markup keeps (no inline script or
//! style) and refuse framing. The browser test runs the pages under that
//! policy for real.

#[path = "../examples/site_banner/app.rs"]
mod app;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::Store;
use tower::ServiceExt;

async fn demo() -> Router {
    let store = Store::open("memory:").await.expect("memory store");
    app::app(store.table())
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn sign_in(origin: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/signin")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.body(Body::from("name=mallory")).expect("request")
}

#[tokio::test]
async fn sign_in_refuses_other_origins() {
    let app = demo().await;
    for origin in ["https://evil.example", "null", "http://127.0.0.1:3001"] {
        let (status, headers, body) = send(&app, sign_in(Some(origin))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}: {body}");
        assert!(body.contains("CROSS_ORIGIN"), "{origin}: {body}");
        assert!(
            headers.get(header::SET_COOKIE).is_none(),
            "{origin}: signed in"
        );
    }
    for origin in [Some("http://127.0.0.1:3000"), None] {
        let (status, headers, body) = send(&app, sign_in(origin)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{origin:?}: {body}");
        let cookie = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(cookie.starts_with("kv_demo_user=mallory;"), "{cookie}");
    }
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_they_keep() {
    let app = demo().await;
    let signed_in = "kv_demo_user=ada";
    for (path, cookie) in [
        ("/", None),
        ("/about", None),
        ("/admin", None),
        ("/admin", Some(signed_in)),
        ("/nowhere", None),
    ] {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1:3000");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let (status, headers, html) =
            send(&app, request.body(Body::empty()).expect("request")).await;
        assert!(
            status == StatusCode::OK || path == "/nowhere",
            "{path}: {status}"
        );
        let csp = headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp:?}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            headers.get(header::X_FRAME_OPTIONS).map(|v| v.as_bytes()),
            Some(&b"DENY"[..]),
            "{path}"
        );
        // Nothing inline that the policy would block.
        assert!(html.contains("<script src=\"/assets/"), "{path}: no script");
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=\"/assets/").count(),
            "{path}: an inline script"
        );
        assert!(!html.contains("<style"), "{path}: a style element");
        assert!(!html.contains(" style="), "{path}: a style attribute");
        assert!(
            !has_event_handler_attribute(&html),
            "{path}: an onevent attribute"
        );
    }
}

/// Whether the markup has an ` onsomething=` attribute.
fn has_event_handler_attribute(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    })
}

/// `/metrics` answers in the Prometheus text format with kv's metrics, and
/// `/healthz` with the store's health.
#[tokio::test]
async fn metrics_and_health_are_served() {
    let app = demo().await;
    let (status, _, _) = send(
        &app,
        Request::builder()
            .uri("/api/kv/site/banner")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers, text) = send(
        &app,
        Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    assert!(
        text.contains("# TYPE kv_operations_total counter"),
        "{text}"
    );
    assert!(
        text.contains("kv_operations_total{table=\"siteBanner\",op=\"get\",outcome=\"ok\"}"),
        "{text}"
    );
    let (status, _, body) = send(
        &app,
        Request::builder()
            .uri("/healthz")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["healthy"], true);
    assert_eq!(health["backend"]["feed"], "in_process");
}

/// Every module the pages load, and every module those import, is served
/// as JavaScript from this origin: browsers run a module only with a
/// JavaScript content type, and the CSP allows scripts from 'self' only.
#[tokio::test]
async fn page_modules_and_their_imports_are_served_as_javascript() {
    let app = demo().await;
    let mut todo = vec![
        "/assets/banner.js".to_owned(),
        "/assets/admin.js".to_owned(),
    ];
    let mut seen = std::collections::HashSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let request = Request::get(&path)
            .header(header::HOST, "127.0.0.1:3000")
            .body(Body::empty())
            .expect("request");
        let (status, headers, text) = send(&app, request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/javascript; charset=utf-8"),
            "{path}"
        );
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        for line in text.lines() {
            let Some(spec) = line
                .split(" from \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
            else {
                continue;
            };
            assert!(spec.starts_with("./"), "{path} imports {spec}");
            todo.push(format!("{dir}{}", &spec[2..]));
        }
    }
    assert!(seen.contains("/assets/kv/index.js"), "{seen:?}");
    assert!(seen.contains("/assets/kv/watch.js"), "{seen:?}");
}
