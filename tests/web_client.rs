//! The typed web client against the router on a real loopback listener:
//! every operation, and every error coming back as the `Error` (and code)
//! the table raised.

use std::time::Duration;

use axum::http::header;
use axum::http::request::Parts;
use axum::Router;
use kv_runtime::hooks::HookError;
use kv_runtime::web::{self, ApiError, Client};
use kv_runtime::{Ctx, Error, ErrorCode, Kv, PageRequest, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance], write_role = admin, soft_delete)]
struct SiteBanner {
    #[garde(skip)]
    active: bool,
    #[garde(length(chars, max = 200))]
    message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(write_role = admin, rate_limit(max = 3, window = "1m"))]
struct Note {
    text: String,
}

fn banner(message: &str) -> SiteBanner {
    SiteBanner {
        active: true,
        message: message.into(),
    }
}

/// The test app's credentials: `Bearer admin` is an admin, no header is
/// anonymous, anything else is refused with 401.
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

struct Server {
    base: String,
    store: Store,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve() -> Server {
    let store = Store::open("memory:").await.expect("memory store");
    let app = Router::new()
        .nest(
            "/api/kv/site",
            web::router(store.table::<SiteBanner>(), ctx_fn)
                .with_restore()
                .build(),
        )
        .nest(
            "/api/kv/notes",
            web::router(store.table::<Note>(), ctx_fn).build(),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        base: format!("http://{addr}/api/kv"),
        store,
        task,
    }
}

fn admin<S: kv_runtime::KvSchema>(server: &Server, table: &str) -> Client<S> {
    Client::<S>::new(&format!("{}/{table}", server.base))
        .and_then(|c| c.with_header("authorization", "Bearer admin"))
        .expect("client")
}

#[tokio::test]
async fn every_operation_round_trips() {
    let server = serve().await;
    let client = admin::<SiteBanner>(&server, "site");
    let table = server.store.table::<SiteBanner>();

    assert_eq!(client.get(SiteBannerKey::Banner).await.expect("get"), None);
    let row = client
        .set(SiteBannerKey::Banner, banner("hello"))
        .await
        .expect("set");
    assert_eq!(row.value, banner("hello"));
    assert_eq!(row.updated_by.as_deref(), Some("ada"));
    // The client's row is the table's row.
    assert_eq!(
        table.get(SiteBannerKey::Banner).await.expect("read"),
        Some(row.clone())
    );
    assert_eq!(
        client.get(SiteBannerKey::Banner).await.expect("get"),
        Some(row.clone())
    );

    let row2 = client
        .set_expecting(SiteBannerKey::Banner, banner("second"), row.updated_at)
        .await
        .expect("set_expecting with the current version");
    assert!(row2.updated_at > row.updated_at);
    let err = client
        .set_expecting(SiteBannerKey::Banner, banner("lost"), row.updated_at)
        .await
        .expect_err("stale version");
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert!(
        matches!(err, Error::Conflict { current_updated_at: Some(at), .. } if at == row2.updated_at),
        "{err:?}"
    );

    let page = client.list(PageRequest::first(10)).await.expect("list");
    assert_eq!(page.page, vec![row2.clone()]);
    assert!(page.is_done);

    assert!(client.rm(SiteBannerKey::Banner).await.expect("rm"));
    assert!(!client.rm(SiteBannerKey::Banner).await.expect("rm again"));
    assert_eq!(client.get(SiteBannerKey::Banner).await.expect("get"), None);
    let restored = client
        .restore(SiteBannerKey::Banner)
        .await
        .expect("restore");
    assert_eq!(restored.value, banner("second"));
    assert!(restored.updated_at > row2.updated_at);
    // Restoring a live row returns it unchanged.
    assert_eq!(
        client.restore(SiteBannerKey::Banner).await.expect("again"),
        restored
    );
    let err = client
        .restore(SiteBannerKey::Maintenance)
        .await
        .expect_err("never existed");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // If-None-Match: * writes only where there is no live row.
    let created = client
        .set_if_absent(SiteBannerKey::Maintenance, banner("down at 6"))
        .await
        .expect("set_if_absent of a missing key");
    assert_eq!(created.value, banner("down at 6"));
    let err = client
        .set_if_absent(SiteBannerKey::Maintenance, banner("lost"))
        .await
        .expect_err("a live row exists");
    assert!(
        matches!(err, Error::Conflict { current_updated_at: Some(at), .. } if at == created.updated_at),
        "{err:?}"
    );
    assert_eq!(
        table.get(SiteBannerKey::Maintenance).await.expect("read"),
        Some(created)
    );
}

#[tokio::test]
async fn pages_follow_cursors() {
    let server = serve().await;
    let client = admin::<Note>(&server, "notes");
    let table = server.store.table::<Note>();
    for key in ["a", "b", "c", "d", "e"] {
        table
            .set(
                &Ctx::internal(),
                key.to_owned(),
                Note {
                    text: key.to_uppercase(),
                },
            )
            .await
            .expect("seed");
    }
    let mut keys = Vec::new();
    let mut request = PageRequest::first(2);
    for _ in 0..10 {
        let page = client.list(request.clone()).await.expect("page");
        keys.extend(page.page.iter().map(|r| r.key.clone()));
        match page.continue_cursor {
            Some(cursor) => request = PageRequest::after(cursor, 2),
            None => break,
        }
    }
    assert_eq!(keys, ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn errors_come_back_with_their_codes() {
    let server = serve().await;
    let admin_banners = admin::<SiteBanner>(&server, "site");
    let admin_notes = admin::<Note>(&server, "notes");
    let visitor = Client::<SiteBanner>::new(&format!("{}/site", server.base)).expect("client");
    let intruder = visitor
        .clone()
        .with_header("authorization", "Bearer guess")
        .expect("header");

    let err = visitor
        .set(SiteBannerKey::Banner, banner("x"))
        .await
        .expect_err("anonymous write");
    assert!(
        matches!(&err, Error::Forbidden { op: "set", required, .. } if required.contains("admin")),
        "{err:?}"
    );
    let err = intruder
        .rm(SiteBannerKey::Banner)
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), ErrorCode::Forbidden);
    let err = visitor.list(PageRequest::first(5)).await.expect_err("list");
    assert_eq!(err.code(), ErrorCode::Forbidden);

    let err = admin_banners
        .set(SiteBannerKey::Banner, banner(&"é".repeat(201)))
        .await
        .expect_err("too long");
    match &err {
        Error::ValidationFailed { fields, .. } => assert_eq!(fields[0].path, "message"),
        other => panic!("{other:?}"),
    }

    let err = admin_notes
        .set("bad\u{0}key".to_owned(), Note { text: "x".into() })
        .await
        .expect_err("control character");
    assert_eq!(err.code(), ErrorCode::InvalidKey);
    let err = admin_notes
        .list(PageRequest::after("garbage", 5))
        .await
        .expect_err("cursor");
    assert_eq!(err.code(), ErrorCode::InvalidCursor);
    let err = admin_notes
        .list(PageRequest::first(5000))
        .await
        .expect_err("limit");
    assert_eq!(err.code(), ErrorCode::ValidationFailed);

    // A hook's refusal.
    server
        .store
        .table::<SiteBanner>()
        .before_set("no-shouting", |change| async move {
            if change.value.message.ends_with('!') {
                Err(HookError::new("no shouting"))
            } else {
                Ok(change.value)
            }
        });
    let err = admin_banners
        .set(SiteBannerKey::Banner, banner("hey!"))
        .await
        .expect_err("hook");
    assert!(
        matches!(&err, Error::Rejected { hook, message, .. } if hook == "no-shouting" && message == "no shouting"),
        "{err:?}"
    );

    // A hook's panic: INTERNAL, not a retryable BACKEND error.
    server
        .store
        .table::<SiteBanner>()
        .before_set("explodes", |change| async move {
            if change.value.message == "boom" {
                panic!("hook exploded");
            }
            Ok(change.value)
        });
    let err = admin_banners
        .set(SiteBannerKey::Banner, banner("boom"))
        .await
        .expect_err("panicking hook");
    assert_eq!(err.code(), kv_runtime::ErrorCode::Internal, "{err:?}");
    assert!(!err.is_retryable());
    assert!(
        matches!(&err, Error::HookPanicked { hook, .. } if hook == "explodes"),
        "{err:?}"
    );

    // The rate limit: 3 writes a minute for this user.
    for i in 0..3 {
        admin_notes
            .set(format!("n{i}"), Note { text: "x".into() })
            .await
            .expect("within the limit");
    }
    let err = admin_notes
        .set("n3".to_owned(), Note { text: "x".into() })
        .await
        .expect_err("over the limit");
    match err {
        Error::RateLimited { retry_after, .. } => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60))
        }
        other => panic!("{other:?}"),
    }

    // Nothing above changed the banner.
    assert_eq!(
        server
            .store
            .table::<SiteBanner>()
            .get(SiteBannerKey::Banner)
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn network_failures_are_backend_errors() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let client = Client::<SiteBanner>::new(&format!("http://{addr}/api"))
        .expect("client")
        .with_timeout(Duration::from_secs(5));
    let err = client
        .get(SiteBannerKey::Banner)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), ErrorCode::Backend);
    assert!(err.is_retryable());

    // https:// is fine now (tests/web_client_tls.rs); these are not.
    for bad in ["not a url", "ftp://x/y", "http://127.0.0.1/api?x=1"] {
        let err = Client::<SiteBanner>::new(bad).expect_err(bad);
        assert_eq!(err.code(), ErrorCode::Config, "{bad}");
    }
    let err = Client::<SiteBanner>::new("http://127.0.0.1/api")
        .and_then(|c| c.with_header("bad header", "x"))
        .expect_err("header name");
    assert_eq!(err.code(), ErrorCode::Config);
}

/// A request the web layer itself refuses (here: a base URL with no routes
/// behind it) is CONFIG, which says not to retry; not a retryable BACKEND.
#[tokio::test]
async fn refusals_of_the_web_layer_are_not_retryable() {
    let server = serve().await;
    let lost = Client::<SiteBanner>::new(&format!("{}/api/kv/nowhere", server.base))
        .expect("client")
        .with_header("authorization", "Bearer admin")
        .expect("header");
    let err = lost
        .set(SiteBannerKey::Banner, banner("x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config, "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("base URL"), "{err}");
}
