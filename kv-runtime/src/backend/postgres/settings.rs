//! The connection string parsed once and folded over [`PostgresOptions`]:
//! libpq's names and meanings, unknown options refused, every value
//! checked, into the [`Settings`] the backend opens with.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::options::{PostgresOptions, SslMode, SslRootCert, MAX_POOL_SIZE};
use super::url::{self, Param, Secret};
use crate::error::{Error, Result};

/// The longest `op_timeout` accepted.
const MAX_OP_TIMEOUT: Duration = Duration::from_secs(3600);

/// Every URL parameter, in the order of the options table.
pub(super) const KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "channel_binding",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "kv_schema",
    "pool_size",
    "read_pool_size",
    "statement_timeout",
    "lock_timeout",
    "op_timeout",
    "listen_url",
    "prepared_statements",
];

/// The parameters a `listen_url` may carry.
const LISTEN_KNOWN: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "channel_binding",
    "connect_timeout",
    "application_name",
    "options",
];

/// libpq options kv does not support, with what to do instead.
fn unsupported(key: &str) -> Option<&'static str> {
    Some(match key {
        "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" => {
            "client certificates are not supported; authenticate with a password"
        }
        "sslcrl" | "sslcrldir" => "certificate revocation lists are not supported",
        "sslnegotiation" => "only the standard TLS negotiation is supported",
        "passfile" | "service" | "servicefile" => {
            "kv reads no libpq files; put the setting in the URL"
        }
        "gssencmode" | "krbsrvname" | "gsslib" | "gssdelegation" => "GSSAPI is not supported",
        "replication" => "replication connections are not supported",
        _ => return None,
    })
}

/// One connection string, resolved: where to connect, how, and what to
/// show in messages.
#[derive(Clone)]
pub(super) struct Endpoint {
    /// Hosts, ports, user, password, database, timeouts; TLS mode as
    /// tokio-postgres sees it.
    pub(super) pg: tokio_postgres::Config,
    /// `host:port/db` for messages (never the password).
    pub(super) target: String,
    pub(super) ssl_mode: SslMode,
    pub(super) ssl_root_cert: Option<SslRootCert>,
}

/// Everything [`PostgresBackend::connect`](super::PostgresBackend::connect)
/// needs, checked.
pub(super) struct Settings {
    pub(super) conn: Endpoint,
    /// The change feed's connection (the main one unless `listen_url`).
    pub(super) listen: Endpoint,
    pub(super) pool_size: usize,
    pub(super) read_pool_size: usize,
    pub(super) op_timeout: Duration,
    pub(super) statement_timeout: Duration,
    pub(super) lock_timeout: Duration,
    pub(super) kv_schema: Option<String>,
    pub(super) prepared_statements: bool,
}

/// Parses `url` once and folds its parameters over `options`.
pub(super) fn resolve(url: &str, mut options: PostgresOptions) -> Result<Settings> {
    let mut pg = tokio_postgres::Config::new();
    for p in url::parse(url)? {
        if !identity(&mut pg, &p, "")? {
            options.apply(&p, KNOWN, "")?;
        }
    }
    let conn = finish(pg, &options, "")?;
    let listen = match &options.listen_url {
        None => conn.clone(),
        Some(Secret(listen_url)) => {
            let mut listen_options = options.clone();
            listen_options.ssl_root_cert = None;
            listen_options.ssl_mode = None;
            let mut pg = tokio_postgres::Config::new();
            const IN: &str = " in listen_url";
            for p in url::parse(listen_url).map_err(in_listen_url)? {
                if !identity(&mut pg, &p, IN)? {
                    listen_options.apply(&p, LISTEN_KNOWN, IN)?;
                }
            }
            // Unset TLS options are the main URL's.
            if listen_options.ssl_mode.is_none() && listen_options.ssl_root_cert.is_none() {
                listen_options.ssl_mode = options.ssl_mode;
                listen_options.ssl_root_cert = options.ssl_root_cert.clone();
            }
            finish(pg, &listen_options, IN)?
        }
    };
    let op_timeout = options.op_timeout;
    if op_timeout.is_zero() || op_timeout > MAX_OP_TIMEOUT {
        return Err(Error::Config(format!(
            "op_timeout must be between 1 ms and {MAX_OP_TIMEOUT:?}, not {op_timeout:?}"
        )));
    }
    let statement_timeout = options.statement_timeout.unwrap_or(op_timeout);
    if statement_timeout.is_zero() || statement_timeout > op_timeout {
        return Err(Error::Config(format!(
            "statement_timeout ({statement_timeout:?}) must be positive and at most op_timeout \
             ({op_timeout:?}): the server must not go on with a statement the client has \
             given up on"
        )));
    }
    let lock_timeout = options
        .lock_timeout
        .unwrap_or(Duration::from_secs(2).min(statement_timeout));
    if lock_timeout.is_zero() || lock_timeout > statement_timeout {
        return Err(Error::Config(format!(
            "lock_timeout ({lock_timeout:?}) must be positive and at most statement_timeout \
             ({statement_timeout:?})"
        )));
    }
    for (name, n) in [
        ("pool_size", options.pool_size),
        ("read_pool_size", options.read_pool_size),
    ] {
        if !(1..=MAX_POOL_SIZE).contains(&n) {
            return Err(Error::Config(format!(
                "{name} must be between 1 and {MAX_POOL_SIZE}, not {n}"
            )));
        }
    }
    if let Some(schema) = &options.kv_schema {
        check_schema(schema)?;
    }
    Ok(Settings {
        conn,
        listen,
        pool_size: options.pool_size,
        read_pool_size: options.read_pool_size,
        op_timeout,
        statement_timeout,
        lock_timeout,
        kv_schema: options.kv_schema,
        prepared_statements: options.prepared_statements,
    })
}

fn in_listen_url(e: Error) -> Error {
    match e {
        Error::Config(m) => Error::Config(format!("listen_url: {m}")),
        other => other,
    }
}

/// Applies a parameter that says where and as whom to connect; `false`
/// when `p` is not one.
fn identity(pg: &mut tokio_postgres::Config, p: &Param, ctx: &str) -> Result<bool> {
    let value = p.value.text();
    match p.key.as_str() {
        "host" => {
            for host in value.split(',') {
                pg.host(host);
            }
        }
        "hostaddr" => {
            for addr in value.split(',') {
                let addr: IpAddr = addr.trim().parse().map_err(|_| {
                    Error::Config(format!(
                        "hostaddr{ctx} must be IP addresses separated by commas, not {addr:?}"
                    ))
                })?;
                pg.hostaddr(addr);
            }
        }
        "port" => {
            for port in value.split(',') {
                let port = if port.is_empty() {
                    5432
                } else {
                    port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        Error::Config(format!(
                            "port{ctx} must be a number from 1 to 65535, not {port:?}"
                        ))
                    })?
                };
                pg.port(port);
            }
        }
        "dbname" => {
            pg.dbname(value);
        }
        "user" => {
            pg.user(value);
        }
        "password" => {
            pg.password(value);
        }
        "channel_binding" => {
            use tokio_postgres::config::ChannelBinding;
            pg.channel_binding(match value {
                "disable" => ChannelBinding::Disable,
                "prefer" => ChannelBinding::Prefer,
                "require" => ChannelBinding::Require,
                other => return Err(bad_value(&p.key, other, "disable, prefer or require", ctx)),
            });
        }
        "target_session_attrs" => {
            use tokio_postgres::config::TargetSessionAttrs;
            pg.target_session_attrs(match value {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                other => return Err(bad_value(&p.key, other, "any or read-write", ctx)),
            });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn bad_value(key: &str, value: &str, expected: &str, ctx: &str) -> Error {
    Error::Config(format!("{key}{ctx} must be {expected}, not {value:?}"))
}

impl PostgresOptions {
    /// Applies one of kv's or libpq's other parameters; refuses the rest.
    fn apply(&mut self, p: &Param, known: &[&str], ctx: &str) -> Result<()> {
        let key = p.key.as_str();
        if !known.contains(&key) {
            return Err(unknown(p, known, ctx));
        }
        let value = p.value.text();
        match key {
            "sslmode" => {
                self.ssl_mode = Some(match value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    "allow" => {
                        return Err(Error::Config(format!(
                            "sslmode=allow{ctx} is not supported (kv does not try plain \
                             first); use prefer, or disable"
                        )))
                    }
                    other => {
                        return Err(bad_value(
                            key,
                            other,
                            "disable, prefer, require, verify-ca or verify-full",
                            ctx,
                        ))
                    }
                });
            }
            "sslrootcert" => {
                self.ssl_root_cert = match value {
                    "" => None,
                    "system" => Some(SslRootCert::System),
                    path => Some(SslRootCert::File(PathBuf::from(path))),
                };
            }
            "connect_timeout" => {
                // libpq: whole seconds; zero or less waits indefinitely.
                let secs: i64 = value.trim().parse().map_err(|_| {
                    bad_value(key, value, "a whole number of seconds (libpq's unit)", ctx)
                })?;
                self.connect_timeout = u64::try_from(secs)
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs);
            }
            "application_name" => self.application_name = value.to_owned(),
            "options" => self.options = Some(value.to_owned()),
            "kv_schema" => self.kv_schema = Some(value.to_owned()),
            "pool_size" => self.pool_size = pool_size(key, value)?,
            "read_pool_size" => self.read_pool_size = pool_size(key, value)?,
            "statement_timeout" => self.statement_timeout = Some(duration(key, value)?),
            "lock_timeout" => self.lock_timeout = Some(duration(key, value)?),
            "op_timeout" => self.op_timeout = duration(key, value)?,
            "listen_url" => self.listen_url = Some(Secret(value.to_owned())),
            "prepared_statements" => {
                self.prepared_statements = match value {
                    "on" | "true" | "yes" | "1" => true,
                    "off" | "false" | "no" | "0" => false,
                    other => return Err(bad_value(key, other, "on or off", ctx)),
                }
            }
            // Listed in `known` but handled by `identity`.
            _ => return Err(unknown(p, known, ctx)),
        }
        Ok(())
    }
}

fn unknown(p: &Param, known: &[&str], ctx: &str) -> Error {
    let key = p.key.as_str();
    if ctx.is_empty() || !KNOWN.contains(&key) {
        if let Some(why) = unsupported(key) {
            return Error::Config(format!("the PostgreSQL option `{key}`{ctx}: {why}"));
        }
        if p.after_secret {
            // Perhaps the rest of a password (or listen_url) with a raw
            // `&` or space: not echoed.
            return Error::Config(format!(
                "an unknown PostgreSQL option follows a password or listen_url{ctx}; if that \
                 value holds `&`, `=` or spaces, percent-encode it (or quote it in a key=value \
                 string). Known options: {}",
                known.join(", ")
            ));
        }
        return Error::Config(format!(
            "unknown PostgreSQL option `{key}`{ctx}; known options: {}",
            known.join(", ")
        ));
    }
    Error::Config(format!(
        "the option `{key}` has no meaning{ctx} (only in the main URL); listen_url takes: {}",
        known.join(", ")
    ))
}

fn pool_size(key: &str, value: &str) -> Result<usize> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
        .ok_or_else(|| {
            Error::Config(format!(
                "{key} must be a number from 1 to {MAX_POOL_SIZE}, not {value:?}"
            ))
        })
}

/// PostgreSQL's syntax for times: a whole number of milliseconds, or with
/// a unit `ms`, `s`, `min` or `h` (`500ms`, `2s`, `1min`).
fn duration(key: &str, value: &str) -> Result<Duration> {
    let text = value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let per_unit = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "min" => 60_000,
        "h" => 3_600_000,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if per_unit > 0 && !number.is_empty() => {
            Ok(Duration::from_millis(n.saturating_mul(per_unit)))
        }
        _ => Err(Error::Config(format!(
            "{key} must be a time like 500ms, 2s or 1min (a bare number is milliseconds, as in \
             PostgreSQL), not {value:?}"
        ))),
    }
}

/// A schema name kv can use unquoted and in a channel name: lower-case
/// ASCII letters, digits and `_`, starting with a letter or `_`, at most
/// 48 bytes, not `pg_...` (reserved by PostgreSQL).
pub(super) fn check_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "kv_schema must be a lower-case identifier (letters a-z, digits, `_`; not starting \
             with a digit or `pg_`; at most 48 bytes), not {:?}",
            crate::error::shorten(schema)
        )))
    }
}

/// Completes one connection's configuration from the options.
fn finish(
    mut pg: tokio_postgres::Config,
    options: &PostgresOptions,
    ctx: &str,
) -> Result<Endpoint> {
    if pg.get_hosts().is_empty() && pg.get_hostaddrs().is_empty() {
        return Err(Error::Config(format!(
            "the PostgreSQL connection string{ctx} names no host; use \
             postgres://user:password@host:port/database"
        )));
    }
    let hosts = pg.get_hosts().len().max(pg.get_hostaddrs().len());
    let ports = pg.get_ports().len();
    if ports > 1 && ports != hosts {
        return Err(Error::Config(format!(
            "the PostgreSQL connection string{ctx} has {hosts} hosts but {ports} ports: give \
             one port, or one per host"
        )));
    }
    let ssl_mode = match (options.ssl_mode, &options.ssl_root_cert) {
        (Some(mode), Some(SslRootCert::System)) if mode != SslMode::VerifyFull => {
            return Err(Error::Config(format!(
                "sslrootcert=system{ctx} needs sslmode=verify-full (as in libpq): the system's \
                 CAs vouch for host names, so only checking the name makes them meaningful; \
                 not sslmode={}",
                mode.as_str()
            )))
        }
        (None, Some(SslRootCert::System)) => SslMode::VerifyFull,
        (mode, _) => mode.unwrap_or_default(),
    };
    pg.ssl_mode(match ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    if let Some(limit) = options.connect_timeout {
        pg.connect_timeout(limit);
    }
    pg.application_name(&options.application_name);
    if let Some(o) = &options.options {
        pg.options(o);
    }
    // Notice a server that vanished without closing the connection: idle
    // (keepalives) or with a request in flight (user timeout).
    pg.keepalives(true)
        .keepalives_idle(Duration::from_secs(15))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(30));
    let target = describe_target(&pg);
    Ok(Endpoint {
        pg,
        target,
        ssl_mode,
        ssl_root_cert: options.ssl_root_cert.clone(),
    })
}

/// `host:port/database` for messages (never the password).
pub(super) fn describe_target(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let port = |i: usize| {
        config
            .get_ports()
            .get(i)
            .or(config.get_ports().first())
            .copied()
            .unwrap_or(5432)
    };
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(name) => format!("{name}:{}", port(i)),
            #[cfg(unix)]
            Host::Unix(path) => format!("{}:{}", path.display(), port(i)),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config
            .get_hostaddrs()
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{addr}:{}", port(i)))
            .collect();
    }
    format!(
        "{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default db)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn settings(url: &str) -> Settings {
        resolve(url, PostgresOptions::default()).unwrap()
    }

    fn refused(url: &str) -> String {
        match resolve(url, PostgresOptions::default()) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::Config, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn defaults_follow_libpq_and_kv() {
        let s = settings("postgres://u@h/db");
        assert_eq!(s.conn.ssl_mode, SslMode::Prefer);
        assert_eq!(s.conn.target, "h:5432/db");
        assert_eq!((s.pool_size, s.read_pool_size), (10, 4));
        assert_eq!(s.op_timeout, Duration::from_secs(5));
        assert_eq!(s.statement_timeout, Duration::from_secs(5));
        assert_eq!(s.lock_timeout, Duration::from_secs(2));
        assert_eq!(s.conn.pg.get_application_name(), Some("kv"));
        assert_eq!(s.listen.target, s.conn.target);
        assert!(s.prepared_statements);
    }

    #[test]
    fn every_option_is_read() {
        let s = settings(
            "postgres://u@h1,h2:6000/db?sslmode=verify-ca&sslrootcert=/ca.pem&connect_timeout=7\
             &application_name=app&options=-c%20search_path%3Dx&kv_schema=kv_app&pool_size=3\
             &read_pool_size=2&statement_timeout=4s&lock_timeout=500ms&op_timeout=1min\
             &listen_url=postgres%3A%2F%2Fv%40direct%2Fdb&prepared_statements=off\
             &channel_binding=require&target_session_attrs=read-write",
        );
        assert_eq!(s.conn.ssl_mode, SslMode::VerifyCa);
        assert_eq!(
            s.conn.ssl_root_cert,
            Some(SslRootCert::File("/ca.pem".into()))
        );
        assert_eq!(
            s.conn.pg.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        assert_eq!(s.conn.pg.get_application_name(), Some("app"));
        assert_eq!(s.conn.pg.get_options(), Some("-c search_path=x"));
        assert_eq!(s.kv_schema.as_deref(), Some("kv_app"));
        assert_eq!((s.pool_size, s.read_pool_size), (3, 2));
        assert_eq!(s.statement_timeout, Duration::from_secs(4));
        assert_eq!(s.lock_timeout, Duration::from_millis(500));
        assert_eq!(s.op_timeout, Duration::from_secs(60));
        assert_eq!(s.conn.target, "h1:5432,h2:6000/db");
        assert_eq!(s.listen.target, "direct:5432/db");
        assert_eq!(s.listen.pg.get_user(), Some("v"));
        // The listener inherits the main URL's TLS settings.
        assert_eq!(s.listen.ssl_mode, SslMode::VerifyCa);
        assert!(!s.prepared_statements);
    }

    #[test]
    fn url_overrides_the_builder() {
        let options = PostgresOptions::default()
            .pool_size(7)
            .op_timeout(Duration::from_secs(9));
        let s = resolve("postgres://h/db?pool_size=2", options).unwrap();
        assert_eq!((s.pool_size, s.op_timeout), (2, Duration::from_secs(9)));
    }

    #[test]
    fn unknown_options_are_named_with_the_known_ones() {
        let e = refused("postgres://h/db?no_such_option=1");
        assert!(e.contains("`no_such_option`"), "{e}");
        assert!(e.contains("sslrootcert") && e.contains("listen_url"), "{e}");
        let e = refused("postgres://h/db?sslcert=/c.pem");
        assert!(e.contains("client certificates"), "{e}");
        let e = refused("postgres://h/db?listen_url=postgres%3A%2F%2Fh%2Fdb%3Fpool_size%3D3");
        assert!(e.contains("`pool_size`") && e.contains("listen_url"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        for (url, needle) in [
            ("postgres://h/db?sslmode=verify", "sslmode"),
            ("postgres://h/db?sslmode=allow", "allow"),
            ("postgres://h/db?pool_size=0", "pool_size"),
            ("postgres://h/db?read_pool_size=1001", "read_pool_size"),
            ("postgres://h/db?op_timeout=2parsecs", "op_timeout"),
            ("postgres://h/db?op_timeout=0", "op_timeout"),
            ("postgres://h/db?statement_timeout=10s", "statement_timeout"),
            ("postgres://h/db?lock_timeout=6s", "lock_timeout"),
            ("postgres://h/db?kv_schema=Kv", "kv_schema"),
            ("postgres://h/db?kv_schema=pg_kv", "kv_schema"),
            ("postgres://h/db?connect_timeout=1.5", "connect_timeout"),
            (
                "postgres://h/db?sslrootcert=system&sslmode=require",
                "verify-full",
            ),
            ("postgres://h:0/db", "port"),
            ("postgres:///db", "no host"),
            ("host=h hostaddr=nope", "hostaddr"),
            ("mysql://h/db", "postgres://"),
        ] {
            let e = refused(url);
            assert!(e.contains(needle), "{url}: {e}");
        }
        assert_eq!(
            settings("postgres://h/db?sslrootcert=system").conn.ssl_mode,
            SslMode::VerifyFull
        );
        assert_eq!(
            settings("postgres://h/db?op_timeout=1s").lock_timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_messages() {
        let options = PostgresOptions::default().listen_url("postgres://u:hunter2@h/db");
        assert!(!format!("{options:?}").contains("hunter2"));
        let s = settings("postgres://u:hunter2@h/db");
        assert!(!s.conn.target.contains("hunter2"));
        assert!(!format!("{:?}", s.conn.pg).contains("hunter2"));
        for url in [
            "postgres://u:hunter2@h/db?password=hunter2&hunter2=1",
            "host=h password=hunter2 hunter2=x",
            "postgres://h/db?listen_url=postgres%3A%2F%2Fu%3Ahunter2%40h%2Fdb%3Fx%3D1",
        ] {
            let e = refused(url);
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }
}
