//! The history routes: `GET /{key}/history` (the write role, newest first,
//! cursor paging) and `POST /{key}/revert` (a write route: cross-site
//! checks first, the write role before the body is read, a JSON body,
//! `If-Match`); the typed client's `history`, `revert` and
//! `revert_expecting`; and neither route on a table without history.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::web::{self, ApiError, Client};
use kv_runtime::{Ctx, Error, ErrorCode, HistoryOp, Kv, PageRequest, Row, Store, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner], write_role = admin, soft_delete, history(keep = 10))]
struct SiteBanner {
    message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner], write_role = admin)]
struct Plain {
    message: String,
}

fn banner(message: &str) -> SiteBanner {
    SiteBanner {
        message: message.into(),
    }
}

const HOST: &str = "kv.example";

/// `Bearer admin` is an admin, no header is anonymous, anything else 401.
fn ctx_fn(parts: &Parts) -> std::future::Ready<Result<Ctx, ApiError>> {
    std::future::ready(
        match parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
        {
            None => Ok(Ctx::anonymous()),
            Some(b"Bearer admin") => Ok(Ctx::user("ada").with_role("admin")),
            Some(_) => Err(ApiError::unauthorized("unknown token")),
        },
    )
}

struct Fixture {
    app: Router,
    table: Table<SiteBanner>,
    /// The banner's versions, oldest first: "one", "two", "three".
    rows: Vec<Row<SiteBanner>>,
}

async fn fixture() -> Fixture {
    let store = Store::open("memory:").await.expect("memory store");
    let table = store.table::<SiteBanner>();
    let admin = Ctx::user("ada").with_role("admin");
    let mut rows = Vec::new();
    for text in ["one", "two", "three"] {
        rows.push(
            table
                .set(&admin, SiteBannerKey::Banner, banner(text))
                .await
                .expect("seed"),
        );
    }
    let app = Router::new()
        .nest("/api/kv/site", web::router(table.clone(), ctx_fn).build())
        .nest(
            "/api/kv/plain",
            web::router(store.table::<Plain>(), ctx_fn).build(),
        );
    Fixture { app, table, rows }
}

fn request(method: Method, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value, Option<String>) {
    let response = app.clone().oneshot(request).await.expect("a response");
    let status = response.status();
    let etag = response
        .headers()
        .get(header::ETAG)
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, etag)
}

/// A same-origin revert request from the admin (the body is separate).
fn revert() -> axum::http::request::Builder {
    request(Method::POST, "/api/kv/site/banner/revert")
        .header(header::AUTHORIZATION, "Bearer admin")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, format!("http://{HOST}"))
}

fn body(version: i64) -> Body {
    Body::from(json!({ "version": version }).to_string())
}

#[tokio::test]
async fn history_is_for_the_write_role_newest_first_and_paged() {
    let f = fixture().await;
    let path = "/api/kv/site/banner/history";
    let (status, err, _) = send(
        &f.app,
        request(Method::GET, path).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["code"], "FORBIDDEN");
    assert_eq!(err["op"], "history");

    let admin = |uri: &str| {
        request(Method::GET, uri)
            .header(header::AUTHORIZATION, "Bearer admin")
            .body(Body::empty())
            .unwrap()
    };
    let (status, page, _) = send(&f.app, admin(&format!("{path}?limit=2"))).await;
    assert_eq!(status, StatusCode::OK);
    let versions: Vec<i64> = page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["version"].as_i64().expect("version"))
        .collect();
    assert_eq!(versions, [f.rows[2].updated_at, f.rows[1].updated_at]);
    let newest = &page["entries"][0];
    assert_eq!(newest["op"], "set");
    assert_eq!(newest["value"], json!({ "message": "three" }));
    assert_eq!(newest["updated_by"], "ada");
    assert_eq!(newest["key"], "banner");
    assert_eq!(newest["schema_version"], 1);
    assert_eq!(page["is_done"], false);
    let cursor = page["continue_cursor"].as_str().expect("a cursor");
    let (status, page, _) = send(&f.app, admin(&format!("{path}?limit=2&cursor={cursor}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["entries"][0]["version"], f.rows[0].updated_at);
    assert_eq!(page["is_done"], true);
    assert_eq!(page["continue_cursor"], Value::Null);

    let (status, err, _) = send(&f.app, admin(&format!("{path}?limit=0"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, err, _) = send(&f.app, admin(&format!("{path}?limit=ten"))).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MALFORMED_QUERY"))
    );
    let (status, err, _) = send(&f.app, admin(&format!("{path}?cursor=v1.00.00"))).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_CURSOR"))
    );
    let (status, err, _) = send(&f.app, admin("/api/kv/site/nope/history")).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_KEY"))
    );
}

#[tokio::test]
async fn revert_writes_an_old_version_back_over_the_version_seen() {
    let f = fixture().await;
    let [one, two, three] = [&f.rows[0], &f.rows[1], &f.rows[2]];
    // Over a version that is no longer current: 409, nothing written.
    let (status, err, _) = send(
        &f.app,
        revert()
            .header(header::IF_MATCH, format!("\"{}\"", two.updated_at))
            .body(body(one.updated_at))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["current_updated_at"], three.updated_at);
    assert_eq!(
        f.table.get(SiteBannerKey::Banner).await.unwrap().as_ref(),
        Some(three)
    );
    // Over the current one (header, or the body's expected_updated_at).
    let (status, row, etag) = send(
        &f.app,
        revert()
            .header(header::IF_MATCH, format!("\"{}\"", three.updated_at))
            .body(body(one.updated_at))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["value"], json!({ "message": "one" }));
    let reverted = row["updated_at"].as_i64().expect("updated_at");
    assert_eq!(etag, Some(format!("\"{reverted}\"")));
    let (status, row, _) = send(
        &f.app,
        revert()
            .body(Body::from(
                json!({ "version": two.updated_at, "expected_updated_at": reverted }).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["value"], json!({ "message": "two" }));
    // Without an expected version: over the row as the server reads it.
    let (status, row, _) = send(&f.app, revert().body(body(three.updated_at)).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(row["value"], json!({ "message": "three" }));
    // An unknown version: 404 naming it.
    let (status, err, _) = send(&f.app, revert().body(body(1)).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    assert_eq!(
        (err["code"].as_str(), err["version"].as_i64()),
        (Some("NOT_FOUND"), Some(1))
    );
    // Each revert is recorded.
    let page = f
        .table
        .history(
            &Ctx::internal(),
            SiteBannerKey::Banner,
            PageRequest::first(10),
        )
        .await
        .unwrap();
    let texts: Vec<&str> = page
        .entries
        .iter()
        .map(|e| e.value.message.as_str())
        .collect();
    assert_eq!(texts, ["three", "two", "one", "three", "two", "one"]);
}

#[tokio::test]
async fn revert_is_refused_like_every_write_route_and_changes_nothing() {
    let f = fixture().await;
    let version = f.rows[0].updated_at;
    let current = f.table.get(SiteBannerKey::Banner).await.unwrap();
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        // Cross-site: a foreign Origin, a form content type.
        (
            revert()
                .header(header::ORIGIN, "https://evil.example")
                .body(body(version))
                .unwrap(),
            StatusCode::FORBIDDEN,
            "CROSS_ORIGIN",
        ),
        (
            request(Method::POST, "/api/kv/site/banner/revert")
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("version={version}")))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        // No write role: 403 before the body is read (this one is not JSON).
        (
            request(Method::POST, "/api/kv/site/banner/revert")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("not json"))
                .unwrap(),
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        ),
        (
            request(Method::POST, "/api/kv/site/banner/revert")
                .header(header::AUTHORIZATION, "Bearer wrong")
                .header(header::CONTENT_TYPE, "application/json")
                .body(body(version))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
        ),
        // The body: JSON, of the right shape, not too large.
        (
            revert().body(Body::from("{")).unwrap(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_BODY",
        ),
        (
            revert().body(Body::from(r#"{"version": "one"}"#)).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            revert()
                .body(Body::from(r#"{"version": 1, "value": {}}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            revert()
                .header(header::CONTENT_TYPE, "text/plain")
                .body(body(version))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            revert()
                .body(Body::from(format!(
                    "{{\"version\": {version}, \"pad\": \"{}\"}}",
                    "x".repeat(4096)
                )))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        // Preconditions: one version, agreeing; never If-None-Match.
        (
            revert()
                .header(header::IF_NONE_MATCH, "*")
                .body(body(version))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        (
            revert()
                .header(header::IF_MATCH, "\"1\"")
                .body(Body::from(
                    json!({ "version": version, "expected_updated_at": 2 }).to_string(),
                ))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        (
            revert()
                .header(header::IF_MATCH, "W/\"1\"")
                .body(body(version))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "MALFORMED_HEADER",
        ),
        // GET is not a revert.
        (
            request(Method::GET, "/api/kv/site/banner/revert")
                .header(header::AUTHORIZATION, "Bearer admin")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let (got, err, _) = send(&f.app, req).await;
        assert_eq!(
            (got, err["code"].as_str()),
            (status, Some(code)),
            "case {i}: {err}"
        );
    }
    assert_eq!(f.table.get(SiteBannerKey::Banner).await.unwrap(), current);
    let page = f
        .table
        .history(
            &Ctx::internal(),
            SiteBannerKey::Banner,
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 3, "nothing was recorded");
}

#[tokio::test]
async fn a_table_without_history_has_no_history_routes() {
    let f = fixture().await;
    for (method, path) in [
        (Method::GET, "/api/kv/plain/banner/history"),
        (Method::POST, "/api/kv/plain/banner/revert"),
    ] {
        let (status, err, _) = send(
            &f.app,
            request(method, path)
                .header(header::AUTHORIZATION, "Bearer admin")
                .header(header::CONTENT_TYPE, "application/json")
                .body(body(1))
                .unwrap(),
        )
        .await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("NO_ROUTE")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_client_reads_history_and_reverts() {
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}/api/kv/site", listener.local_addr().unwrap());
    let server = tokio::spawn(web::serve(listener, f.app.clone()));
    let admin = Client::<SiteBanner>::new(&base)
        .unwrap()
        .with_header("authorization", "Bearer admin")
        .unwrap();
    let [one, two, three] = [&f.rows[0], &f.rows[1], &f.rows[2]];

    let page = admin
        .history(SiteBannerKey::Banner, PageRequest::first(2))
        .await
        .unwrap();
    let versions: Vec<i64> = page.entries.iter().map(|e| e.version).collect();
    assert_eq!(versions, [three.updated_at, two.updated_at]);
    assert_eq!(page.entries[0].op, HistoryOp::Set);
    let rest = admin
        .history(
            SiteBannerKey::Banner,
            PageRequest::after(page.continue_cursor.unwrap(), 2),
        )
        .await
        .unwrap();
    assert_eq!(rest.entries[0].value, banner("one"));
    assert!(rest.is_done);

    let err = admin
        .revert_expecting(SiteBannerKey::Banner, one.updated_at, two.updated_at)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { current_updated_at: Some(v), .. } if v == three.updated_at),
        "{err:?}"
    );
    let back = admin
        .revert_expecting(SiteBannerKey::Banner, one.updated_at, three.updated_at)
        .await
        .unwrap();
    assert_eq!(back.value, banner("one"));
    let again = admin
        .revert(SiteBannerKey::Banner, two.updated_at)
        .await
        .unwrap();
    assert_eq!(again.value, banner("two"));
    let err = admin.revert(SiteBannerKey::Banner, 7).await.unwrap_err();
    assert!(
        matches!(err, Error::NoSuchVersion { version: 7, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::NotFound);

    let visitor = Client::<SiteBanner>::new(&base).unwrap();
    let err = visitor
        .history(SiteBannerKey::Banner, PageRequest::first(2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let err = visitor
        .revert(SiteBannerKey::Banner, one.updated_at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    server.abort();
}
