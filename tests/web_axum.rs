//! kv in an axum app's own conventions: the caller comes from the app's
//! auth middleware (a request extension), tables are axum state.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::web::{self, Caller};
use kv_runtime::{Ctx, Kv, Store, Table};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "axumBanner", keys = [banner], write_role = admin)]
struct Banner {
    message: String,
}

/// The app's auth middleware: `Bearer ok` is an admin named ada.
async fn auth(mut request: Request, next: Next) -> Response {
    let admin = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v == "Bearer ok");
    let ctx = if admin {
        Ctx::user("ada").with_role("admin")
    } else {
        Ctx::anonymous()
    };
    request.extensions_mut().insert(ctx);
    next.run(request).await
}

/// An app handler taking the table from the state and the caller from the
/// middleware.
async fn whoami(State(banners): State<Table<Banner>>, Caller(ctx): Caller) -> String {
    let message = banners
        .get(BannerKey::Banner)
        .await
        .ok()
        .flatten()
        .map(|row| row.value.message)
        .unwrap_or_default();
    format!("{}:{message}", ctx.user_id().unwrap_or("anonymous"))
}

fn app(store: Store) -> Router {
    let api = web::router(store.table::<Banner>(), web::ctx_from_extension).build();
    Router::new()
        .route("/whoami", get(whoami))
        .nest("/api/kv/site", api)
        .layer(middleware::from_fn(auth))
        .with_state(store)
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, token);
    }
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_router_and_the_app_take_the_caller_from_the_middleware() {
    let store = Store::memory();
    let app = app(store.clone());
    let body = r#"{"value": {"message": "hello"}}"#;
    let (status, text) = send(&app, Method::PUT, "/api/kv/site/banner", None, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, text) = send(
        &app,
        Method::PUT,
        "/api/kv/site/banner",
        Some("Bearer ok"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let row = store
        .table::<Banner>()
        .get(BannerKey::Banner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.updated_by.as_deref(),
        Some("ada"),
        "the middleware's caller wrote it"
    );

    assert_eq!(
        send(&app, Method::GET, "/whoami", Some("Bearer ok"), "").await,
        (StatusCode::OK, "ada:hello".to_owned())
    );
    assert_eq!(
        send(&app, Method::GET, "/whoami", None, "").await,
        (StatusCode::OK, "anonymous:hello".to_owned())
    );
}

#[tokio::test]
async fn without_the_middleware_callers_are_anonymous() {
    let store = Store::memory();
    let api = web::router(store.table::<Banner>(), web::ctx_from_extension).build();
    let app: Router = Router::new().nest("/api/kv/site", api);
    let body = r#"{"value": {"message": "hello"}}"#;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/api/kv/site/banner",
        Some("Bearer ok"),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no middleware, no admin");
}
