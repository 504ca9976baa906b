//! Export and import of 100k rows, kv beside a raw baseline doing the same
//! in the same run: on SQLite a hand-written `SELECT` / batched `INSERT` in
//! one transaction (rusqlite, same file settings); on PostgreSQL `COPY TO`
//! / `COPY FROM` (tokio-postgres). Then the peak memory of the `kv` binary
//! exporting and importing 10k and 100k rows (`/usr/bin/time`), which must
//! not grow with the rows.
//!
//! `cargo bench -p kv-runtime-cli --bench transfer` (`KV_BENCH_ROWS` for another
//! size; PostgreSQL lines need `KV_TEST_POSTGRES_URL`, as scripts/test.sh
//! sets it). Each line is the median of 3 runs. A plain harness, not
//! criterion: one run takes seconds and needs a fresh store.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use kv_runtime::backend::{ImportMode, ImportOptions, Payload, RawRow};
use kv_runtime::Store;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

const TABLE: &str = "benchRows";
const RUNS: usize = 3;

fn rows(n: usize) -> usize {
    std::env::var("KV_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n)
}

fn row(i: usize) -> RawRow {
    RawRow {
        key: format!("key-{i:08}"),
        value: Payload::from_json(format!(
            r#"{{"active":{},"message":"Scheduled maintenance tonight at 22:00 UTC ({i})"}}"#,
            i.is_multiple_of(2)
        )),
        created_at: 1_700_000_000_000 + i as i64,
        updated_at: 1_700_000_100_000 + i as i64,
        deleted_at: i.is_multiple_of(50).then_some(1_700_000_100_000 + i as i64),
        updated_by: Some(Arc::from("cli:bench")),
    }
}

async fn seed(store: &Store, n: usize) {
    let mut i = 0;
    while i < n {
        let batch: Vec<RawRow> = (i..(i + 1000).min(n)).map(row).collect();
        i += batch.len();
        store
            .backend()
            .import(TABLE, batch, ImportOptions::default())
            .await
            .unwrap();
    }
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    key: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
    deleted_at: Option<i64>,
    updated_by: Option<String>,
}

#[derive(Serialize)]
struct OutLine<'a> {
    table: &'a str,
    key: &'a str,
    value: &'a RawValue,
    created_at: i64,
    updated_at: i64,
    deleted_at: Option<i64>,
    updated_by: Option<&'a str>,
}

/// Reads the row lines of an export, calling `each`.
fn read_rows(path: &Path, mut each: impl FnMut(Line<'_>)) {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path).unwrap());
    let mut text = String::new();
    while {
        text.clear();
        reader.read_line(&mut text).unwrap() > 0
    } {
        let line: Line<'_> = serde_json::from_str(text.trim_end()).unwrap();
        if line.key.is_some() {
            each(line);
        }
    }
}

fn sqlite_conn(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn
}

fn raw_sqlite_export(db: &Path, out: &Path) {
    let conn = sqlite_conn(db);
    let mut w = BufWriter::with_capacity(1 << 16, File::create(out).unwrap());
    let mut stmt = conn
        .prepare("SELECT tbl, key, value, created_at, updated_at, deleted_at, updated_by FROM kv_rows ORDER BY tbl, key")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let value: String = r.get(2).unwrap();
        let by: Option<String> = r.get(6).unwrap();
        let line = OutLine {
            table: &r.get::<_, String>(0).unwrap(),
            key: &r.get::<_, String>(1).unwrap(),
            value: serde_json::from_str(&value).unwrap(),
            created_at: r.get(3).unwrap(),
            updated_at: r.get(4).unwrap(),
            deleted_at: r.get(5).unwrap(),
            updated_by: by.as_deref(),
        };
        serde_json::to_writer(&mut w, &line).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
}

fn raw_sqlite_import(file: &Path, db: &Path) {
    let mut conn = sqlite_conn(db);
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare("INSERT INTO kv_rows (tbl, key, value, created_at, updated_at, deleted_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        read_rows(file, |l| {
            insert
                .execute(rusqlite::params![
                    TABLE,
                    l.key,
                    l.value.unwrap().get(),
                    l.created_at,
                    l.updated_at,
                    l.deleted_at,
                    l.updated_by
                ])
                .unwrap();
        });
    }
    tx.commit().unwrap();
}

async fn kv_export(store: &Store, out: &Path) {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(out).unwrap());
    kv_runtime_cli::export::export(&**store.backend(), &[], 0, &mut w, false)
        .await
        .unwrap();
}

async fn kv_import(store: &Store, file: &Path) {
    let plan = kv_runtime_cli::import::check(file).unwrap();
    kv_runtime_cli::import::apply(
        &**store.backend(),
        file,
        &plan,
        ImportMode::KeepNewer,
        false,
    )
    .await
    .unwrap();
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn copy_text(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

async fn pg_admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{db}{query}", &base[..path])
}

/// A fresh database with kv's schema (opened once by kv), and its URL.
async fn fresh_pg(admin: &tokio_postgres::Client, server: &str, name: &str) -> String {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = with_db(server, name);
    drop(Store::open(&url).await.unwrap());
    url
}

async fn raw_pg_export(url: &str, out: &Path) {
    let client = pg_admin(url).await;
    let stream = client
        .copy_out("COPY (SELECT tbl, key, value::text, created_at, updated_at, deleted_at, updated_by FROM kv_rows ORDER BY tbl, key) TO STDOUT")
        .await
        .unwrap();
    let mut w = BufWriter::with_capacity(1 << 16, File::create(out).unwrap());
    futures_util::pin_mut!(stream);
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        w.write_all(&chunk.unwrap()).unwrap();
    }
    w.flush().unwrap();
}

async fn raw_pg_import(file: &Path, url: &str) {
    let client = pg_admin(url).await;
    let sink = client
        .copy_in("COPY kv_rows (tbl, key, value, created_at, updated_at, deleted_at, updated_by) FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    let mut buf = Vec::with_capacity(1 << 20);
    let mut chunks = Vec::new();
    read_rows(file, |l| {
        buf.extend_from_slice(TABLE.as_bytes());
        buf.push(b'\t');
        copy_text(&mut buf, l.key.as_deref().unwrap());
        buf.push(b'\t');
        copy_text(&mut buf, l.value.unwrap().get());
        buf.extend_from_slice(
            format!("\t{}\t{}\t", l.created_at.unwrap(), l.updated_at.unwrap()).as_bytes(),
        );
        match l.deleted_at {
            Some(d) => buf.extend_from_slice(d.to_string().as_bytes()),
            None => buf.extend_from_slice(b"\\N"),
        }
        buf.push(b'\t');
        match &l.updated_by {
            Some(b) => copy_text(&mut buf, b),
            None => buf.extend_from_slice(b"\\N"),
        }
        buf.push(b'\n');
        if buf.len() > 1 << 20 {
            chunks.push(bytes::Bytes::from(std::mem::take(&mut buf)));
        }
    });
    chunks.push(bytes::Bytes::from(buf));
    for chunk in chunks {
        sink.send(chunk).await.unwrap();
    }
    sink.finish().await.unwrap();
}

/// Peak resident memory (KiB) of `kv ARGS`, by /usr/bin/time.
fn peak_kib(args: &[&str]) -> Option<u64> {
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(env!("CARGO_BIN_EXE_kv"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let n = rows(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = Dir(std::env::temp_dir().join(format!("kv-bench-transfer-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = |name: &str| dir.0.join(name);
    let sqlite_url = |p: &Path| format!("sqlite://{}", p.display());

    println!("{n} rows, median of {RUNS} runs\n");
    println!("| backend | operation | kv | raw | kv/raw |");
    println!("|---|---|---|---|---|");

    // SQLite source.
    let src = d("src.db");
    let store = rt.block_on(Store::open(&sqlite_url(&src))).unwrap();
    rt.block_on(seed(&store, n));
    let file = d("export.jsonl");
    let (mut kv_t, mut raw_t) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        rt.block_on(kv_export(&store, &file));
        kv_t.push(t.elapsed());
        let t = Instant::now();
        raw_sqlite_export(&src, &d("raw.jsonl"));
        raw_t.push(t.elapsed());
    }
    report("SQLite", "export", kv_t, raw_t);
    let (mut kv_t, mut raw_t) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let target = d(&format!("kv-{run}.db"));
        let target_store = rt.block_on(Store::open(&sqlite_url(&target))).unwrap();
        let t = Instant::now();
        rt.block_on(kv_import(&target_store, &file));
        kv_t.push(t.elapsed());
        drop(target_store);
        let raw_target = d(&format!("raw-{run}.db"));
        drop(rt.block_on(Store::open(&sqlite_url(&raw_target))).unwrap());
        let t = Instant::now();
        raw_sqlite_import(&file, &raw_target);
        raw_t.push(t.elapsed());
    }
    report("SQLite", "import", kv_t, raw_t);

    // PostgreSQL.
    if let Ok(server) = std::env::var("KV_TEST_POSTGRES_URL") {
        let admin = rt.block_on(pg_admin(&server));
        let pid = std::process::id();
        let src_url = rt.block_on(fresh_pg(&admin, &server, &format!("kv_bench_src_{pid}")));
        let pg_store = rt.block_on(Store::open(&src_url)).unwrap();
        rt.block_on(seed(&pg_store, n));
        let (mut kv_t, mut raw_t) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            rt.block_on(kv_export(&pg_store, &d("pg.jsonl")));
            kv_t.push(t.elapsed());
            let t = Instant::now();
            rt.block_on(raw_pg_export(&src_url, &d("pg-raw.tsv")));
            raw_t.push(t.elapsed());
        }
        report("PostgreSQL", "export", kv_t, raw_t);
        let (mut kv_t, mut raw_t) = (Vec::new(), Vec::new());
        let dst = format!("kv_bench_dst_{pid}");
        for _ in 0..RUNS {
            let url = rt.block_on(fresh_pg(&admin, &server, &dst));
            let target = rt.block_on(Store::open(&url)).unwrap();
            let t = Instant::now();
            rt.block_on(kv_import(&target, &file));
            kv_t.push(t.elapsed());
            drop(target);
            let url = rt.block_on(fresh_pg(&admin, &server, &dst));
            let t = Instant::now();
            rt.block_on(raw_pg_import(&file, &url));
            raw_t.push(t.elapsed());
        }
        report("PostgreSQL", "import", kv_t, raw_t);
        drop(pg_store);
        rt.block_on(async {
            for db in [format!("kv_bench_src_{pid}"), dst] {
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                    .await;
            }
        });
    } else {
        println!("\n(PostgreSQL skipped: KV_TEST_POSTGRES_URL is not set)");
    }

    // Memory: the kv binary on a tenth of the rows, then on all of them.
    let tenth = d("tenth.db");
    let tenth_store = rt.block_on(Store::open(&sqlite_url(&tenth))).unwrap();
    rt.block_on(seed(&tenth_store, n / 10));
    drop(tenth_store);
    println!("\n| `kv` peak memory | {} rows | {n} rows |", n / 10);
    println!("|---|---|---|");
    let small_file = d("tenth.jsonl");
    let export = |db: &Path, out: &Path| {
        peak_kib(&[
            "--url",
            &sqlite_url(db),
            "export",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let e_small = export(&tenth, &small_file);
    let e_large = export(&src, &d("big.jsonl"));
    let import =
        |f: &Path, db: &Path| peak_kib(&["--url", &sqlite_url(db), "import", f.to_str().unwrap()]);
    let i_small = import(&small_file, &d("mem-small.db"));
    let i_large = import(&d("big.jsonl"), &d("mem-large.db"));
    let kib =
        |v: Option<u64>| v.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!("| export (SQLite) | {} | {} |", kib(e_small), kib(e_large));
    println!("| import (SQLite) | {} | {} |", kib(i_small), kib(i_large));
}

fn report(backend: &str, op: &str, kv: Vec<Duration>, raw: Vec<Duration>) {
    let (kv, raw) = (median(kv), median(raw));
    println!(
        "| {backend} | {op} | {} | {} | {:.2} |",
        ms(kv),
        ms(raw),
        kv.as_secs_f64() / raw.as_secs_f64()
    );
}
