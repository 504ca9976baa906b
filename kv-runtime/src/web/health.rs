//! `GET` for a store's health: for load balancers and orchestrators.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::backend::FeedHealth;
use crate::store::Store;

/// A router answering `GET /` with the store's [`health`](Store::health):
/// 200 when [healthy](crate::Health::is_healthy), else 503, with a JSON
/// body of states only (no error text, which may name hosts: the server's
/// log has those):
///
/// ```json
/// { "healthy": true,
///   "backend": { "name": "postgres", "reachable": true, "round_trip_ms": 0.41, "feed": "verified" },
///   "replicas": [ { "table": "flags", "in_sync": true, "following": true, "stale_for_ms": null } ] }
/// ```
///
/// `feed` is `in_process`, `verified`, `unverified` or `disconnected`.
/// Mount it where the balancer looks: `Router::new().nest("/healthz",
/// web::health_router(store))`. It needs no caller: it reads nothing but
/// the states.
pub fn health_router<T: Clone + Send + Sync + 'static>(store: Store) -> Router<T> {
    Router::new().route("/", get(health)).with_state(store)
}

async fn health(State(store): State<Store>) -> Response {
    let health = store.health().await;
    let feed = match &health.backend.feed {
        FeedHealth::InProcess => "in_process",
        FeedHealth::Verified => "verified",
        FeedHealth::Unverified { .. } => "unverified",
        FeedHealth::Disconnected { .. } => "disconnected",
    };
    let replicas: Vec<Value> = health
        .replicas
        .iter()
        .map(|r| {
            json!({
                "table": r.table,
                "in_sync": r.status.in_sync,
                "following": r.status.following,
                "stale_for_ms": r.status.stale_for().map(|d| d.as_millis() as u64),
            })
        })
        .collect();
    let healthy = health.is_healthy();
    let body = json!({
        "healthy": healthy,
        "backend": {
            "name": health.backend.backend,
            "reachable": health.backend.reachable,
            "round_trip_ms": health.backend.round_trip.map(|d| d.as_secs_f64() * 1000.0),
            "feed": feed,
        },
        "replicas": replicas,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
