//! No password in any message, for any shape of connection string: a table
//! of shapes (raw `@`, `:`, `/`, `%`, `?`, `#` in the password, `password=`
//! in the query, `key=value` strings, a password inside `listen_url`)
//! against every error path that names a URL or a server: refused and
//! malformed options, a refused port, TLS required from a server without
//! it, a missing database, a write behind a lock, and the `Debug` output
//! of the store, its health and its options.

mod support;

use std::time::Duration;
use support::pg;

use kv_runtime::backend::postgres::{PostgresBackend, PostgresOptions};
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "secretDoc", keys = [k])]
struct Doc {
    n: u32,
}

/// The two halves of every password; neither may appear anywhere.
const HALVES: [&str; 2] = ["Qz9Kp", "Wx7Vm"];

/// Extra options, as (name, value).
type Extra<'a> = &'a [(&'a str, &'a str)];

/// Builds a connection string for (user, host, port, database, extra).
type Build = fn(&str, &str, u16, &str, Extra<'_>) -> String;

/// One shape, and whether a server that trusts everyone accepts it.
struct Shape {
    name: &'static str,
    build: Build,
    connects: bool,
}

fn query(extra: &[(&str, &str)], first: char) -> String {
    extra
        .iter()
        .enumerate()
        .map(|(i, (k, v))| format!("{}{k}={v}", if i == 0 { first } else { '&' }))
        .collect()
}

fn key_values(extra: &[(&str, &str)]) -> String {
    extra.iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "raw @ in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp@Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: true,
    },
    Shape {
        name: "raw : in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp:Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: true,
    },
    Shape {
        name: "raw / in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp/Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: true,
    },
    Shape {
        name: "raw % in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp%Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: false,
    },
    Shape {
        name: "encoded % in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp%25Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: true,
    },
    Shape {
        name: "raw ? in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp?Wx7Vm@{h}:{p}/{d}{}", query(x, '&')),
        connects: false,
    },
    Shape {
        name: "raw # in the password",
        build: |u, h, p, d, x| format!("postgres://{u}:Qz9Kp#Wx7Vm@{h}:{p}/{d}{}", query(x, '?')),
        connects: true,
    },
    Shape {
        name: "password= in the query",
        build: |u, h, p, d, x| {
            format!(
                "postgres://{u}@{h}:{p}/{d}?password=Qz9KpWx7Vm{}",
                query(x, '&')
            )
        },
        connects: true,
    },
    Shape {
        name: "raw & in a query password",
        build: |u, h, p, d, x| {
            format!(
                "postgres://{u}@{h}:{p}/{d}?password=Qz9Kp&Wx7Vm=1{}",
                query(x, '&')
            )
        },
        connects: false,
    },
    Shape {
        name: "key=value string",
        build: |u, h, p, d, x| {
            format!(
                "host={h} port={p} user={u} password=Qz9KpWx7Vm dbname={d}{}",
                key_values(x)
            )
        },
        connects: true,
    },
    Shape {
        name: "key=value string, quoted password with a space",
        build: |u, h, p, d, x| {
            format!(
                "host={h} port={p} user={u} password='Qz9Kp Wx7Vm' dbname={d}{}",
                key_values(x)
            )
        },
        connects: true,
    },
    Shape {
        name: "key=value string, unquoted password with a space",
        build: |u, h, p, d, x| {
            format!(
                "host={h} port={p} user={u} password=Qz9Kp Wx7Vm dbname={d}{}",
                key_values(x)
            )
        },
        connects: false,
    },
    Shape {
        name: "a password inside listen_url",
        build: |u, h, p, d, x| {
            format!(
                "postgres://{u}@{h}:{p}/{d}?listen_url=postgres%3A%2F%2F{u}%3AQz9Kp%40Wx7Vm%40{h}%3A{p}%2F{d}{}",
                query(x, '&')
            )
        },
        connects: true,
    },
];

fn assert_clean(shape: &Shape, path: &str, text: &str) {
    for half in HALVES {
        assert!(
            !text.contains(half),
            "{} / {path}: the message shows part of the password: {text}",
            shape.name
        );
    }
}

/// Opens with `PostgresBackend::connect` (key=value strings are not store
/// URLs), bounded.
async fn open(conn: &str) -> kv_runtime::Result<Store> {
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        PostgresBackend::connect(conn, PostgresOptions::default()),
    )
    .await
    .expect("opening returns");
    opened.map(Store::with_backend)
}

async fn check_error(shape: &Shape, path: &str, conn: &str) {
    match open(conn).await {
        Ok(_) => panic!("{} / {path}: opened", shape.name),
        Err(e) => {
            assert_clean(shape, path, &e.to_string());
            assert_clean(shape, path, &format!("{e:?}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_shape_of_password_reaches_a_message() {
    let user = std::env::var("KV_TEST_PG_RUN_AS").unwrap_or_else(|_| "postgres".into());
    let server = pg::server_url();
    let port = server.as_deref().map(|url| {
        url.rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok())
            .expect("the test server's port")
    });
    let db = match &server {
        Some(url) => Some(pg::fresh_database(url).await),
        None => None,
    };
    let db_name = db
        .as_deref()
        .and_then(|d| d.rsplit('/').next())
        .unwrap_or("kv");

    for shape in SHAPES {
        let build = |host, port, db: &str, extra: &[(&str, &str)]| {
            (shape.build)(&user, host, port, db, extra)
        };
        // Options: an unknown one, and a bad value.
        check_error(
            shape,
            "unknown option",
            &build("127.0.0.1", 1, "kv", &[("bogus_option", "1")]),
        )
        .await;
        check_error(
            shape,
            "bad value",
            &build("127.0.0.1", 1, "kv", &[("pool_size", "0")]),
        )
        .await;
        // Nothing listens on port 1.
        check_error(shape, "refused port", &build("127.0.0.1", 1, "kv", &[])).await;
        check_error(
            shape,
            "unknown host",
            &build("no-such-host.invalid", 5432, "kv", &[]),
        )
        .await;

        let Some(port) = port else { continue };
        check_error(
            shape,
            "TLS required, server without it",
            &build("127.0.0.1", port, db_name, &[("sslmode", "require")]),
        )
        .await;
        check_error(
            shape,
            "missing database",
            &build("127.0.0.1", port, "no_such_database", &[]),
        )
        .await;
        if !shape.connects {
            continue;
        }
        let store = open(&build(
            "127.0.0.1",
            port,
            db_name,
            &[("lock_timeout", "100ms")],
        ))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", shape.name));
        let health = store.health().await;
        assert!(health.backend.reachable, "{}: {health:?}", shape.name);
        assert_clean(shape, "Debug of the store", &format!("{store:?}"));
        assert_clean(shape, "health", &format!("{health:?}"));

        // A write behind a lock: its error names the server.
        let t = store.table::<Doc>();
        t.set(&Ctx::internal(), DocKey::K, Doc { n: 1 })
            .await
            .unwrap();
        let mut outside = pg::admin(db.as_deref().expect("a database")).await;
        let tx = outside.transaction().await.unwrap();
        tx.execute(
            "SELECT 1 FROM kv_rows WHERE tbl = 'secretDoc' AND key = 'k' FOR UPDATE",
            &[],
        )
        .await
        .unwrap();
        let err = t
            .set(&Ctx::internal(), DocKey::K, Doc { n: 2 })
            .await
            .expect_err("the row is locked");
        assert!(err.to_string().contains("lock_timeout"), "{err}");
        assert_clean(shape, "lock timeout", &err.to_string());
        assert_clean(shape, "lock timeout (Debug)", &format!("{err:?}"));
        tx.rollback().await.unwrap();
    }
}

#[test]
fn options_never_debug_their_secrets() {
    let options = PostgresOptions::default()
        .listen_url("postgres://u:Qz9Kp@Wx7Vm@h/db")
        .application_name("app");
    let shown = format!("{options:?}");
    for half in HALVES {
        assert!(!shown.contains(half), "{shown}");
    }
}

#[tokio::test]
async fn store_urls_are_never_echoed() {
    for url in [
        "postgress://u:Qz9KpWx7Vm@h/db",
        "host=h password=Qz9KpWx7Vm",
        "Qz9KpWx7Vm",
        "memory:Qz9KpWx7Vm",
    ] {
        let err = Store::open(url).await.unwrap_err();
        for half in HALVES {
            assert!(!err.to_string().contains(half), "{url}: {err}");
        }
    }
}
