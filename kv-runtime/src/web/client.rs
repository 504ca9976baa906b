//! A typed client for the routes of [`super::router`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::errors::codes;
use crate::backend::Expect;
use crate::error::{Error, FieldError, Result};
use crate::history::HistoryPage;
use crate::row::{Page, PageRequest, Row};
use crate::schema::{History, KvKey, KvSchema, SoftDelete};

type Http = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP client: plain for `http://`; for `https://`, rustls trusting
/// `roots`, or the system's trust store when `None`.
fn http(https: bool, roots: Option<rustls::RootCertStore>) -> Result<Http> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("cannot set up TLS for the kv web client: {e}")))?;
    let roots = match (https, roots) {
        (_, Some(roots)) => roots,
        (true, None) => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            // An empty store is not an error here: the app may give its
            // roots next (with_root_certificate); a request without any
            // fails with a CONFIG error naming the certificate.
            roots.add_parsable_certificates(found.certs);
            roots
        }
        // Plain HTTP: no certificate is ever checked.
        (false, None) => rustls::RootCertStore::empty(),
    };
    let tls = builder.with_root_certificates(roots).with_no_client_auth();
    let mut plain = HttpConnector::new();
    plain.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(plain);
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}

/// A typed client for a table's routes, using the same key type and
/// [`Row`] as the server.
///
/// Errors come back as the [`Error`] the server's table raised, with the
/// same code (`CONFLICT` with its `current_updated_at`, `RATE_LIMITED` with
/// its wait, ...). The web layer's own refusals map to the nearest code:
/// 401 `UNAUTHORIZED` to [`Error::Forbidden`], 413 `PAYLOAD_TOO_LARGE` to
/// [`Error::ValidationFailed`], any other 4xx to [`Error::Config`] (not
/// retryable: the same request would be refused again); every network
/// failure, timeout or 5xx without a kv error is [`Error::Backend`].
///
/// HTTP/1.1, plain (`http://`) or over TLS (`https://`, rustls; the
/// system's trust store, or [`Client::with_root_certificate`]). Cheap to
/// clone; clones share one connection pool.
///
/// ```no_run
/// # use kv_runtime::{Kv, web::Client};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # #[kv(keys = [banner], write_role = admin)]
/// # struct SiteBanner { active: bool, message: String }
/// # async fn run() -> kv_runtime::Result<()> {
/// let admin = Client::<SiteBanner>::new("http://127.0.0.1:3000/api/kv/site")?
///     .with_header("authorization", "Bearer let-me-in")?;
/// let row = admin
///     .set(SiteBannerKey::Banner, SiteBanner { active: true, message: "Hi".into() })
///     .await?;
/// assert_eq!(admin.get(SiteBannerKey::Banner).await?, Some(row));
/// # Ok(()) }
/// ```
pub struct Client<S: KvSchema> {
    base: String,
    headers: HeaderMap,
    http: Http,
    timeout: Duration,
    max_response_bytes: usize,
    _schema: PhantomData<fn() -> S>,
}

impl<S: KvSchema> Clone for Client<S> {
    fn clone(&self) -> Self {
        Client {
            base: self.base.clone(),
            headers: self.headers.clone(),
            http: self.http.clone(),
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            _schema: PhantomData,
        }
    }
}

impl<S: KvSchema> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are left out: they are usually credentials.
        f.debug_struct("Client")
            .field("table", &S::TABLE)
            .field("base", &self.base)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The `PUT` body.
#[derive(Serialize)]
struct PutBody<'a, S> {
    value: &'a S,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_updated_at: Option<i64>,
}

/// An error body, as [`super::ApiError`] writes it.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    code: String,
    message: String,
    key: Option<String>,
    reason: Option<String>,
    required: Option<String>,
    hook: Option<String>,
    fields: Option<Vec<FieldError>>,
    current_updated_at: Option<i64>,
    retry_after_ms: Option<u64>,
    attempts: Option<usize>,
    /// `UNREADABLE`: the schema version; `NOT_FOUND` of a revert: the
    /// history version asked for.
    version: Option<i64>,
    stored_version: Option<u32>,
    known_version: Option<u32>,
}

#[derive(Deserialize)]
struct Deleted {
    deleted: bool,
}

/// The `POST /{key}/revert` body.
#[derive(Serialize)]
struct RevertBody {
    version: i64,
}

impl<S: KvSchema> Client<S> {
    /// A client for the routes mounted at `base_url`, e.g.
    /// `http://127.0.0.1:3000/api/kv/site`. A URL that is not `http://` is
    /// [`Error::Config`].
    pub fn new(base_url: &str) -> Result<Self> {
        let base = base_url.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|e| Error::Config(format!("invalid base URL {base_url:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(Error::Config(format!(
                    "the kv web client speaks http:// and https:// only, not {base_url:?}"
                )))
            }
        };
        if uri.host().is_none() {
            return Err(Error::Config(format!(
                "the base URL names no host: {base_url:?}"
            )));
        }
        if uri.query().is_some() {
            return Err(Error::Config(format!(
                "the base URL must not have a query: {base_url:?}"
            )));
        }
        let http = http(https, None)?;
        Ok(Client {
            base,
            headers: HeaderMap::new(),
            http,
            timeout: Duration::from_secs(30),
            max_response_bytes: 64 << 20,
            _schema: PhantomData,
        })
    }

    /// Sends `name: value` with every request: the application's
    /// credentials (`authorization`, `cookie`). Replaces an earlier value of
    /// the same header. An invalid name or value is [`Error::Config`].
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::try_from(name)
            .map_err(|e| Error::Config(format!("invalid header name {name:?}: {e}")))?;
        let value = HeaderValue::try_from(value)
            .map_err(|e| Error::Config(format!("invalid value for header {name}: {e}")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Trusts only the CA certificates in `pem` (one or more PEM
    /// certificates) for an `https://` base URL, instead of the system's
    /// trust store: for a server whose certificate a private CA signed, or
    /// a self-signed one. Text that holds no certificate is
    /// [`Error::Config`].
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| {
                Error::Config(format!("the root certificate is not valid PEM: {e}"))
            })?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("the root certificate cannot be used: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "no certificate found in the PEM text given as root".into(),
            ));
        }
        self.http = http(true, Some(roots))?;
        Ok(self)
    }

    /// How long one call may take before it fails with [`Error::Backend`]
    /// (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body read (default 64 MiB); a larger one is
    /// [`Error::Backend`].
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /{key}`: the live row or `None`.
    pub async fn get(&self, key: impl std::borrow::Borrow<S::Key>) -> Result<Option<Row<S>>> {
        let key = key.borrow();
        let url = self.key_url(key, "");
        self.call(Method::GET, &url, key.as_str(), "get", None, Expect::Any)
            .await
    }

    /// `GET /?cursor=..&limit=..`: one page (`num_items` 0 means the
    /// server's default).
    pub async fn list(&self, page: PageRequest) -> Result<Page<S>> {
        // The mount path itself (`/api/kv/site`, no trailing slash): axum's
        // `nest` routes exactly that to the router's `/`.
        let mut url = self.base.clone();
        let mut sep = '?';
        if let Some(cursor) = &page.cursor {
            url.push(sep);
            url.push_str("cursor=");
            url.push_str(&encode(cursor));
            sep = '&';
        }
        if page.num_items != 0 {
            url.push(sep);
            url.push_str(&format!("limit={}", page.num_items));
        }
        self.call(Method::GET, &url, "", "list", None, Expect::Any)
            .await
    }

    /// `PUT /{key}`: stores `value` and returns the row.
    pub async fn set(&self, key: impl std::borrow::Borrow<S::Key>, value: S) -> Result<Row<S>> {
        self.put(key.borrow(), &value, Expect::Any).await
    }

    /// `PUT /{key}` with `If-Match: "<expected_updated_at>"`: stores
    /// `value` only if the row still has that version, else
    /// [`Error::Conflict`] with the current one.
    pub async fn set_expecting(
        &self,
        key: impl std::borrow::Borrow<S::Key>,
        value: S,
        expected_updated_at: i64,
    ) -> Result<Row<S>> {
        self.put(key.borrow(), &value, Expect::Version(expected_updated_at))
            .await
    }

    /// `PUT /{key}` with `If-None-Match: *`: stores `value` only if there is
    /// no live row (missing or soft-deleted), else [`Error::Conflict`] with
    /// the live row's version.
    pub async fn set_if_absent(
        &self,
        key: impl std::borrow::Borrow<S::Key>,
        value: S,
    ) -> Result<Row<S>> {
        self.put(key.borrow(), &value, Expect::NotLive).await
    }

    /// `DELETE /{key}`: whether a live row was deleted.
    pub async fn rm(&self, key: impl std::borrow::Borrow<S::Key>) -> Result<bool> {
        let key = key.borrow();
        let url = self.key_url(key, "");
        let deleted: Deleted = self
            .call(Method::DELETE, &url, key.as_str(), "rm", None, Expect::Any)
            .await?;
        Ok(deleted.deleted)
    }

    /// `POST /{key}/restore`: the restored (or already live) row.
    pub async fn restore(&self, key: impl std::borrow::Borrow<S::Key>) -> Result<Row<S>>
    where
        S: SoftDelete,
    {
        let key = key.borrow();
        let url = self.key_url(key, "/restore");
        self.call(
            Method::POST,
            &url,
            key.as_str(),
            "restore",
            None,
            Expect::Any,
        )
        .await
    }

    /// `GET /{key}/history?cursor=..&limit=..`: one page of the row's
    /// history, newest first (`num_items` 0 means the server's default).
    pub async fn history(
        &self,
        key: impl std::borrow::Borrow<S::Key>,
        page: PageRequest,
    ) -> Result<HistoryPage<S>>
    where
        S: History,
    {
        let key = key.borrow();
        let mut url = self.key_url(key, "/history");
        let mut sep = '?';
        if let Some(cursor) = &page.cursor {
            url.push(sep);
            url.push_str("cursor=");
            url.push_str(&encode(cursor));
            sep = '&';
        }
        if page.num_items != 0 {
            url.push(sep);
            url.push_str(&format!("limit={}", page.num_items));
        }
        self.call(
            Method::GET,
            &url,
            key.as_str(),
            "history",
            None,
            Expect::Any,
        )
        .await
    }

    /// `POST /{key}/revert`: writes the value of history record `version`
    /// back, if the row has not changed since the server read it.
    pub async fn revert(
        &self,
        key: impl std::borrow::Borrow<S::Key>,
        version: i64,
    ) -> Result<Row<S>>
    where
        S: History,
    {
        self.post_revert(key.borrow(), version, Expect::Any).await
    }

    /// `POST /{key}/revert` with `If-Match: "<expected_updated_at>"`:
    /// writes the value of history record `version` back only if the row
    /// still has the version the caller saw, else [`Error::Conflict`] with
    /// the current one.
    pub async fn revert_expecting(
        &self,
        key: impl std::borrow::Borrow<S::Key>,
        version: i64,
        expected_updated_at: i64,
    ) -> Result<Row<S>>
    where
        S: History,
    {
        let expect = Expect::Version(expected_updated_at);
        self.post_revert(key.borrow(), version, expect).await
    }

    async fn post_revert(&self, key: &S::Key, version: i64, expected: Expect) -> Result<Row<S>> {
        let body = serde_json::to_vec(&RevertBody { version })
            .map_err(|e| Error::Internal(format!("cannot encode a revert body: {e}")))?;
        let url = self.key_url(key, "/revert");
        self.call(
            Method::POST,
            &url,
            key.as_str(),
            "revert",
            Some(body),
            expected,
        )
        .await
    }

    async fn put(&self, key: &S::Key, value: &S, expected: Expect) -> Result<Row<S>> {
        let body = serde_json::to_vec(&PutBody {
            value,
            expected_updated_at: None,
        })
        .map_err(|e| Error::ValidationFailed {
            table: S::TABLE,
            fields: vec![FieldError::new(
                "",
                format!("the value cannot be serialized: {e}"),
            )],
        })?;
        let url = self.key_url(key, "");
        self.call(Method::PUT, &url, key.as_str(), "set", Some(body), expected)
            .await
    }

    fn key_url(&self, key: &S::Key, suffix: &str) -> String {
        format!("{}/{}{}", self.base, encode(key.as_str()), suffix)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        key: &str,
        op: &'static str,
        body: Option<Vec<u8>>,
        precondition: Expect,
    ) -> Result<T> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder = builder.header(header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        match precondition {
            Expect::Any => {}
            Expect::Version(v) => builder = builder.header(header::IF_MATCH, format!("\"{v}\"")),
            Expect::NotLive => builder = builder.header(header::IF_NONE_MATCH, "*"),
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::backend(format!("cannot build the request to {url}"), e))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| request_error(url, e))?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| Error::backend(format!("reading the response of {url} failed"), e))?
                .to_bytes();
            Ok::<_, Error>((parts.status, parts.headers, bytes))
        };
        let (status, headers, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::backend_msg(format!(
                    "request to {url} took longer than {:?}",
                    self.timeout
                ))
            })??;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::backend(
                    format!("{url} answered {status} with an unexpected body"),
                    e,
                )
            })
        } else {
            Err(error_from_response::<S>(status, &headers, &bytes, key, op))
        }
    }
}

/// Maps an error response back to the [`Error`] the server raised.
fn error_from_response<S: KvSchema>(
    status: StatusCode,
    headers: &HeaderMap,
    bytes: &[u8],
    key: &str,
    op: &'static str,
) -> Error {
    let table = S::TABLE;
    let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) else {
        return if refused_for_good(status) {
            Error::Config(format!(
                "the server answered {status} without a kv error: no kv router at this URL? \
                 check the client's base URL"
            ))
        } else {
            Error::backend_msg(format!("the server answered {status} without a kv error"))
        };
    };
    let key = body.key.clone().unwrap_or_else(|| key.to_owned());
    match body.code.as_str() {
        "INVALID_KEY" => Error::InvalidKey {
            table,
            key,
            reason: body.reason.unwrap_or(body.message),
        },
        "INVALID_CURSOR" => Error::InvalidCursor {
            table,
            reason: body.reason.unwrap_or(body.message),
        },
        "VALIDATION_FAILED" => Error::ValidationFailed {
            table,
            fields: body
                .fields
                .unwrap_or_else(|| vec![FieldError::new("", body.message)]),
        },
        codes::PAYLOAD_TOO_LARGE => Error::ValidationFailed {
            table,
            fields: vec![FieldError::new("", body.message)],
        },
        "FORBIDDEN" | codes::UNAUTHORIZED => Error::Forbidden {
            table,
            op,
            required: body.required.unwrap_or(body.message),
        },
        "CONFLICT" => Error::Conflict {
            table,
            key,
            current_updated_at: body.current_updated_at,
        },
        "NOT_FOUND" => match body.version {
            Some(version) => Error::NoSuchVersion {
                table,
                key,
                version,
            },
            None => Error::NotFound { table, key },
        },
        "REJECTED" => Error::Rejected {
            table,
            op,
            hook: body.hook.unwrap_or_default(),
            message: body.reason.unwrap_or(body.message),
        },
        "RATE_LIMITED" => {
            let from_header = headers
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let retry_after = body
                .retry_after_ms
                .map(Duration::from_millis)
                .or(from_header)
                .unwrap_or(Duration::from_secs(1));
            Error::RateLimited { table, retry_after }
        }
        "CONTENDED" => Error::Contended {
            table,
            key,
            op,
            attempts: body.attempts.unwrap_or_default(),
        },
        // Not retryable: a stored row the server cannot read, a hook that
        // panicked or another bug, a misconfigured server. Reported as such
        // rather than as BACKEND.
        "NEWER_SCHEMA" => Error::NewerSchema {
            table,
            key,
            stored: body.stored_version.unwrap_or_default(),
            known: body.known_version.unwrap_or_default(),
        },
        "UNREADABLE" => Error::Unreadable {
            table,
            key,
            version: body
                .version
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or_default(),
            reason: body.message,
        },
        "INTERNAL" => match body.hook {
            Some(hook) => Error::HookPanicked {
                table,
                hook,
                message: body.message,
            },
            None => Error::Internal(body.message),
        },
        "CONFIG" => Error::Config(body.message),
        // The web layer refused the request itself (a malformed request, a
        // path or method the router does not have): the same request will
        // be refused again, so not a retryable outage.
        code if refused_for_good(status) => Error::Config(format!(
            "the server refused the request with {status} {code}: {}; check the client's \
             base URL and version",
            body.message
        )),
        code => Error::backend_msg(format!(
            "the server answered {status} {code}: {}",
            body.message
        )),
    }
}

/// The error of a request that got no answer: a certificate the client
/// does not trust is [`Error::Config`] (retrying will not help), anything
/// else (refused, reset, unreachable) [`Error::Backend`].
fn request_error(url: &str, e: hyper_util::client::legacy::Error) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            if matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            ) {
                return Error::Config(format!(
                    "the server at {url} presented a certificate this client does not trust \
                     ({tls}); give its CA with Client::with_root_certificate, or check the \
                     host name"
                ));
            }
        }
        // An io::Error's `source` skips the error it wraps (rustls reports
        // through one, sometimes inside another): step into it instead.
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    Error::backend(format!("request to {url} failed"), e)
}

/// Whether an error status means the same request will be refused again
/// (a 4xx other than a timeout or a rate limit).
fn refused_for_good(status: StatusCode) -> bool {
    status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
}

/// Percent-encodes text for one path segment or query value: everything but
/// ASCII letters, digits, `-`, `_` and `~` (so `.` and `..` stay keys, not
/// path steps).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_keys_one_segment() {
        assert_eq!(encode("banner"), "banner");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
