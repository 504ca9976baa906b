//! JSON error responses: `{ "code": "...", "message": "...", ... }` with the
//! status of the code.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::error::{Error, ErrorCode, FieldError};

/// Error codes that only the web layer produces, beside the codes of
/// [`ErrorCode`], with their statuses. None of these requests reaches the
/// table, so none of them changes state. The
/// [module docs](super#requests-refused-before-they-reach-the-table) list
/// them in one table.
pub mod codes {
    /// 400: the body is not JSON (a syntax error, an empty body, trailing
    /// text, nesting deeper than the decoder accepts), or could not be read.
    /// JSON of the wrong shape or types is `VALIDATION_FAILED` (422) instead.
    pub const MALFORMED_BODY: &str = "MALFORMED_BODY";
    /// 400: a header the route reads is malformed, e.g. an `If-Match` that
    /// is not one quoted `updated_at`, or one that disagrees with the body's
    /// `expected_updated_at`.
    pub const MALFORMED_HEADER: &str = "MALFORMED_HEADER";
    /// 400: the query string could not be read (e.g. `limit=abc`).
    pub const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
    /// 403: a state-changing request (`PUT`, `DELETE`, `POST .../restore`)
    /// whose `Origin` is another site's, `null` or malformed, and not one
    /// the router allows ([`KvRouter::allow_origin`](crate::web::KvRouter::allow_origin));
    /// see [`OriginPolicy`](crate::web::OriginPolicy). Refused before the
    /// context function is called.
    pub const CROSS_ORIGIN: &str = "CROSS_ORIGIN";
    /// 408: the request body did not arrive within the server's
    /// [`body_timeout`](crate::web::Server::body_timeout).
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    /// 429: the client, or all clients together, already hold as many
    /// event streams as the router allows
    /// ([`KvRouter::max_event_streams_per_client`](crate::web::KvRouter::max_event_streams_per_client),
    /// [`KvRouter::max_event_streams`](crate::web::KvRouter::max_event_streams)).
    /// Details: `scope` (`"client"` or `"total"`) and `limit`; header
    /// `Retry-After: 5`.
    pub const TOO_MANY_STREAMS: &str = "TOO_MANY_STREAMS";
    /// 401: the application's context function refused the request's
    /// credentials ([`super::ApiError::unauthorized`]).
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// 404: no route has this path (a key is never a 404 route: an unknown
    /// key is `INVALID_KEY`).
    pub const NO_ROUTE: &str = "NO_ROUTE";
    /// 405: the path exists, the method does not.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// 413: the body is larger than the router's limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// 415: the body is not `application/json` (UTF-8); on `DELETE` and
    /// `POST .../restore`, which take no body, a form content type
    /// (`application/x-www-form-urlencoded`, `multipart/form-data`,
    /// `text/plain`), which only a form or a cross-site page would send.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";

    /// Every code of this module, in the order of the
    /// [module docs](crate::web#requests-refused-before-they-reach-the-table)'
    /// table (what the TypeScript bindings list beside
    /// [`ErrorCode::ALL`](crate::ErrorCode::ALL)).
    pub const ALL: &[&str] = &[
        MALFORMED_BODY,
        MALFORMED_HEADER,
        MALFORMED_QUERY,
        UNAUTHORIZED,
        NO_ROUTE,
        METHOD_NOT_ALLOWED,
        CROSS_ORIGIN,
        REQUEST_TIMEOUT,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        TOO_MANY_STREAMS,
    ];
}

/// An error answered as JSON: `{ "code", "message", ...details }` with the
/// status that belongs to the code, and `Cache-Control: no-store`.
///
/// From a [`kv_runtime::Error`](crate::Error) (via `From`), the status is
/// [`ErrorCode::http_status`] and the details are the error's fields, as
/// the [error table](crate#errors) lists them. The web layer's own codes
/// are in [`codes`], and listed with their statuses in the
/// [module docs](super#requests-refused-before-they-reach-the-table). An
/// application's context function returns an `ApiError` to refuse a
/// request, typically [`ApiError::unauthorized`].
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    body: Map<String, Value>,
    retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with any status and code; `message` is for people.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        let mut body = Map::new();
        body.insert("code".into(), Value::String(code.into().into_owned()));
        body.insert("message".into(), Value::String(message.into()));
        ApiError {
            status,
            body,
            retry_after: None,
        }
    }

    /// 401 `UNAUTHORIZED`: the request carries credentials the application
    /// does not accept (an expired session, a wrong token). A request with
    /// no credentials at all is usually better mapped to
    /// [`Ctx::anonymous`](crate::Ctx::anonymous), which the table answers
    /// with 403 `FORBIDDEN` for writes.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    /// Adds a detail field to the JSON body (`code` and `message` cannot be
    /// replaced).
    pub fn with_detail(mut self, name: &str, value: impl Into<Value>) -> Self {
        if name != "code" && name != "message" {
            self.body.insert(name.to_owned(), value.into());
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code, e.g. `"CONFLICT"`.
    pub fn code(&self) -> &str {
        self.body
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The JSON body.
    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    pub(crate) fn malformed_body(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, codes::MALFORMED_BODY, message)
    }

    pub(crate) fn malformed_header(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, codes::MALFORMED_HEADER, message)
    }

    pub(crate) fn malformed_query(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, codes::MALFORMED_QUERY, message)
    }

    pub(crate) fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this route accepts ({limit} bytes)"),
        )
        .with_detail("limit", limit)
    }

    pub(crate) fn unsupported_media_type() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "send the body as `Content-Type: application/json` (UTF-8)",
        )
    }

    pub(crate) fn cross_origin(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, codes::CROSS_ORIGIN, message)
    }

    pub(crate) fn request_timeout() -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            codes::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )
    }

    /// 429 `TOO_MANY_STREAMS`; `scope` is `"client"` or `"total"`.
    pub(crate) fn too_many_streams(scope: &'static str, limit: usize) -> Self {
        let whose = match scope {
            "client" => "this client already holds",
            _ => "the server already holds",
        };
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_STREAMS,
            format!("{whose} {limit} event streams; close one, or retry later"),
        )
        .with_detail("scope", scope)
        .with_detail("limit", limit);
        err.retry_after = Some(Duration::from_secs(5));
        err
    }

    pub(crate) fn no_route() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            codes::NO_ROUTE,
            "no such route; the routes are GET /, GET|PUT|DELETE /{key}, \
             POST /{key}/restore, GET /{key}/events, GET /{key}/history and \
             POST /{key}/revert",
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            codes::METHOD_NOT_ALLOWED,
            "this route does not accept this method",
        )
    }

    /// A validation error outside the table (e.g. the body's shape).
    pub(crate) fn validation(table: &'static str, fields: Vec<FieldError>) -> Self {
        ApiError::from(Error::ValidationFailed { table, fields })
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let code = err.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match code {
            // Backend and configuration failures may name hosts, paths or
            // SQL; they stay on the server.
            ErrorCode::Backend => {
                "the storage backend is unavailable or failed; retry later".to_owned()
            }
            ErrorCode::Config => "the server's store is misconfigured".to_owned(),
            // A hook's panic message is the application's internals.
            ErrorCode::Internal if matches!(err, Error::HookPanicked { .. }) => {
                "a hook failed on the server; nothing was written".to_owned()
            }
            ErrorCode::Internal => "the server hit a bug; nothing was written".to_owned(),
            // The decoder's message may quote stored data.
            ErrorCode::Unreadable => {
                "a stored row cannot be read by the server's schema".to_owned()
            }
            _ => err.to_string(),
        };
        let mut out = ApiError::new(status, code.as_str(), message);
        let details = match &err {
            Error::InvalidKey { table, key, reason } => {
                json!({ "table": table, "key": key, "reason": reason })
            }
            Error::ValidationFailed { table, fields } => {
                json!({ "table": table, "fields": fields })
            }
            Error::Forbidden {
                table,
                op,
                required,
            } => json!({ "table": table, "op": op, "required": required }),
            Error::Conflict {
                table,
                key,
                current_updated_at,
            } => json!({ "table": table, "key": key, "current_updated_at": current_updated_at }),
            Error::NotFound { table, key } => json!({ "table": table, "key": key }),
            Error::NoSuchVersion {
                table,
                key,
                version,
            } => json!({ "table": table, "key": key, "version": version }),
            Error::InvalidCursor { table, reason } => json!({ "table": table, "reason": reason }),
            Error::Rejected {
                table,
                op,
                hook,
                message,
            } => json!({ "table": table, "op": op, "hook": hook, "reason": message }),
            Error::HookPanicked { table, hook, .. } => json!({ "table": table, "hook": hook }),
            Error::Contended {
                table,
                key,
                op,
                attempts,
            } => {
                out.retry_after = Some(Duration::from_secs(1));
                json!({ "table": table, "key": key, "op": op, "attempts": attempts })
            }
            Error::Unreadable {
                table,
                key,
                version,
                ..
            } => json!({ "table": table, "key": key, "version": version }),
            Error::NewerSchema {
                table,
                key,
                stored,
                known,
            } => {
                json!({ "table": table, "key": key, "stored_version": stored, "known_version": known })
            }
            Error::RateLimited { table, retry_after } => {
                out.retry_after = Some(*retry_after);
                let ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                json!({ "table": table, "retry_after_ms": ms })
            }
            _ => json!({}),
        };
        if let Value::Object(map) = details {
            out.body.extend(map);
        }
        out
    }
}

/// Whole seconds, rounded up, and at least 1 (a `Retry-After: 0` invites
/// an immediate retry that the limit would refuse again).
fn retry_after_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (self.status, axum::Json(Value::Object(self.body))).into_response();
        if let Some(d) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(d)),
            );
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn web_codes_are_listed_once_and_differ_from_the_table_codes() {
        let table: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let mut seen = std::collections::HashSet::new();
        for code in codes::ALL {
            assert!(seen.insert(*code), "{code} listed twice");
            assert!(!table.contains(code), "{code} is also an ErrorCode");
        }
        // The docs' table has one row per code.
        let docs = include_str!("../../docs/web.md");
        let rows = docs
            .lines()
            .filter(|l| l.starts_with("| `") && l.contains("` | 4"))
            .count();
        assert_eq!(
            rows,
            codes::ALL.len(),
            "codes::ALL and docs/web.md disagree"
        );
    }

    #[test]
    fn conflict_carries_null_when_no_row() {
        let e = ApiError::from(Error::Conflict {
            table: "t",
            key: "k".into(),
            current_updated_at: None,
        });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.body().get("current_updated_at"), Some(&Value::Null));
    }

    #[test]
    fn backend_details_stay_on_the_server() {
        let e = ApiError::from(Error::backend_msg("password=hunter2 at 10.0.0.1"));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code(), "BACKEND");
        let text = serde_json::to_string(e.body()).unwrap_or_default();
        assert!(!text.contains("hunter2"), "{text}");
    }
}
