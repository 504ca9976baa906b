//! `GET /{key}/events`: the current state first, then every change, as
//! server-sent events; public, on memory and SQLite.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use kv_runtime::web::{self, ApiError};
use kv_runtime::{Ctx, Kv, Store, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::tempdir::TempDir;
use tower::ServiceExt;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(keys = [banner, maintenance], write_role = admin, soft_delete)]
struct SiteBanner {
    active: bool,
    message: String,
}

/// Reads `data:` payloads of default events from an SSE body.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    /// The next event's data as JSON, waiting at most 10 s.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if block.lines().any(|l| l.starts_with("event:")) {
                    panic!("unexpected named event: {block:?}");
                }
                if data.is_empty() {
                    continue; // a keep-alive comment or a bare `retry:`
                }
                return serde_json::from_str(&data.join("\n")).expect("JSON data");
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event within 10 s")
                .expect("the stream is open")
                .expect("a frame");
            if let Ok(bytes) = frame.into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
            }
        }
    }
}

fn app(table: &Table<SiteBanner>) -> Router {
    let never = |_: &axum::http::request::Parts| async {
        Err::<Ctx, _>(ApiError::unauthorized("the event stream must not ask"))
    };
    Router::new().nest(
        "/api/kv/site",
        web::router(table.clone(), never).with_restore().build(),
    )
}

async fn subscribe(app: &Router, uri: &str) -> Events {
    let response = app
        .clone()
        .oneshot(
            Request::get(uri)
                .header(header::AUTHORIZATION, "Bearer whatever")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
        Some(&b"text/event-stream"[..])
    );
    Events {
        body: response.into_body(),
        buffer: String::new(),
    }
}

async fn follows_changes(store: Store) {
    let table = store.table::<SiteBanner>();
    let admin = Ctx::user("ada").with_role("admin");
    let app = app(&table);
    let mut events = subscribe(&app, "/api/kv/site/banner/events").await;
    assert_eq!(events.next().await, Value::Null, "first: the current state");

    let value = SiteBanner {
        active: true,
        message: "hello".into(),
    };
    let row = table
        .set(&admin, SiteBannerKey::Banner, value)
        .await
        .expect("set");
    let event = events.next().await;
    assert_eq!(event, serde_json::to_value(&row).expect("row"));

    assert!(table.rm(&admin, SiteBannerKey::Banner).await.expect("rm"));
    assert_eq!(events.next().await, Value::Null, "cleared");

    let restored = table
        .restore(&admin, SiteBannerKey::Banner)
        .await
        .expect("restore");
    assert_eq!(
        events.next().await,
        serde_json::to_value(&restored).expect("row")
    );

    // Another key's changes are not on this stream; a late subscriber
    // starts from the current state.
    table
        .set(
            &admin,
            SiteBannerKey::Maintenance,
            SiteBanner {
                active: false,
                message: "m".into(),
            },
        )
        .await
        .expect("set maintenance");
    let mut late = subscribe(&app, "/api/kv/site/banner/events").await;
    assert_eq!(
        late.next().await,
        serde_json::to_value(&restored).expect("row")
    );
    let last = table
        .set(
            &admin,
            SiteBannerKey::Banner,
            SiteBanner {
                active: false,
                message: "bye".into(),
            },
        )
        .await
        .expect("set");
    let expected = serde_json::to_value(&last).expect("row");
    assert_eq!(events.next().await, expected, "the first subscriber");
    assert_eq!(late.next().await, expected, "the late subscriber");
}

#[tokio::test]
async fn events_follow_changes_in_memory() {
    follows_changes(Store::open("memory:").await.expect("store")).await;
}

#[tokio::test]
async fn events_follow_changes_on_sqlite() {
    let dir = TempDir::new("web-events");
    let url = format!("sqlite://{}", dir.join("kv.db").display());
    follows_changes(Store::open(&url).await.expect("store")).await;
}

#[tokio::test]
async fn an_unknown_key_has_no_stream() {
    let store = Store::open("memory:").await.expect("store");
    let app = app(&store.table::<SiteBanner>());
    for uri in [
        "/api/kv/site/nope/events",
        "/api/kv/site/%00/events",
        "/api/kv/site/../events",
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(json["code"], "INVALID_KEY", "{uri}");
    }
}
