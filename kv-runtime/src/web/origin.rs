//! Refusing what a cross-site page can send: a foreign `Origin`, and the
//! content types of HTML forms.

use axum::http::{header, HeaderMap, Uri};

use super::errors::ApiError;

/// Which browser origins may send state-changing requests: the request's
/// own host, and the origins [`allow`](Self::allow)ed.
///
/// [`check`](Self::check) refuses (403 `CROSS_ORIGIN`) a request whose
/// `Origin` header is `null`, malformed, or names another host than the
/// request's own (its `Host` header, or the URI's authority) and is not
/// allowed. A request without `Origin` passes: browsers send it on every
/// `POST`, `PUT` and `DELETE`, so its absence means a client that is not a
/// browser (or a very old one), which a cross-site page cannot use.
///
/// The own-host comparison is of host and port only, because behind a TLS
/// terminator the server does not see the scheme: an `Origin` of
/// `https://example.com` matches `Host: example.com` (and
/// `Host: example.com:443`). To close the gap this leaves, such a request
/// must not say `Sec-Fetch-Site` other than `same-origin` (browsers send
/// `same-origin` for same-origin requests; a page on `http://` posting to
/// the `https://` site says `cross-site`). An allowed origin is compared
/// whole, scheme included.
///
/// Behind a reverse proxy, keep the browser's `Host` (nginx:
/// `proxy_set_header Host $host;`) or allow the public origin.
///
/// ```
/// use kv_runtime::web::OriginPolicy;
/// use axum::http::{HeaderMap, HeaderValue, Uri};
///
/// let policy = OriginPolicy::new().allow("https://admin.example.com");
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("api.example.com"));
/// headers.insert("origin", HeaderValue::from_static("https://evil.example"));
/// let uri = Uri::from_static("/banner");
/// assert_eq!(policy.check(&headers, &uri).unwrap_err().code(), "CROSS_ORIGIN");
/// headers.insert("origin", HeaderValue::from_static("https://admin.example.com"));
/// assert!(policy.check(&headers, &uri).is_ok());
/// ```
#[derive(Clone, Debug, Default)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
}

/// A serialized origin, normalized: lowercase scheme and host, the port
/// only when not the scheme's default.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]` (what browsers send in `Origin`).
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_authority(rest)?;
        let port = port.filter(|p| Some(*p) != default_port(&scheme));
        Some(Origin { scheme, host, port })
    }

    fn effective_port(&self) -> Option<u16> {
        self.port.or_else(|| default_port(&self.scheme))
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (a bracketed IPv6 address is a host), lowercased; no
/// user info, path, query or fragment.
fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b' ') || b.is_ascii_control())
    {
        return None;
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{}]", addr.to_ascii_lowercase()), port)
        }
        None => match text.rsplit_once(':') {
            Some((host, port)) => (host.to_ascii_lowercase(), Some(port)),
            None => (text.to_ascii_lowercase(), None),
        },
    };
    if host.is_empty() || (host.contains(':') && !host.starts_with('[')) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

impl OriginPolicy {
    /// Same-origin requests only.
    pub fn new() -> Self {
        OriginPolicy::default()
    }

    /// Also accepts requests from `origin`, e.g. `"https://admin.example.com"`
    /// (an admin front end on another host). Compared whole: scheme, host
    /// and port.
    ///
    /// # Panics
    ///
    /// If `origin` is not of the form `scheme://host[:port]` (a trailing
    /// `/` is tolerated). This is configuration: a typo fails at start-up
    /// rather than refusing every request from the front end.
    pub fn allow(mut self, origin: &str) -> Self {
        let text = origin.strip_suffix('/').unwrap_or(origin);
        match Origin::parse(text) {
            Some(parsed) => self.allowed.push(parsed),
            None => panic!(
                "allow_origin({origin:?}): an origin is scheme://host[:port], \
                 e.g. \"https://admin.example.com\""
            ),
        }
        self
    }

    /// Refuses (403 `CROSS_ORIGIN`) a request that a page of another
    /// origin sent; see [`OriginPolicy`].
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(value) = values.next() else {
            return Ok(());
        };
        if values.next().is_some() {
            return Err(ApiError::cross_origin("send one Origin header"));
        }
        let Some(text) = value.to_str().ok().map(str::trim) else {
            return Err(ApiError::cross_origin("the Origin header is not readable"));
        };
        if text == "null" {
            return Err(ApiError::cross_origin(
                "requests from an opaque origin (Origin: null) are refused",
            ));
        }
        let Some(origin) = Origin::parse(text) else {
            return Err(ApiError::cross_origin("the Origin header is malformed"));
        };
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        if is_own_host(&origin, headers, uri) && fetched_same_origin(headers) {
            return Ok(());
        }
        Err(ApiError::cross_origin(format!(
            "requests from {text} are refused: it is not this server's origin, \
             and not one the server allows"
        )))
    }
}

/// Whether `origin` names the host and port the request was sent to.
fn is_own_host(origin: &Origin, headers: &HeaderMap, uri: &Uri) -> bool {
    let mut hosts = headers.get_all(header::HOST).iter();
    let authority = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok().map(str::trim),
        (Some(_), Some(_)) => None,
        (None, _) => uri.authority().map(|a| a.as_str()),
    };
    let Some((host, port)) = authority.and_then(split_authority) else {
        return false;
    };
    host == origin.host && port.or_else(|| default_port(&origin.scheme)) == origin.effective_port()
}

/// False when the browser says (`Sec-Fetch-Site`) the request did not
/// come from the same origin; true when it says so or says nothing.
fn fetched_same_origin(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site") {
        None => true,
        Some(value) => value.as_bytes().eq_ignore_ascii_case(b"same-origin"),
    }
}

/// Refuses (415 `UNSUPPORTED_MEDIA_TYPE`) the content types a cross-site
/// HTML form or a no-CORS `fetch` can send: `application/x-www-form-urlencoded`,
/// `multipart/form-data` and `text/plain` (whatever their parameters), and
/// a `Content-Type` that cannot be read.
pub(crate) fn refuse_form_content(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(());
    };
    let readable = values
        .next()
        .is_none()
        .then(|| value.to_str().ok())
        .flatten();
    let Some(text) = readable else {
        return Err(ApiError::unsupported_media_type());
    };
    let essence = text.split(';').next().unwrap_or_default().trim();
    let form = [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "text/plain",
    ]
    .iter()
    .any(|t| essence.eq_ignore_ascii_case(t));
    if form {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn passes(policy: &OriginPolicy, pairs: &[(&'static str, &'static str)]) -> bool {
        policy
            .check(&request(pairs), &Uri::from_static("/k"))
            .is_ok()
    }

    #[test]
    fn same_host_passes_and_others_do_not() {
        let p = OriginPolicy::new();
        assert!(passes(&p, &[("host", "example.com")]), "no Origin");
        assert!(passes(
            &p,
            &[("host", "example.com"), ("origin", "https://example.com")]
        ));
        assert!(passes(
            &p,
            &[
                ("host", "Example.COM:443"),
                ("origin", "https://example.com")
            ]
        ));
        assert!(passes(
            &p,
            &[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000")
            ]
        ));
        assert!(passes(
            &p,
            &[("host", "[::1]:8080"), ("origin", "http://[::1]:8080")]
        ));
        assert!(passes(
            &p,
            &[
                ("host", "example.com"),
                ("origin", "https://example.com"),
                ("sec-fetch-site", "same-origin")
            ]
        ));
        for bad in [
            "https://evil.example",
            "https://example.com:8443",
            "http://example.com.evil.example",
            "null",
            "example.com",
            "https://example.com/",
            "https://user@example.com",
            "",
        ] {
            let h = [("host", "example.com"), ("origin", bad)];
            assert!(!passes(&p, &h), "{bad:?}");
        }
        // The wrong port for the scheme, a missing Host, two Origins, and
        // a browser that says the request is cross-site.
        assert!(!passes(
            &p,
            &[
                ("host", "example.com"),
                ("origin", "http://example.com:443")
            ]
        ));
        assert!(!passes(&p, &[("origin", "https://example.com")]));
        assert!(!passes(
            &p,
            &[
                ("host", "example.com"),
                ("origin", "https://example.com"),
                ("origin", "https://example.com")
            ]
        ));
        assert!(!passes(
            &p,
            &[
                ("host", "example.com"),
                ("origin", "http://example.com"),
                ("sec-fetch-site", "cross-site")
            ]
        ));
    }

    #[test]
    fn allowed_origins_pass_whole() {
        let p = OriginPolicy::new().allow("https://Admin.example.com:443/");
        let h = |o| {
            [
                ("host", "api.example.com"),
                ("origin", o),
                ("sec-fetch-site", "same-site"),
            ]
        };
        assert!(passes(&p, &h("https://admin.example.com")));
        assert!(!passes(&p, &h("http://admin.example.com")));
        assert!(!passes(&p, &h("https://admin.example.com:8443")));
    }

    #[test]
    #[should_panic(expected = "scheme://host[:port]")]
    fn a_malformed_allowed_origin_panics() {
        let _ = OriginPolicy::new().allow("admin.example.com");
    }

    #[test]
    fn form_content_types_are_refused() {
        for bad in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "Text/Plain;charset=UTF-8",
        ] {
            let h = request(&[("content-type", bad)]);
            assert!(refuse_form_content(&h).is_err(), "{bad}");
        }
        assert!(refuse_form_content(&HeaderMap::new()).is_ok());
        assert!(refuse_form_content(&request(&[("content-type", "application/json")])).is_ok());
    }
}
