//! Connection strings, split into `(keyword, value)` pairs with libpq's
//! keywords: a `postgres://` URL (its user, password, hosts, ports and
//! database become `user`, `password`, `host`, `port` and `dbname`, its
//! query the rest) or a `key=value` string.
//!
//! Nothing here echoes what it cannot vouch for: an error names the part
//! that is wrong and how to fix it, never the text of the password, of a
//! query value that may be secret (`password`, `listen_url`), or of a part
//! that a mis-encoded password may have spilled into.

use std::fmt;

use crate::error::{Error, Result};

/// A secret string: shown as `***` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Secret(pub(super) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One parameter of a connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Param {
    pub(super) key: String,
    pub(super) value: ParamValue,
    /// Right after a secret parameter: an unknown name here may be the
    /// rest of a secret that held a raw `&` or space, so it is not echoed.
    pub(super) after_secret: bool,
}

/// A parameter's value; secret ones (`password`, `listen_url`) never print.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum ParamValue {
    Plain(String),
    Secret(Secret),
}

impl ParamValue {
    pub(super) fn text(&self) -> &str {
        match self {
            ParamValue::Plain(s) | ParamValue::Secret(Secret(s)) => s,
        }
    }
}

impl fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Plain(s) => fmt::Debug::fmt(s, f),
            ParamValue::Secret(s) => fmt::Debug::fmt(s, f),
        }
    }
}

/// Keywords whose values are secret wherever they come from.
fn is_secret(key: &str) -> bool {
    matches!(key, "password" | "listen_url")
}

fn param(key: &str, value: String) -> Param {
    let value = if is_secret(key) {
        ParamValue::Secret(Secret(value))
    } else {
        ParamValue::Plain(value)
    };
    Param {
        key: key.to_owned(),
        value,
        after_secret: false,
    }
}

/// Adds `param` to `params`, marking it when it follows a secret one.
fn push(params: &mut Vec<Param>, mut param: Param) {
    param.after_secret = params
        .last()
        .is_some_and(|p| matches!(p.value, ParamValue::Secret(_)));
    params.push(param);
}

/// What to tell a user whose password may hold characters a URL reserves.
const ENCODE_HINT: &str = "percent-encode the characters `@ : / ? # % &` and spaces in the user \
     name, password and option values (`@` is %40, `/` is %2F, `%` is %25), or use a \
     `key=value` connection string";

/// Splits a connection string: a `postgres://` or `postgresql://` URL, or
/// `key=value` pairs separated by spaces.
pub(super) fn parse(text: &str) -> Result<Vec<Param>> {
    if let Some(rest) = text
        .strip_prefix("postgres://")
        .or_else(|| text.strip_prefix("postgresql://"))
    {
        parse_url(rest)
    } else if text.contains("://") {
        Err(Error::Config(
            "a PostgreSQL URL starts with `postgres://` or `postgresql://`".to_owned(),
        ))
    } else {
        parse_key_values(text)
    }
}

/// `[user[:password]@][host[:port][,host[:port]...]][/dbname][?key=value&...]`.
fn parse_url(rest: &str) -> Result<Vec<Param>> {
    let (pre, query) = match rest.split_once('?') {
        Some((pre, query)) => (pre, Some(query)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.contains('@')) {
        // Either a query value with a raw `@` (a URL in `listen_url` not
        // percent-encoded), or a password with a raw `?` that put part of
        // it into the query. Either way, show nothing of it.
        return Err(Error::Config(format!(
            "the PostgreSQL URL has a raw `@` after its `?`: {ENCODE_HINT}"
        )));
    }
    let mut params = Vec::new();
    // The last `@` ends the credentials, so a raw `@` or `/` in a password
    // still reads as part of it.
    let hostpart = match pre.rfind('@') {
        Some(at) => {
            let (user, password) = match pre[..at].split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (&pre[..at], None),
            };
            let user = decode(user).map_err(|_| {
                Error::Config(format!(
                    "the user name in the PostgreSQL URL is not validly percent-encoded: \
                     {ENCODE_HINT}"
                ))
            })?;
            if !user.is_empty() {
                params.push(param("user", user));
            }
            if let Some(password) = password {
                let password = decode(password).map_err(|_| {
                    Error::Config(format!(
                        "the password in the PostgreSQL URL is not validly percent-encoded \
                         (a `%` must start %XX with two hex digits): {ENCODE_HINT}"
                    ))
                })?;
                params.push(param("password", password));
            }
            &pre[at + 1..]
        }
        None => pre,
    };
    let (hosts, path) = match hostpart.split_once('/') {
        Some((hosts, path)) => (hosts, Some(path)),
        None => (hostpart, None),
    };
    parse_hosts(hosts, &mut params)?;
    if let Some(path) = path.filter(|p| !p.is_empty()) {
        let dbname = decode(path).map_err(|_| {
            Error::Config(format!(
                "the database name in the PostgreSQL URL is not validly percent-encoded: \
                 {ENCODE_HINT}"
            ))
        })?;
        params.push(param("dbname", dbname));
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            // Not echoed: it may be the rest of a value with a raw `&`.
            return Err(Error::Config(format!(
                "the PostgreSQL URL's query has an item without `=`: write `key=value`; \
                 {ENCODE_HINT}"
            )));
        };
        let key = decode(key).ok().filter(|k| is_keyword(k)).ok_or_else(|| {
            Error::Config(format!(
                "the PostgreSQL URL's query has an option name that is not a plain word: \
                 {ENCODE_HINT}"
            ))
        })?;
        let value = decode(value).map_err(|_| {
            Error::Config(format!(
                "the value of `{key}` in the PostgreSQL URL is not validly percent-encoded: \
                 {ENCODE_HINT}"
            ))
        })?;
        push(&mut params, param(&key, value));
    }
    Ok(params)
}

/// `host[:port]` or `[v6addr][:port]`, comma-separated, as libpq's
/// `host` and `port` lists.
fn parse_hosts(hosts: &str, params: &mut Vec<Param>) -> Result<()> {
    if hosts.is_empty() {
        return Ok(());
    }
    let mut names = Vec::new();
    let mut ports = Vec::new();
    for spec in hosts.split(',') {
        let (name, port) = if let Some(v6) = spec.strip_prefix('[') {
            let Some((addr, after)) = v6.split_once(']') else {
                return Err(Error::Config(
                    "an IPv6 host in the PostgreSQL URL lacks its closing `]`".to_owned(),
                ));
            };
            match after.strip_prefix(':') {
                Some(port) => (addr.to_owned(), Some(port)),
                None if after.is_empty() => (addr.to_owned(), None),
                None => {
                    return Err(Error::Config(
                        "an IPv6 host in the PostgreSQL URL is followed by something other \
                         than `:port`"
                            .to_owned(),
                    ))
                }
            }
        } else {
            let (name, port) = match spec.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (spec, None),
            };
            let name = decode(name).map_err(|_| {
                Error::Config(format!(
                    "a host name in the PostgreSQL URL is not validly percent-encoded: \
                     {ENCODE_HINT}"
                ))
            })?;
            (name, port)
        };
        if let Some(port) = port {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                // Not echoed: with a raw `/` or `?` in a password, what
                // reads as a port may be part of it.
                return Err(Error::Config(format!(
                    "a port in the PostgreSQL URL is not a number: {ENCODE_HINT}"
                )));
            }
        }
        names.push(name);
        ports.push(port.unwrap_or("").to_owned());
    }
    params.push(param("host", names.join(",")));
    if ports.iter().any(|p| !p.is_empty()) {
        params.push(param("port", ports.join(",")));
    }
    Ok(())
}

/// libpq's `key = value` connection string: values may be single-quoted,
/// with `\'` and `\\` escapes.
fn parse_key_values(text: &str) -> Result<Vec<Param>> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not echoed: it may be the rest of an unquoted value with a space.
            return Err(Error::Config(
                "the PostgreSQL connection string has a word without `=`: write `key=value` \
                 pairs separated by spaces (quote values with spaces: `password='a b'`), or a \
                 `postgres://` URL"
                    .to_owned(),
            ));
        }
        if !is_keyword(&key) {
            return Err(Error::Config(
                "the PostgreSQL connection string has an option name that is not a plain word"
                    .to_owned(),
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(unterminated(&key)),
                    },
                    Some(c) => value.push(c),
                    None => return Err(unterminated(&key)),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        value.push(next);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        push(&mut params, param(&key, value));
    }
    Ok(params)
}

fn unterminated(key: &str) -> Error {
    Error::Config(format!(
        "the value of `{key}` in the PostgreSQL connection string has an opening `'` \
         without its closing one"
    ))
}

/// Option names are plain words; anything else is not echoed.
fn is_keyword(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Percent-decoding; `Err` on a `%` not followed by two hex digits, or on
/// bytes that are not UTF-8.
fn decode(text: &str) -> std::result::Result<String, ()> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value.text().to_owned()))
            .collect()
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn urls_split_into_libpq_keywords() {
        assert_eq!(
            pairs("postgres://ada:s3cret@db.example:5433/kv?sslmode=require&pool_size=4"),
            kv(&[
                ("user", "ada"),
                ("password", "s3cret"),
                ("host", "db.example"),
                ("port", "5433"),
                ("dbname", "kv"),
                ("sslmode", "require"),
                ("pool_size", "4"),
            ])
        );
        assert_eq!(
            pairs("postgresql://h1,h2:6000,[::1]:7000/db"),
            kv(&[
                ("host", "h1,h2,::1"),
                ("port", ",6000,7000"),
                ("dbname", "db")
            ])
        );
        assert_eq!(
            pairs("postgres://%2Fvar%2Frun%2Fpostgresql/db"),
            kv(&[("host", "/var/run/postgresql"), ("dbname", "db")])
        );
        assert_eq!(pairs("postgres://"), kv(&[]));
    }

    #[test]
    fn raw_reserved_characters_in_a_password_stay_in_it() {
        for (url, password) in [
            ("postgres://postgres:top@secret@host/db", "top@secret"),
            ("postgres://u:a:b@host/db", "a:b"),
            ("postgres://u:pa/ss@host/db", "pa/ss"),
            ("postgres://u:p%40ss@host/db", "p@ss"),
            ("postgres://u:p#w@host/db", "p#w"),
        ] {
            let params = pairs(url);
            assert!(
                params.contains(&("password".into(), password.into())),
                "{url}"
            );
            assert!(params.contains(&("host".into(), "host".into())), "{url}");
            assert!(params.contains(&("dbname".into(), "db".into())), "{url}");
        }
    }

    #[test]
    fn mis_encoded_secrets_are_refused_without_echo() {
        for url in [
            "postgres://u:bad%zzsecret@h/db",
            "postgres://u:sec?ret@h/db",
            "postgres://u:secret%@h/db",
            "postgres://u@h/db?listen_url=postgres://u:secret@h/db",
            "postgres://h/db?password=secret%zz",
            "postgres://u:1/secret@h:port/db",
        ] {
            match parse(url) {
                Err(e) => {
                    assert_eq!(e.code(), crate::ErrorCode::Config);
                    assert!(!e.to_string().contains("secret"), "{url}: {e}");
                }
                Ok(params) => panic!("{url} parsed: {params:?}"),
            }
        }
    }

    #[test]
    fn secrets_do_not_debug() {
        let params = parse("postgres://u:hunter2@h/db?listen_url=postgres%3A%2F%2Fx").unwrap();
        let shown = format!("{params:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("postgres:"),
            "{shown}"
        );
    }

    #[test]
    fn key_value_strings_follow_libpq_quoting() {
        assert_eq!(
            pairs("host=h port = 5432 password='it\\'s a secret' user=ada"),
            kv(&[
                ("host", "h"),
                ("port", "5432"),
                ("password", "it's a secret"),
                ("user", "ada"),
            ])
        );
        for bad in ["host=h password='secret", "host=h secret", "Pass=secret"] {
            let e = parse(bad).unwrap_err();
            assert!(!e.to_string().contains("secret"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_option_after_a_secret_is_marked() {
        let params = parse("postgres://h/db?password=a&b=c&sslmode=disable").unwrap();
        let flags: Vec<bool> = params.iter().map(|p| p.after_secret).collect();
        assert_eq!(flags, [false, false, false, true, false]);
        let params = parse("password=a b=c").unwrap();
        assert!(params[1].after_secret);
    }
}
