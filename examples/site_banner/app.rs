//! The site-banner demo app: pages that show a banner read from kv without
//! login, kept current over server-sent events, and an admin panel that
//! saves, clears and restores it through kv's web router, and shows who
//! changed it, when and to what, with a revert button per change.
//!
//! Shared by `examples/site_banner.rs` (which runs it) and
//! `tests/browser_site_banner.rs` (which drives it in a headless browser).
//!
//! Sign-in is a demo: a form posting a name sets a cookie holding that
//! name, and everyone signed in is an `admin`. A real app would check a
//! session here instead; the kv side (the context function) stays the same.
//!
//! Every response carries a Content-Security-Policy (scripts, styles and
//! connections from this origin only: the pages use `/assets` files, no
//! inline script or style) and refuses framing; the sign-in form, like
//! kv's write routes, refuses posts from other origins.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kv_runtime::ts::TS;
use kv_runtime::web::{self, ApiError, OriginPolicy};
use kv_runtime::{Ctx, Kv, Row, Table};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The banner shown at the top of every page.
// Its TypeScript, for the pages' scripts, is `SiteBanner.ts` beside this
// file; `tests/ts_bindings.rs` keeps it current.
#[derive(Kv, TS, Serialize, Deserialize, garde::Validate, Clone, Debug, PartialEq)]
#[ts(crate = "kv_runtime::ts::ts_rs")]
#[kv(
    keys = [banner],
    write_role = admin,
    soft_delete,
    max_value_bytes = 4096,
    history(keep = 50)
)]
pub struct SiteBanner {
    /// Whether the banner is shown.
    #[garde(skip)]
    pub active: bool,
    /// The text, at most 200 characters.
    #[garde(length(chars, max = 200))]
    pub message: String,
}

/// Where kv's router is mounted.
pub const API: &str = "/api/kv/site";

/// The demo's session cookie: the signed-in name.
const COOKIE: &str = "kv_demo_user";

const STYLE: &str = include_str!("style.css");
const BANNER_JS: &str = include_str!("banner.js");
const ADMIN_JS: &str = include_str!("admin.js");

/// kv's TypeScript client as plain ES modules (`clients/ts/dist`, built by
/// `tsc` and checked in), served at `/assets/kv/`: the pages' scripts
/// import `./kv/index.js`, no bundler needed.
const KV_CLIENT: &[(&str, &str)] = &[
    ("index.js", include_str!("../../clients/ts/dist/index.js")),
    ("client.js", include_str!("../../clients/ts/dist/client.js")),
    ("errors.js", include_str!("../../clients/ts/dist/errors.js")),
    ("watch.js", include_str!("../../clients/ts/dist/watch.js")),
    ("sse.js", include_str!("../../clients/ts/dist/sse.js")),
    ("codes.js", include_str!("../../clients/ts/dist/codes.js")),
];

/// The pages' Content-Security-Policy: everything from this origin only,
/// no inline script or style, no plugins, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The process's Prometheus recorder, installed once (the `metrics`
/// facade has one global recorder): kv's metrics (feature `metrics`) then
/// show at `/metrics`.
pub fn install_metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (a test harness's): keep it.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole app: pages, sign-in, assets, kv's router under [`API`],
/// `/healthz` (the store's health, for a load balancer) and `/metrics`
/// (Prometheus). Serve it with `kv_runtime::web::serve` (or `web::Server`), which gives
/// handlers the client address that kv's rate limits count anonymous
/// callers by.
pub fn app(table: Table<SiteBanner>) -> Router {
    install_metrics();
    let api = web::router(table.clone(), demo_ctx).with_restore().build();
    Router::new()
        .route("/", get(home))
        .route("/about", get(about))
        .route("/admin", get(admin))
        .route("/signin", post(sign_in))
        .route("/signout", get(sign_out))
        .route("/assets/{name}", get(asset))
        .route("/metrics", get(prometheus))
        .nest("/healthz", web::health_router(table.store().clone()))
        .route("/assets/kv/{name}", get(kv_client))
        .nest(API, api)
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(table)
}

/// Adds the CSP and anti-framing headers to every response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// kv's context function: the demo cookie's name becomes an admin; no
/// cookie is an anonymous visitor (who may read, and whose writes the table
/// refuses with 403); a malformed cookie is 401. Never an internal caller.
fn demo_ctx(parts: &Parts) -> impl Future<Output = Result<Ctx, ApiError>> + Send + 'static {
    let user = signed_in(&parts.headers);
    let addr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    async move {
        let ctx = match user {
            Ok(Some(name)) => Ctx::user(name).with_role("admin"),
            Ok(None) => Ctx::anonymous(),
            Err(()) => {
                return Err(ApiError::unauthorized(
                    "the demo session cookie is malformed; sign in again",
                ))
            }
        };
        Ok(match addr {
            Some(addr) => ctx.with_client_addr(addr),
            None => ctx,
        })
    }
}

/// The signed-in name: `Ok(None)` without the cookie, `Err` when it holds
/// something no sign-in could have set.
fn signed_in(headers: &HeaderMap) -> Result<Option<String>, ()> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                if name == COOKIE {
                    return if valid_name(value) {
                        Ok(Some(value.to_owned()))
                    } else {
                        Err(())
                    };
                }
            }
        }
    }
    Ok(None)
}

/// Names are 1 to 32 ASCII letters, digits, `-`, `_` or `.`: safe in a
/// cookie and in HTML as they are.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Escapes text for HTML element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page: the banner (as stored now) at the top, then `body`.
fn page(title: &str, current: &Option<Row<SiteBanner>>, user: Option<&str>, body: &str) -> String {
    let shown = current.as_ref().filter(|row| row.value.active);
    let (hidden, text) = match shown {
        Some(row) => ("", escape(&row.value.message)),
        None => (" hidden", String::new()),
    };
    let who = match user {
        Some(name) => format!(
            "<span class=\"who\">{} · <a href=\"/signout\" id=\"sign-out\">Sign out</a></span>",
            escape(name)
        ),
        None => "<span class=\"who\"><a href=\"/admin\">Sign in</a></span>".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Site banner demo</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<div id="site-banner" class="banner" role="status" aria-live="polite"{hidden}><span class="banner-text">{text}</span></div>
<header><nav><a href="/">Home</a><a href="/about">About</a><a href="/admin">Admin</a></nav>{who}</header>
<main>
{body}
</main>
<footer>kv site-banner demo · <span id="live-state">connecting…</span></footer>
<script src="/assets/banner.js" type="module"></script>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The banner as stored now; a failed read shows no banner (the live stream
/// fills it in once storage answers).
async fn current(table: &Table<SiteBanner>) -> Option<Row<SiteBanner>> {
    table.get(SiteBannerKey::Banner).await.ok().flatten()
}

fn html(body: String) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

async fn home(State(table): State<Table<SiteBanner>>, headers: HeaderMap) -> Response {
    let user = signed_in(&headers).ok().flatten();
    let body = "<h1>Welcome</h1>\n<p>This page reads the site banner without any login. When an \
                admin changes it, the banner above updates at once, without a reload.</p>";
    html(page("Home", &current(&table).await, user.as_deref(), body))
}

async fn about(State(table): State<Table<SiteBanner>>, headers: HeaderMap) -> Response {
    let user = signed_in(&headers).ok().flatten();
    let body = "<h1>About</h1>\n<p>The banner is one row of a <code>kv</code> table \
                (<code>SiteBanner</code>, key <code>banner</code>), stored in SQLite or \
                PostgreSQL. Pages read it publicly and follow its changes over server-sent \
                events; only admins may write it.</p>";
    html(page("About", &current(&table).await, user.as_deref(), body))
}

async fn admin(State(table): State<Table<SiteBanner>>, headers: HeaderMap) -> Response {
    let current = current(&table).await;
    match signed_in(&headers) {
        Ok(Some(name)) => {
            let (message, active, version) = match &current {
                Some(row) => (
                    escape(&row.value.message),
                    row.value.active,
                    row.updated_at.to_string(),
                ),
                None => (String::new(), true, String::new()),
            };
            let checked = if active { " checked" } else { "" };
            let body = format!(
                r#"<h1>Banner admin</h1>
<form id="banner-form" data-api="{API}" data-updated-at="{version}">
<label for="message">Message</label>
<textarea id="message" name="message" rows="3" maxlength="200">{message}</textarea>
<label class="check"><input type="checkbox" id="active" name="active"{checked}> Show the banner</label>
<div class="buttons">
<button type="submit" id="save">Save</button>
<button type="button" id="clear">Clear</button>
<button type="button" id="restore">Restore</button>
</div>
</form>
<p id="status" class="status" role="status"></p>
<p id="stale" class="note" hidden>The banner has changed since you loaded it; saving now will report a conflict.</p>
<div id="conflict" class="conflict" role="alert" hidden>
<p><strong>Someone else changed the banner.</strong> Your text was not saved.</p>
<p>Current text: <q id="conflict-current"></q></p>
<button type="button" id="load-current">Load the current text</button>
</div>
<section class="history" aria-labelledby="history-title">
<h2 id="history-title">Recent changes</h2>
<p id="history-note" class="note">Loading…</p>
<ol id="history"></ol>
</section>
<script src="/assets/admin.js" type="module"></script>"#
            );
            html(page("Admin", &current, Some(&name), &body))
        }
        _ => html(page("Sign in", &current, None, &sign_in_form(None))),
    }
}

fn sign_in_form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    format!(
        r#"<h1>Sign in</h1>
{error}<p>This demo has no passwords: anyone who signs in is an admin.</p>
<form id="sign-in" method="post" action="/signin">
<label for="name">Your name</label>
<input id="name" name="name" required maxlength="32" pattern="[A-Za-z0-9._\-]+" autocomplete="username">
<button type="submit" id="sign-in-button">Sign in</button>
</form>"#
    )
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
}

/// Signs in; a post from another origin (login CSRF: a foreign page
/// signing the visitor in under its own name) is 403 `CROSS_ORIGIN`, as
/// for kv's write routes.
async fn sign_in(
    State(table): State<Table<SiteBanner>>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Err(refused) = OriginPolicy::new().check(&headers, &uri) {
        return refused.into_response();
    }
    let Ok(Form(form)) = form else {
        let body = sign_in_form(Some("Send the form with a name."));
        let page = page("Sign in", &current(&table).await, None, &body);
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    };
    let name = form.name.trim();
    if !valid_name(name) {
        let body = sign_in_form(Some(
            "Use 1 to 32 letters, digits, dots, dashes or underscores.",
        ));
        let page = page("Sign in", &current(&table).await, None, &body);
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let cookie = format!("{COOKIE}={name}; Path=/; HttpOnly; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}

/// kv's metrics in the Prometheus text format.
async fn prometheus() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        install_metrics().render(),
    )
        .into_response()
}

async fn sign_out() -> Response {
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// JavaScript modules must be served as JavaScript: browsers refuse to run
/// a module of another type (and `nosniff` forbids guessing).
const JS: &str = "text/javascript; charset=utf-8";

async fn asset(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "style.css" => asset_response("text/css; charset=utf-8", STYLE),
        "banner.js" => asset_response(JS, BANNER_JS),
        "admin.js" => asset_response(JS, ADMIN_JS),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

async fn kv_client(Path(name): Path<String>) -> Response {
    match KV_CLIENT.iter().find(|(file, _)| *file == name) {
        Some((_, text)) => asset_response(JS, text),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn asset_response(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn not_found(State(table): State<Table<SiteBanner>>, headers: HeaderMap) -> Response {
    let user = signed_in(&headers).ok().flatten();
    let body = "<h1>Not found</h1>\n<p><a href=\"/\">Back to the home page</a></p>";
    let page = page("Not found", &current(&table).await, user.as_deref(), body);
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}
