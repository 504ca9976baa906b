//! The backend conformance suite over TLS (`sslmode=verify-full`), against
//! a private PostgreSQL with `ssl=on` and a certificate for `localhost`
//! signed by a CA the test makes. Each case gets a fresh database on it.
//! Needs scripts/test.sh's variables (`KV_TEST_PG_CTL`, ...).

mod support;

use std::sync::OnceLock;
use support::{pg, pg_instance};

/// The TLS server (one per binary, stopped when the process ends) and the
/// URL every case's database goes by.
fn server() -> Option<&'static (pg_instance::Instance, String)> {
    static SERVER: OnceLock<Option<(pg_instance::Instance, String)>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let bins = pg_instance::Binaries::from_env("the TLS conformance suite")?;
            let certs = pg_instance::Certs::new("kv conformance CA", &["localhost"]);
            let instance = pg_instance::start_tls(&bins, &certs);
            let url = format!(
                "postgres://{}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
                bins.user(),
                instance.port,
                certs.write_ca(instance.dir(), "ca.pem").display()
            );
            Some((instance, url))
        })
        .as_ref()
}

kv_runtime::conformance_suite!({
    let Some((instance, tls_url)) = server() else {
        return;
    };
    async move {
        // Created over a plain admin connection; the store connects over TLS.
        let plain = pg::fresh_database(&instance.url("postgres")).await;
        let db = plain.rsplit('/').next().expect("a database name");
        let url = tls_url.replacen("/postgres?", &format!("/{db}?"), 1);
        kv_runtime::Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a store over TLS: {e}"))
    }
});
