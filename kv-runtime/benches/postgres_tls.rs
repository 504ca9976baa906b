//! `get` and `set` over TLS (`sslmode=verify-full`, rustls on ring), kv's
//! typed table beside a raw tokio-postgres client over exactly the same
//! TLS connector (`raw_connection`), running the same statements, in one
//! run, against one private PostgreSQL 15 server with `ssl=on` that the
//! bench starts (certificates made with `openssl`, for `localhost`).
//!
//! Needs the PostgreSQL binaries: `KV_TEST_PG_CTL=/usr/lib/postgresql/15/bin/pg_ctl
//! KV_TEST_PG_RUN_AS=postgres cargo bench -p kv-runtime --features postgres
//! --bench postgres_tls` (see BENCHMARKS.md). Without them it prints a
//! message and does nothing.

#[path = "../../tests/support/pg_instance.rs"]
mod pg_instance;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use kv_runtime::backend::postgres::{raw_connection, sql};
use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "benchSite", keys = [banner, motd], write_role = admin)]
struct SiteConfig {
    active: bool,
    message: String,
}

/// What the raw client decodes values into (the same shape).
#[derive(Serialize, Deserialize, Debug)]
struct RawValue {
    active: bool,
    message: String,
}

fn value(i: u64) -> SiteConfig {
    SiteConfig {
        active: i.is_multiple_of(2),
        message: format!("Scheduled maintenance tonight at 22:00 UTC ({i})"),
    }
}

fn main() {
    if std::env::var("KV_TEST_PG_CTL").is_err() {
        eprintln!(
            "postgres_tls bench: KV_TEST_PG_CTL (and KV_TEST_PG_RUN_AS) are not set; nothing \
             to measure. See BENCHMARKS.md."
        );
        return;
    }
    let Some(bins) = pg_instance::Binaries::from_env("the TLS bench") else {
        return;
    };
    let certs = pg_instance::Certs::new("kv bench CA", &["localhost"]);
    let server = pg_instance::start_tls(&bins, &certs);
    let ca = certs.write_ca(server.dir(), "ca.pem");
    let url = format!(
        "postgres://{}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        bins.user(),
        server.port,
        ca.display()
    );
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // One thread: both clients' connection tasks run inside `block_on`, so
    // neither gets a second core the other lacks.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    bench(&mut c, &rt, &url);
    c.final_summary();
    drop(server);
}

fn bench(c: &mut Criterion, rt: &Runtime, url: &str) {
    let store = rt
        .block_on(Store::open(url))
        .expect("the store opens over TLS");
    let (config, tls) = raw_connection(url).expect("the same TLS for the raw client");
    let raw = rt.block_on(async {
        let (client, connection) = config.connect(tls).await.expect("raw TLS connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    });
    let ssl: bool = rt
        .block_on(raw.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        ))
        .unwrap()
        .get(0);
    assert!(ssl, "the raw client runs over TLS");

    let admin = Ctx::user("ada").with_role("admin");
    let site = store.table::<SiteConfig>();
    rt.block_on(site.set(&admin, SiteConfigKey::Motd, value(0)))
        .unwrap();
    let get = rt.block_on(raw.prepare(sql::GET)).unwrap();
    let put = rt.block_on(raw.prepare(sql::PUT)).unwrap();

    let mut g = c.benchmark_group("postgres-tls/get");
    g.bench_function("kv typed get", |b| {
        b.iter(|| {
            let row = rt
                .block_on(site.get(black_box(SiteConfigKey::Motd)))
                .unwrap();
            black_box(row)
        })
    });
    g.bench_function("raw tokio-postgres get + decode", |b| {
        b.iter(|| {
            let row = rt
                .block_on(raw.query_opt(&get, &[&"benchSite", &black_box("motd")]))
                .unwrap()
                .unwrap();
            let v: RawValue = serde_json::from_str(row.get::<_, &str>(0)).unwrap();
            let updated_at: i64 = row.get(2);
            black_box((v, updated_at))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("postgres-tls/set");
    let mut i = 0u64;
    g.bench_function("kv typed set", |b| {
        b.iter(|| {
            i += 1;
            let row = rt
                .block_on(site.set(&admin, SiteConfigKey::Motd, value(i)))
                .unwrap();
            black_box(row)
        })
    });
    let mut i = 0u64;
    g.bench_function("raw tokio-postgres set (same statement)", |b| {
        b.iter(|| {
            i += 1;
            let v = value(i);
            let json = serde_json::to_string(&RawValue {
                active: v.active,
                message: v.message,
            })
            .unwrap();
            let now = 1_700_000_000_000i64;
            let row = rt
                .block_on(raw.query_one(
                    &put,
                    &[
                        &"benchSite",
                        &"motd",
                        &json,
                        &Some("ada"),
                        &now,
                        &None::<i64>,
                        &false,
                        &1i32,
                    ],
                ))
                .unwrap();
            let updated_at: Option<i64> = row.get(7);
            black_box(updated_at.unwrap())
        })
    });
    g.finish();

    interleaved(rt, &site, &raw, &get, &put, &admin);
}

/// The same comparison interleaved (on a shared machine, load that comes
/// and goes hits both sides alike): rounds of `CALLS` calls of each side in
/// turn; the fastest and the median round per call.
fn interleaved(
    rt: &Runtime,
    site: &kv_runtime::Table<SiteConfig>,
    raw: &tokio_postgres::Client,
    get: &tokio_postgres::Statement,
    put: &tokio_postgres::Statement,
    admin: &Ctx,
) {
    const ROUNDS: usize = 21;
    const CALLS: u32 = 300;
    let round = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..CALLS {
            f();
        }
        start.elapsed() / CALLS
    };
    let mut i = 0u64;
    let mut kv_get = || {
        black_box(rt.block_on(site.get(SiteConfigKey::Motd)).unwrap());
    };
    let mut raw_get = || {
        let row = rt
            .block_on(raw.query_opt(get, &[&"benchSite", &"motd"]))
            .unwrap()
            .unwrap();
        let v: RawValue = serde_json::from_str(row.get::<_, &str>(0)).unwrap();
        black_box((v, row.get::<_, i64>(2)));
    };
    let mut kv_set = || {
        i += 1;
        black_box(
            rt.block_on(site.set(admin, SiteConfigKey::Motd, value(i)))
                .unwrap(),
        );
    };
    let mut j = 0u64;
    let mut raw_set = || {
        j += 1;
        let v = value(j);
        let json = serde_json::to_string(&RawValue {
            active: v.active,
            message: v.message,
        })
        .unwrap();
        let row = rt
            .block_on(raw.query_one(
                put,
                &[
                    &"benchSite",
                    &"motd",
                    &json,
                    &Some("ada"),
                    &1_700_000_000_000i64,
                    &None::<i64>,
                    &false,
                    &1i32,
                ],
            ))
            .unwrap();
        black_box(row.get::<_, Option<i64>>(7));
    };
    for (name, a, b) in [
        (
            "get",
            &mut kv_get as &mut dyn FnMut(),
            &mut raw_get as &mut dyn FnMut(),
        ),
        ("set", &mut kv_set, &mut raw_set),
    ] {
        let (mut kv, mut rawt) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            kv.push(round(a));
            rawt.push(round(b));
        }
        kv.sort();
        rawt.sort();
        let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64();
        println!(
            "interleaved {name}: kv fastest {:?} median {:?}; raw fastest {:?} median {:?}; \
             ratio fastest {:.2}x median {:.2}x",
            kv[0],
            kv[ROUNDS / 2],
            rawt[0],
            rawt[ROUNDS / 2],
            ratio(kv[0], rawt[0]),
            ratio(kv[ROUNDS / 2], rawt[ROUNDS / 2])
        );
    }
}
