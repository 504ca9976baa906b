//! `GET /{key}/events`: a key's states as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::Value;

use super::errors::ApiError;
use super::router::{parse_key, AppState, ContextFn};
use super::server::ServerStopping;
use crate::schema::KvSchema;
use crate::watch::WatchEvent;

/// How long a browser waits before reconnecting a closed stream.
const RECONNECT: Duration = Duration::from_secs(1);

/// Public: the context function is not called. The first event is the
/// current state, then one per change: each a default (`message`) event
/// whose data is the row as JSON, or `null` when there is no live row. A
/// state that cannot be read is a `kv-error` event (data: the JSON error; not `error`,
/// which `EventSource` keeps for its own connection errors)
/// and the stream goes on. A comment every 15 s keeps idle proxies from
/// closing the connection.
///
/// Each stream holds a slot of the router's caps (in all and per client)
/// until it ends or its client goes away; without a free slot the answer
/// is 429 `TOO_MANY_STREAMS`. Served by [`Server`](super::Server), the
/// stream ends when the server shuts down.
pub(crate) async fn events<S: KvSchema, C: ContextFn>(
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let slot = shared.streams.open(request.extensions())?;
    let stopping = request.extensions().get::<ServerStopping>().cloned();
    let watch = shared.table.watch(key).await?;
    let mut first = true;
    let stream = watch.map(move |item| {
        // The slot is freed when the stream is dropped.
        let _slot = &slot;
        let event = to_event(item);
        let event = if first { event.retry(RECONNECT) } else { event };
        first = false;
        Ok::<_, Infallible>(event)
    });
    let stream = stream.take_until(async move {
        match stopping {
            Some(stopping) => stopping.wait().await,
            None => std::future::pending().await,
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn to_event<S: KvSchema>(item: crate::Result<WatchEvent<S>>) -> Event {
    let data = item.map_err(ApiError::from).and_then(|state| {
        serde_json::to_string(&state.row).map_err(|e| {
            ApiError::from(crate::Error::backend(
                "the row cannot be encoded as JSON",
                e,
            ))
        })
    });
    match data {
        Ok(json) => Event::default().data(json),
        Err(err) => Event::default()
            .event("kv-error")
            .data(Value::Object(err.body().clone()).to_string()),
    }
}
