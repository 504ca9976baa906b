//! The axum router of one table.

use std::future::Future;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::origin::{refuse_form_content, OriginPolicy};
use super::server::BodyTimedOut;
use super::streams::{StreamCaps, DEFAULT_MAX_EVENT_STREAMS, DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT};
use crate::context::Ctx;
use crate::error::{Error, FieldError, Result};
use crate::row::{PageRequest, Row};
use crate::schema::{BoxFuture, KvKey, KvSchema, SoftDelete};
use crate::table::Table;

/// How the application turns a request into the caller's [`Ctx`].
///
/// The router calls it for every route that needs a caller (`GET /`, `PUT`,
/// `DELETE`, `POST .../restore`, `GET .../history`, `POST .../revert`) and
/// never for the public reads
/// (`GET /{key}`, `GET /{key}/events`). The router itself never builds a
/// context: whatever this function returns is the caller, and nothing else
/// (in particular, never [`Ctx::internal`]) is used for a request.
///
/// Any `Fn(&Parts) -> impl Future<Output = Result<Ctx, ApiError>>` is one
/// (annotate the closure's argument as `&Parts`); the future must own what
/// it needs, so copy the headers it reads before the `async` block.
/// Implement the trait yourself when the future should borrow the request.
///
/// Return [`Ctx::anonymous`] for a request without credentials (writes then
/// fail with 403 `FORBIDDEN`, by the table's write role) and an
/// [`ApiError`] (say [`ApiError::unauthorized`]) to refuse a request with
/// credentials that are wrong. For per-address rate limits, copy the
/// client address from `parts.extensions` (axum's `ConnectInfo`) into
/// [`Ctx::with_client_addr`].
pub trait ContextFn: Send + Sync + 'static {
    /// Builds the caller's context from the request head.
    fn context<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Ctx, ApiError>>;
}

impl<F, Fut> ContextFn for F
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Ctx, ApiError>> + Send + 'static,
{
    fn context<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Result<Ctx, ApiError>> {
        Box::pin(self(parts))
    }
}

type RestoreFn<S> = fn(Table<S>, Ctx, <S as KvSchema>::Key) -> BoxFuture<'static, Result<Row<S>>>;

/// Margin the default body limit allows over the table's value limit, for
/// the `{"value": ..., "expected_updated_at": ...}` envelope and whitespace.
pub const BODY_LIMIT_MARGIN: usize = 4096;

/// Builds the router of one table; see the [module docs](super) for the
/// routes. Start with [`router`] or [`KvRouter::new`], finish with
/// [`KvRouter::build`].
pub struct KvRouter<S: KvSchema, C> {
    table: Table<S>,
    ctx: C,
    body_limit: usize,
    restore: Option<RestoreFn<S>>,
    origins: OriginPolicy,
    max_streams: usize,
    max_streams_per_client: usize,
}

/// Starts the router of `table`, with `ctx_fn` turning a request into the
/// caller's context (see [`ContextFn`]). Add
/// [`with_restore`](KvRouter::with_restore) on `soft_delete` tables, then
/// [`build`](KvRouter::build) and nest the result where it belongs:
///
/// ```no_run
/// use axum::http::request::Parts;
/// use kv_runtime::web::{self, ApiError};
/// use kv_runtime::{Ctx, Kv, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// #[kv(keys = [banner], write_role = admin, soft_delete)]
/// struct SiteBanner {
///     active: bool,
///     message: String,
/// }
///
/// # async fn run() -> kv_runtime::Result<()> {
/// let store = Store::open("sqlite://site.db").await?;
/// let api = web::router(store.table::<SiteBanner>(), |parts: &Parts| {
///     let token = parts.headers.get("authorization").cloned();
///     async move {
///         match token.as_ref().map(|t| t.as_bytes()) {
///             None => Ok(Ctx::anonymous()),
///             Some(b"Bearer let-me-in") => Ok(Ctx::user("ada").with_role("admin")),
///             Some(_) => Err(ApiError::unauthorized("unknown token")),
///         }
///     }
/// })
/// .with_restore()
/// .build();
/// let app: axum::Router = axum::Router::new().nest("/api/kv/site", api);
/// # let _ = app; Ok(())
/// # }
/// ```
pub fn router<S, F, Fut>(table: Table<S>, ctx_fn: F) -> KvRouter<S, F>
where
    S: KvSchema,
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Ctx, ApiError>> + Send + 'static,
{
    KvRouter::new(table, ctx_fn)
}

impl<S: KvSchema, C: ContextFn> KvRouter<S, C> {
    /// Starts the router of `table` with the application's context function.
    pub fn new(table: Table<S>, ctx: C) -> Self {
        KvRouter {
            table,
            ctx,
            body_limit: S::MAX_VALUE_BYTES.saturating_add(BODY_LIMIT_MARGIN),
            restore: None,
            origins: OriginPolicy::new(),
            max_streams: DEFAULT_MAX_EVENT_STREAMS,
            max_streams_per_client: DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT,
        }
    }

    /// The largest request body accepted, in bytes; larger ones are 413
    /// `PAYLOAD_TOO_LARGE` before they are read to the end. Default: the
    /// table's `max_value_bytes` plus [`BODY_LIMIT_MARGIN`].
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Also accepts state-changing requests (`PUT`, `DELETE`,
    /// `POST .../restore`, `POST .../revert`) whose `Origin` is `origin`, e.g.
    /// `"https://admin.example.com"`, an admin front end served from
    /// another host. Without it, only requests from the router's own host
    /// (and requests without `Origin`, from clients that are not browsers)
    /// are accepted; others are 403 `CROSS_ORIGIN`. See [`OriginPolicy`].
    ///
    /// This does not answer CORS preflights: a front end on another origin
    /// also needs a CORS layer (e.g. tower-http's `CorsLayer`) allowing it.
    ///
    /// # Panics
    ///
    /// If `origin` is not `scheme://host[:port]`.
    pub fn allow_origin(mut self, origin: &str) -> Self {
        self.origins = self.origins.allow(origin);
        self
    }

    /// The most event streams (`GET /{key}/events`) this router keeps open
    /// at once, for all clients together; more are 429
    /// `TOO_MANY_STREAMS` with `Retry-After`. Default
    /// [`DEFAULT_MAX_EVENT_STREAMS`] (512). With several routers on one
    /// server, keep their sum below the server's
    /// [`max_connections`](super::Server::max_connections), so that
    /// streams cannot take every connection.
    pub fn max_event_streams(mut self, max: usize) -> Self {
        self.max_streams = max;
        self
    }

    /// The most event streams one client keeps open at once; more are 429
    /// `TOO_MANY_STREAMS` with `Retry-After`. Default
    /// [`DEFAULT_MAX_EVENT_STREAMS_PER_CLIENT`] (16). A client is an IPv4
    /// address or an IPv6 /64, from axum's `ConnectInfo<SocketAddr>`
    /// (which [`Server`](super::Server) provides); requests without it
    /// count against [`max_event_streams`](Self::max_event_streams) only.
    /// Behind a reverse proxy every client has the proxy's address: raise
    /// this (`usize::MAX` turns it off) and cap per client at the proxy.
    pub fn max_event_streams_per_client(mut self, max: usize) -> Self {
        self.max_streams_per_client = max;
        self
    }

    /// Adds `POST /{key}/restore` (only `soft_delete` tables have it).
    pub fn with_restore(mut self) -> Self
    where
        S: SoftDelete,
    {
        self.restore =
            Some(|table, ctx, key| Box::pin(async move { table.restore(&ctx, key).await }));
        self
    }

    /// The finished router, with relative routes, to be mounted with
    /// [`Router::nest`] in an app whose own state is `T` (the router keeps
    /// its state inside; `T` is only the app's).
    pub fn build<T: Clone + Send + Sync + 'static>(self) -> Router<T> {
        let has_restore = self.restore.is_some();
        let shared = Arc::new(Shared {
            table: self.table,
            ctx: self.ctx,
            body_limit: self.body_limit,
            restore: self.restore,
            origins: self.origins,
            streams: StreamCaps::new(S::TABLE, self.max_streams, self.max_streams_per_client),
        });
        let mut router = Router::new()
            .route("/", get(list::<S, C>))
            .route(
                "/{key}",
                get(get_row::<S, C>)
                    .put(put_row::<S, C>)
                    .delete(delete_row::<S, C>),
            )
            .route("/{key}/events", get(super::sse::events::<S, C>));
        if has_restore {
            router = router.route("/{key}/restore", post(restore_row::<S, C>));
        }
        if S::HISTORY.is_some() {
            router = router
                .route("/{key}/history", get(history::<S, C>))
                .route("/{key}/revert", post(revert_row::<S, C>));
        }
        router
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
            .fallback(|| async { ApiError::no_route() })
            .with_state(shared)
    }
}

impl<S: KvSchema, C: ContextFn> From<KvRouter<S, C>> for Router {
    fn from(r: KvRouter<S, C>) -> Router {
        r.build()
    }
}

pub(crate) struct Shared<S: KvSchema, C> {
    pub(crate) table: Table<S>,
    ctx: C,
    body_limit: usize,
    restore: Option<RestoreFn<S>>,
    origins: OriginPolicy,
    pub(crate) streams: Arc<StreamCaps>,
}

pub(crate) type AppState<S, C> = State<Arc<Shared<S, C>>>;

/// The checks every state-changing route makes first, before the context
/// function: the request is not one a cross-site page could send. A
/// foreign, `null` or malformed `Origin` (unless allowed) is 403
/// `CROSS_ORIGIN`; a form content type is 415 `UNSUPPORTED_MEDIA_TYPE`.
struct NotCrossSite;

impl<S: KvSchema, C: ContextFn> FromRequestParts<Arc<Shared<S, C>>> for NotCrossSite {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared<S, C>>,
    ) -> Result<Self, ApiError> {
        shared.origins.check(&parts.headers, &parts.uri)?;
        refuse_form_content(&parts.headers)?;
        Ok(NotCrossSite)
    }
}

/// The key from the path: anything that is not a key of the table is 400
/// `INVALID_KEY` (never a 404 route).
pub(crate) fn parse_key<S: KvSchema>(
    path: Result<Path<String>, PathRejection>,
) -> Result<S::Key, ApiError> {
    match path {
        Ok(Path(text)) => S::Key::parse_key(S::TABLE, &text).map_err(ApiError::from),
        Err(rejection) => Err(ApiError::from(Error::invalid_key(
            S::TABLE,
            "",
            format!(
                "the key in the path cannot be read: {}",
                rejection.body_text()
            ),
        ))),
    }
}

/// A row as JSON, with its version as the `ETag`.
fn row_response<S: KvSchema>(row: &Row<S>) -> Response {
    let mut response = Json(row).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", row.updated_at)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /{key}`: public, no context; the live row or `null`.
async fn get_row<S: KvSchema, C: ContextFn>(
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    match shared.table.get(key).await? {
        Some(row) => Ok(row_response(&row)),
        None => {
            let mut response = Json(Value::Null).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
struct ListParams {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// The page a `?cursor=..&limit=..` query asks for; a limit outside 1 to
/// [`PageRequest::MAX_ITEMS`] is VALIDATION_FAILED naming `limit` (of
/// `items`: rows, records).
fn page_request<S: KvSchema>(uri: &axum::http::Uri, items: &str) -> Result<PageRequest, ApiError> {
    let Query(params) = Query::<ListParams>::try_from_uri(uri)
        .map_err(|e| ApiError::malformed_query(e.body_text()))?;
    let num_items = match params.limit {
        None => PageRequest::DEFAULT_ITEMS,
        Some(n) if (1..=PageRequest::MAX_ITEMS).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::validation(
                S::TABLE,
                vec![FieldError::new(
                    "limit",
                    format!("from 1 to {} {items} per page", PageRequest::MAX_ITEMS),
                )],
            ))
        }
    };
    Ok(PageRequest {
        cursor: params.cursor,
        num_items,
    })
}

/// `GET /?cursor=..&limit=..`: one page, for the write role.
async fn list<S: KvSchema, C: ContextFn>(
    State(shared): AppState<S, C>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    let request = page_request::<S>(&parts.uri, "rows")?;
    let page = shared.table.list(&ctx, request).await?;
    Ok(Json(page).into_response())
}

/// The body of `PUT /{key}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "S: DeserializeOwned"))]
struct PutBody<S> {
    value: S,
    #[serde(default)]
    expected_updated_at: Option<i64>,
}

const BODY_SHAPE: &str =
    "the body is {\"value\": <the value>, \"expected_updated_at\": <optional number>}";

/// `PUT /{key}`: set, or set expecting a version (`If-Match` or the body's
/// `expected_updated_at`), or set only when there is no live row
/// (`If-None-Match: *`).
async fn put_row<S: KvSchema, C: ContextFn>(
    _: NotCrossSite,
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let (parts, body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    // Refuse callers without the write role before reading their body.
    shared.table.authorize(&ctx, "set").await?;
    let header_version = if_match(&parts.headers)?;
    let not_live = if_none_match_any(&parts.headers)?;
    if not_live && header_version.is_some() {
        return Err(ApiError::malformed_header(
            "If-None-Match: * (no live row) and If-Match (this version) contradict; send one",
        ));
    }
    if !is_json(&parts.headers) {
        return Err(ApiError::unsupported_media_type());
    }
    let bytes = read_body(&parts.headers, body, shared.body_limit).await?;
    let put = parse_put_body::<S>(&bytes)?;
    let expected = match (header_version, put.expected_updated_at) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::malformed_header(format!(
                "If-Match \"{h}\" and the body's expected_updated_at {b} disagree; send one"
            )))
        }
        (h, b) => h.or(b),
    };
    let row = match (expected, not_live) {
        (Some(_), true) => {
            return Err(ApiError::malformed_header(
                "If-None-Match: * (no live row) and the body's expected_updated_at \
                 (this version) contradict; send one",
            ))
        }
        (Some(v), false) => shared.table.set_expecting(&ctx, key, put.value, v).await?,
        (None, true) => shared.table.set_if_absent(&ctx, key, put.value).await?,
        (None, false) => shared.table.set(&ctx, key, put.value).await?,
    };
    Ok(row_response(&row))
}

/// `DELETE /{key}`: `{ "deleted": bool }`.
async fn delete_row<S: KvSchema, C: ContextFn>(
    _: NotCrossSite,
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let (parts, _body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    if parts.headers.contains_key(header::IF_MATCH) {
        // Refused rather than ignored: a caller sending it expects a
        // conditional delete, which `rm` does not offer.
        return Err(ApiError::malformed_header(
            "DELETE is not conditional here; send it without If-Match",
        ));
    }
    let deleted = shared.table.rm(&ctx, key).await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

/// `POST /{key}/restore`: the restored (or already live) row.
async fn restore_row<S: KvSchema, C: ContextFn>(
    _: NotCrossSite,
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let Some(restore) = shared.restore else {
        return Err(ApiError::no_route());
    };
    let (parts, _body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    let row = restore(shared.table.clone(), ctx, key).await?;
    Ok(row_response(&row))
}

/// `GET /{key}/history?cursor=..&limit=..`: one page of the row's
/// history, newest first, for the write role (only on tables with
/// `history`).
async fn history<S: KvSchema, C: ContextFn>(
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let (parts, _body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    let request = page_request::<S>(&parts.uri, "records")?;
    let page = shared.table.history_page(&ctx, &key, request).await?;
    let mut response = Json(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The body of `POST /{key}/revert`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    version: i64,
    #[serde(default)]
    expected_updated_at: Option<i64>,
}

const REVERT_SHAPE: &str = "the body is {\"version\": <the version to write back>, \
     \"expected_updated_at\": <optional number>}";

/// The largest `POST /{key}/revert` body read: two numbers and their names.
const REVERT_BODY_LIMIT: usize = 1024;

/// `POST /{key}/revert`: writes the value of a history record back, over
/// the version the caller saw (`If-Match` or the body's
/// `expected_updated_at`), or else over the row as the revert reads it.
async fn revert_row<S: KvSchema, C: ContextFn>(
    _: NotCrossSite,
    State(shared): AppState<S, C>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = parse_key::<S>(path)?;
    let (parts, body) = request.into_parts();
    let ctx = shared.ctx.context(&parts).await?;
    // Refuse callers without the write role before reading their body.
    shared.table.authorize(&ctx, "revert").await?;
    let header_version = if_match(&parts.headers)?;
    if parts.headers.contains_key(header::IF_NONE_MATCH) {
        return Err(ApiError::malformed_header(
            "a revert is conditional on a version (If-Match), not on its absence; send it \
             without If-None-Match",
        ));
    }
    if !is_json(&parts.headers) {
        return Err(ApiError::unsupported_media_type());
    }
    let bytes = read_body(&parts.headers, body, REVERT_BODY_LIMIT).await?;
    let revert = parse_body::<S, RevertBody>(&bytes, REVERT_SHAPE)?;
    let expected = match (header_version, revert.expected_updated_at) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::malformed_header(format!(
                "If-Match \"{h}\" and the body's expected_updated_at {b} disagree; send one"
            )))
        }
        (h, b) => h.or(b),
    };
    let row = shared
        .table
        .revert_to(&ctx, &key, revert.version, expected)
        .await?;
    Ok(row_response(&row))
}

/// The expected version from `If-Match: "<updated_at>"`: exactly one
/// strong entity tag holding the decimal `updated_at`. `*`, weak tags and
/// lists are refused (400 `MALFORMED_HEADER`).
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let mut values = headers.get_all(header::IF_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::malformed_header("send one If-Match header"));
    }
    let bad = || {
        ApiError::malformed_header(
            "If-Match must be one quoted updated_at, e.g. If-Match: \"1718000000000\"",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    inner.parse::<i64>().map(Some).map_err(|_| bad())
}

/// Whether the request sends `If-None-Match: *` (write only when there is
/// no live row). Any other `If-None-Match` (entity tags, lists, several
/// headers) is refused (400 `MALFORMED_HEADER`) rather than ignored.
fn if_none_match_any(headers: &HeaderMap) -> Result<bool, ApiError> {
    let mut values = headers.get_all(header::IF_NONE_MATCH).iter();
    let Some(value) = values.next() else {
        return Ok(false);
    };
    if values.next().is_some() {
        return Err(ApiError::malformed_header("send one If-None-Match header"));
    }
    match value.to_str().map(str::trim) {
        Ok("*") => Ok(true),
        _ => Err(ApiError::malformed_header(
            "If-None-Match must be * (write only when there is no live row)",
        )),
    }
}

/// Whether the body is declared as UTF-8 JSON.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(text)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

/// Reads the body, refusing more than `limit` bytes (at once when
/// `Content-Length` says so, else as soon as the limit is passed).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(ApiError::too_large(limit)),
        Err(e) if timed_out(&*e) => Err(ApiError::request_timeout()),
        Err(_) => Err(ApiError::malformed_body("the body could not be read")),
    }
}

/// Whether a body error is (or wraps) the server's body timeout.
fn timed_out(mut err: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        match err.source() {
            Some(source) => err = source,
            None => return false,
        }
    }
}

/// Decodes the PUT body: a JSON syntax error is 400 `MALFORMED_BODY`; JSON
/// of the wrong shape or types is 422 `VALIDATION_FAILED`, naming the path
/// within the body (e.g. `value.active`).
fn parse_put_body<S: KvSchema>(bytes: &[u8]) -> Result<PutBody<S>, ApiError> {
    parse_body::<S, PutBody<S>>(bytes, BODY_SHAPE)
}

/// Decodes a JSON body of type `B` for table `S`, as [`parse_put_body`]
/// does; `shape` describes the body in messages.
fn parse_body<S: KvSchema, B: DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<B, ApiError> {
    use serde_json::error::Category;

    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: std::result::Result<B, _> = serde_path_to_error::deserialize(&mut de);
    let body = match result {
        Ok(body) => body,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                Category::Data => {
                    let path = if path == "." { String::new() } else { path };
                    let message = if path.is_empty() {
                        format!("{inner}; {shape}")
                    } else {
                        inner.to_string()
                    };
                    ApiError::validation(S::TABLE, vec![FieldError::new(path, message)])
                }
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::malformed_body(format!("the body is not valid JSON: {inner}"))
                }
            });
        }
    };
    de.end()
        .map_err(|e| ApiError::malformed_body(format!("the body is not valid JSON: {e}")))?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn headers(name: header::HeaderName, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.append(name.clone(), v);
            }
        }
        h
    }

    #[test]
    fn if_match_accepts_one_quoted_version() {
        let h = headers(header::IF_MATCH, &["\"42\""]);
        assert_eq!(if_match(&h).ok(), Some(Some(42)));
        assert_eq!(if_match(&HeaderMap::new()).ok(), Some(None));
        for bad in [
            "42",
            "W/\"42\"",
            "*",
            "\"1\", \"2\"",
            "\"\"",
            "\"-1\"",
            "\"99999999999999999999\"",
        ] {
            let h = headers(header::IF_MATCH, &[bad]);
            assert_eq!(
                if_match(&h).map_err(|e| e.status()).err(),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
        let two = headers(header::IF_MATCH, &["\"1\"", "\"1\""]);
        assert!(if_match(&two).is_err());
    }

    #[test]
    fn if_none_match_accepts_only_a_star() {
        assert_eq!(if_none_match_any(&HeaderMap::new()).ok(), Some(false));
        let star = headers(header::IF_NONE_MATCH, &["*"]);
        assert_eq!(if_none_match_any(&star).ok(), Some(true));
        for bad in ["\"42\"", "W/\"42\"", "*, \"1\"", ""] {
            let h = headers(header::IF_NONE_MATCH, &[bad]);
            assert_eq!(
                if_none_match_any(&h).map_err(|e| e.status()).err(),
                Some(StatusCode::BAD_REQUEST),
                "{bad}"
            );
        }
        let two = headers(header::IF_NONE_MATCH, &["*", "*"]);
        assert!(if_none_match_any(&two).is_err());
    }

    #[test]
    fn content_type_must_be_utf8_json() {
        for ok in [
            "application/json",
            "Application/JSON; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json(&headers(header::CONTENT_TYPE, &[ok])), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/json; charset=latin1",
            "application/jsonx",
            "",
        ] {
            assert!(!is_json(&headers(header::CONTENT_TYPE, &[bad])), "{bad}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
