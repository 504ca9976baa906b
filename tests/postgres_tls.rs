//! TLS to PostgreSQL, against a private server with `ssl=on` whose CA and
//! certificate (for `localhost` only) the test makes with `openssl`:
//! `verify-full` with the right CA works over TLS; a wrong CA, a wrong
//! host name, `require` against a server without TLS, and an unreadable
//! `sslrootcert` are each CONFIG naming the cause; no message holds the
//! password. Needs scripts/test.sh's variables (`KV_TEST_PG_CTL`, ...).

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use support::{pg, pg_instance};

use kv_runtime::backend::FeedHealth;
use kv_runtime::{Ctx, ErrorCode, Kv, Store};
use pg_instance::{Binaries, Certs, Instance};
use serde::{Deserialize, Serialize};

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "tlsFlag", keys = [beta])]
struct Flag {
    on: bool,
}

/// In every URL here; the server trusts everyone, so it is never needed,
/// and it must never be shown.
const SECRET: &str = "Tls-Pa55word";

/// The TLS server, its CA file, and a CA file of another CA.
struct Fixture {
    server: Instance,
    ca: PathBuf,
    other_ca: PathBuf,
}

/// One server for the whole binary (stopped when the process ends).
fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let bins = Binaries::from_env("the TLS tests")?;
            let certs = Certs::new("kv test CA", &["localhost"]);
            let other = Certs::new("some other CA", &["localhost"]);
            let server = pg_instance::start_tls(&bins, &certs);
            Some(Fixture {
                ca: certs.write_ca(server.dir(), "ca.pem"),
                other_ca: other.write_ca(server.dir(), "other-ca.pem"),
                server,
            })
        })
        .as_ref()
}

fn url(host: &str, port: u16, query: &str) -> String {
    let user = std::env::var("KV_TEST_PG_RUN_AS").unwrap_or_else(|_| "postgres".into());
    format!("postgres://{user}:{SECRET}@{host}:{port}/postgres?{query}")
}

fn ca(path: &Path) -> String {
    path.display().to_string()
}

async fn refused(url: &str) -> String {
    let err = tokio::time::timeout(Duration::from_secs(60), Store::open(url))
        .await
        .expect("opening returns")
        .expect_err("the connection is refused");
    let text = err.to_string();
    assert_eq!(err.code(), ErrorCode::Config, "{text}");
    assert!(!err.is_retryable());
    assert!(!text.contains(SECRET), "{text}");
    assert!(!format!("{err:?}").contains(SECRET), "{err:?}");
    text
}

/// Whether every connection named `app` on the server uses TLS (and
/// there is at least one).
async fn all_tls(server: &Instance, app: &str) -> bool {
    let admin = pg::admin(&server.url("postgres")).await;
    let rows = admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    !rows.is_empty() && rows.iter().all(|r| r.get::<_, bool>(0))
}

#[tokio::test]
async fn verify_full_with_the_right_ca_works_over_tls() {
    let Some(f) = fixture() else { return };
    let store = Store::open(&url(
        "localhost",
        f.server.port,
        &format!(
            "sslmode=verify-full&sslrootcert={}&application_name=kv_verify_full",
            ca(&f.ca)
        ),
    ))
    .await
    .expect("verify-full with the right CA connects");
    let t = store.table::<Flag>();
    t.set(&Ctx::internal(), FlagKey::Beta, Flag { on: true })
        .await
        .unwrap();
    assert_eq!(
        t.get(FlagKey::Beta).await.unwrap().unwrap().value,
        Flag { on: true }
    );
    let health = store.health().await;
    assert!(health.backend.reachable, "{health:?}");
    assert_eq!(health.backend.feed, FeedHealth::Verified);
    assert!(all_tls(&f.server, "kv_verify_full").await);
    assert!(!format!("{store:?} {health:?}").contains(SECRET));
}

#[tokio::test]
async fn verify_ca_and_require_do_not_check_the_host_name() {
    let Some(f) = fixture() else { return };
    // 127.0.0.1 is not a name the certificate lists.
    for (query, app) in [
        (
            format!("sslmode=verify-ca&sslrootcert={}", ca(&f.ca)),
            "kv_verify_ca",
        ),
        ("sslmode=require".to_owned(), "kv_require"),
        (
            format!("sslmode=require&sslrootcert={}", ca(&f.ca)),
            "kv_require_root",
        ),
        ("sslmode=prefer".to_owned(), "kv_prefer"),
    ] {
        let store = Store::open(&url(
            "127.0.0.1",
            f.server.port,
            &format!("{query}&application_name={app}"),
        ))
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
        store.table::<Flag>().get(FlagKey::Beta).await.unwrap();
        assert!(all_tls(&f.server, app).await, "{query} uses TLS");
    }
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_config() {
    let Some(f) = fixture() else { return };
    for mode in ["verify-full", "verify-ca", "require"] {
        let text = refused(&url(
            "localhost",
            f.server.port,
            &format!("sslmode={mode}&sslrootcert={}", ca(&f.other_ca)),
        ))
        .await;
        assert!(text.contains("not signed by a CA"), "{mode}: {text}");
        assert!(text.contains("unknown issuer"), "{mode}: {text}");
        assert!(
            text.contains("other-ca.pem"),
            "names the roots used: {text}"
        );
    }
    // Without sslrootcert, verify-full trusts the system's CAs, which did
    // not sign this one either.
    let text = refused(&url("localhost", f.server.port, "sslmode=verify-full")).await;
    assert!(text.contains("system's trust store"), "{text}");
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_config() {
    let Some(f) = fixture() else { return };
    let text = refused(&url(
        "127.0.0.1",
        f.server.port,
        &format!("sslmode=verify-full&sslrootcert={}", ca(&f.ca)),
    ))
    .await;
    assert!(text.contains("not valid for the host name"), "{text}");
    assert!(text.contains("verify-ca"), "says what else to do: {text}");
}

#[tokio::test]
async fn requiring_tls_from_a_server_without_it_is_config() {
    // The shared test server runs without TLS.
    let Some(plain) = pg::server_url() else {
        return;
    };
    let port = plain
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("the test server's port");
    for mode in ["require", "verify-full"] {
        let text = refused(&url("127.0.0.1", port, &format!("sslmode={mode}"))).await;
        assert!(text.contains("does not offer it"), "{mode}: {text}");
    }
    // `prefer` falls back to plain there.
    Store::open(&url("127.0.0.1", port, "sslmode=prefer"))
        .await
        .expect("prefer connects without TLS");
}

#[tokio::test]
async fn an_unreadable_root_certificate_is_config() {
    let Some(f) = fixture() else { return };
    let text = refused(&url(
        "localhost",
        f.server.port,
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    ))
    .await;
    assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    let not_pem = std::env::temp_dir().join(format!("kv-not-pem-{}.pem", std::process::id()));
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let text = refused(&url(
        "localhost",
        f.server.port,
        &format!("sslmode=verify-full&sslrootcert={}", not_pem.display()),
    ))
    .await;
    assert!(text.contains("no usable CA certificate"), "{text}");
    let _ = std::fs::remove_file(not_pem);
}
