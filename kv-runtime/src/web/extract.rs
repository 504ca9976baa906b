//! axum integration: the caller from a request extension, tables as state
//! (documented on [`Caller`]).

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::errors::ApiError;
use crate::context::Ctx;
use crate::schema::KvSchema;
use crate::store::Store;
use crate::table::Table;

/// The caller of a request: the [`Ctx`] that the app's middleware inserted
/// as a request extension, or [`Ctx::anonymous`] when there is none. Either
/// way it carries the client address from axum's `ConnectInfo` when the
/// middleware's context had none (rate limits count anonymous callers by
/// it). Never an internal caller, unless the app's own middleware put one
/// there.
///
/// # axum integration
///
/// kv fits into an axum app's own conventions: the caller's [`Ctx`] from a
/// request extension that the app's auth middleware inserts, and tables as
/// axum state.
///
/// - [`Caller`] is an extractor for the app's handlers; [`ctx_from_extension`]
///   is the same thing as the router's context function.
/// - `State<Table<S>>` works in an app whose state is a [`Store`]. An app
///   with a state struct of its own derives axum's `FromRef` for it, with a
///   `Table<S>` or a [`Replica<S>`](crate::Replica) field: both are cheap
///   clones (`#[derive(Clone, FromRef)] struct AppState { flags:
///   Replica<Flags>, banners: Table<SiteBanner> }`).
///
/// ```no_run
/// use axum::extract::{Request, State};
/// use axum::middleware::{self, Next};
/// use axum::response::Response;
/// use axum::routing::get;
/// use axum::Router;
/// use kv_runtime::web::{self, Caller};
/// use kv_runtime::{Ctx, Kv, Store, Table};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// #[kv(keys = [banner], write_role = admin, soft_delete)]
/// struct SiteBanner { active: bool, message: String }
///
/// /// The app's own auth middleware: it decides who is calling, once, and
/// /// leaves the answer in the request for kv and for the app's handlers.
/// async fn auth(mut request: Request, next: Next) -> Response {
///     let admin = request.headers().get("authorization").is_some_and(|v| v == "Bearer ok");
///     let ctx = if admin { Ctx::user("ada").with_role("admin") } else { Ctx::anonymous() };
///     request.extensions_mut().insert(ctx);
///     next.run(request).await
/// }
///
/// /// An app handler: the table comes from the app's state (a `Store`),
/// /// the caller from the middleware.
/// async fn banner_text(State(banners): State<Table<SiteBanner>>, Caller(ctx): Caller) -> String {
///     let _ = ctx.user_id();
///     match banners.get(SiteBannerKey::Banner).await {
///         Ok(Some(row)) => row.value.message,
///         _ => String::new(),
///     }
/// }
///
/// # async fn run() -> kv_runtime::Result<()> {
/// let store = Store::open("sqlite://app.db").await?;
/// let api = web::router(store.table::<SiteBanner>(), web::ctx_from_extension)
///     .with_restore()
///     .build();
/// let app: Router = Router::new()
///     .route("/banner.txt", get(banner_text))
///     .nest("/api/kv/site", api)
///     .layer(middleware::from_fn(auth))
///     .with_state(store);
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Caller(pub Ctx);

impl Caller {
    /// The caller of the request whose head is `parts`.
    pub fn of(parts: &Parts) -> Caller {
        let ctx = parts.extensions.get::<Ctx>().cloned().unwrap_or_default();
        if ctx.client_addr().is_some() {
            return Caller(ctx);
        }
        match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(addr)) => Caller(ctx.with_client_addr(addr.ip().to_string())),
            None => Caller(ctx),
        }
    }
}

impl<T: Send + Sync> FromRequestParts<T> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &T) -> Result<Self, Infallible> {
        Ok(Caller::of(parts))
    }
}

/// A context function for [`router`](super::router) that takes the caller
/// from the request's extensions, as [`Caller`] does: use it when the app's
/// own auth middleware inserts a [`Ctx`] into each request.
pub fn ctx_from_extension(parts: &Parts) -> Ready<Result<Ctx, ApiError>> {
    ready(Ok(Caller::of(parts).0))
}

/// `State<Table<S>>` in any handler of an app whose state is a [`Store`]
/// (or holds one, through the app's own `FromRef`).
impl<S: KvSchema> FromRef<Store> for Table<S> {
    fn from_ref(store: &Store) -> Table<S> {
        store.table()
    }
}
