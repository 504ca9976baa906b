//! The `kv` binary, run as a child process, on SQLite and PostgreSQL:
//! export and import give back identical rows, copy round-trips between
//! backends, an export is one moment's snapshot while another process
//! writes, a corrupt file changes nothing, and doctor checks a store.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use kv_runtime::{Ctx, Kv, Store};
use serde::{Deserialize, Serialize};
use support::*;

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "siteConfig", keys = [banner, maintenance, motd], write_role = admin, soft_delete)]
struct SiteConfig {
    active: bool,
    message: String,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "flags", write_role = admin)]
struct Flag {
    on: bool,
}

/// A table with history, for the note on what transfers leave behind.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "banners", keys = [home], write_role = admin, history)]
struct Banner {
    message: String,
}

/// A log, for the same note.
#[derive(kv_runtime::Log, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[log(table = "chat", write_role = admin)]
struct Line {
    text: String,
}

/// Sequence rows of the snapshot test: write `i` stores `seq = i`.
#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "seqA")]
struct SeqA {
    seq: u64,
}

#[derive(Kv, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kv(table = "seqB")]
struct SeqB {
    seq: u64,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn admin() -> Ctx {
    Ctx::user("ada").with_role("admin")
}

/// Live rows, a soft-deleted one, a hard-deleted one (a version floor),
/// several writers, text that needs escaping.
async fn seed(url: &str) -> Store {
    let store = Store::open(url).await.unwrap();
    let site = store.table::<SiteConfig>();
    let value = |m: &str| SiteConfig {
        active: true,
        message: m.to_owned(),
    };
    site.set(
        &admin(),
        SiteConfigKey::Banner,
        value("Back at 5pm \u{e9}\"\\"),
    )
    .await
    .unwrap();
    site.set(
        &Ctx::internal().with_actor("cli:bob"),
        SiteConfigKey::Maintenance,
        value("tonight"),
    )
    .await
    .unwrap();
    site.set(&admin(), SiteConfigKey::Motd, value("hello"))
        .await
        .unwrap();
    assert!(site.rm(&admin(), SiteConfigKey::Motd).await.unwrap());
    let flags = store.table::<Flag>();
    for key in ["a", "b", "c/\u{1F600}"] {
        flags
            .set(&admin(), key.to_owned(), Flag { on: true })
            .await
            .unwrap();
    }
    assert!(flags.rm(&admin(), "b".to_owned()).await.unwrap());
    store
}

fn pg_url(rt: &tokio::runtime::Runtime) -> Option<String> {
    let server = pg_server()?;
    Some(rt.block_on(fresh_pg(&server)))
}

/// Export, import into an empty store: identical rows and floors. Again:
/// nothing changes. A row changed in the target is kept (CONFLICT) unless
/// `--force`.
fn export_then_import(src: &str, dst: &str) {
    let rt = runtime();
    let source = rt.block_on(seed(src));
    let dir = TempDir::new("export");
    let file = dir.join("backup.jsonl");
    let out = kv(&["--url", src, "export", "-o", file.to_str().unwrap()]);
    exits(&out, 0);
    assert!(
        text(&out.stdout).contains("exported 5 rows of 2 tables"),
        "{}",
        text(&out.stdout)
    );
    let lines: Vec<String> = read(&file).lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with(r#"{"kv_export":1,"#), "{}", lines[0]);
    assert!(lines.last().unwrap().starts_with(r#"{"kv_export_end""#));
    let out = kv(&["--url", dst, "import", file.to_str().unwrap()]);
    exits(&out, 0);
    let target = rt.block_on(Store::open(dst)).unwrap();
    let expected = rt.block_on(dump(&source));
    assert_eq!(rt.block_on(dump(&target)), expected);
    assert!(
        expected.iter().any(|t| t.3.is_some()),
        "a floor went across"
    );
    // Twice: nothing changes.
    let out = kv(&["--url", dst, "import", file.to_str().unwrap(), "--json"]);
    exits(&out, 0);
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["written"], 0, "{line}");
    }
    assert_eq!(rt.block_on(dump(&target)), expected);
    // A newer row in the target is kept, and the import says so.
    let newer = rt
        .block_on(target.table::<SiteConfig>().set(
            &admin(),
            SiteConfigKey::Banner,
            SiteConfig {
                active: false,
                message: "changed after the export".into(),
            },
        ))
        .unwrap();
    let out = kv(&["--url", dst, "import", file.to_str().unwrap()]);
    exits(&out, 4);
    let err = text(&out.stderr);
    assert!(
        err.contains("error[CONFLICT]") && err.contains("\"banner\"") && err.contains("--force"),
        "{err}"
    );
    let kept = rt
        .block_on(target.table::<SiteConfig>().get(SiteConfigKey::Banner))
        .unwrap()
        .unwrap();
    assert_eq!(kept.updated_at, newer.updated_at);
    // --force puts the file's row back.
    let out = kv(&["--url", dst, "import", file.to_str().unwrap(), "--force"]);
    exits(&out, 0);
    let rows = |d: Vec<Dumped>| -> Vec<Vec<Row>> { d.into_iter().map(|t| t.4).collect() };
    assert_eq!(rows(rt.block_on(dump(&target))), rows(expected));
}

#[test]
fn export_then_import_on_sqlite() {
    let dir = TempDir::new("sqlite");
    export_then_import(&dir.sqlite("a.db"), &dir.sqlite("b.db"));
}

#[test]
fn export_then_import_on_postgres() {
    let rt = runtime();
    let (Some(a), Some(b)) = (pg_url(&rt), pg_url(&rt)) else {
        return;
    };
    export_then_import(&a, &b);
}

/// SQLite to PostgreSQL to SQLite, exactly.
#[test]
fn copy_sqlite_to_postgres_to_sqlite_round_trips() {
    let rt = runtime();
    let Some(pg) = pg_url(&rt) else {
        return;
    };
    let dir = TempDir::new("copy");
    let (a, b) = (dir.sqlite("a.db"), dir.sqlite("b.db"));
    let source = rt.block_on(seed(&a));
    exits(&kv(&["copy", "--from", &a, "--to", &pg]), 0);
    exits(&kv(&["copy", "--from", &pg, "--to", &b]), 0);
    let expected = rt.block_on(dump(&source));
    let middle = rt.block_on(Store::open(&pg)).unwrap();
    assert_eq!(rt.block_on(dump(&middle)), expected);
    let back = rt.block_on(Store::open(&b)).unwrap();
    assert_eq!(rt.block_on(dump(&back)), expected);
    // Copying again changes nothing.
    let out = kv(&["copy", "--from", &a, "--to", &pg, "--json"]);
    exits(&out, 0);
    assert!(
        text(&out.stdout).contains(r#""written":0"#),
        "{}",
        text(&out.stdout)
    );
}

/// An export and a copy carry rows only: when the source also holds
/// history records or log entries, both say how many, per table and log,
/// on stderr (and still succeed); a transfer of tables without history
/// says nothing.
#[test]
fn export_and_copy_name_the_history_and_log_entries_they_leave_behind() {
    let rt = runtime();
    let dir = TempDir::new("left-out");
    let (src, dst) = (dir.sqlite("src.db"), dir.sqlite("dst.db"));
    let store = rt.block_on(seed(&src));
    let out = kv(&["--url", &src, "export"]);
    exits(&out, 0);
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );

    rt.block_on(async {
        let banners = store.table::<Banner>();
        for message in ["one", "two", "three"] {
            let value = Banner {
                message: message.to_owned(),
            };
            banners.set(&admin(), BannerKey::Home, value).await.unwrap();
        }
        let chat = store.log::<Line>();
        for text in ["hi", "there"] {
            let line = Line {
                text: text.to_owned(),
            };
            chat.append(&admin(), "lobby".to_owned(), line)
                .await
                .unwrap();
        }
    });
    // `kv tables` shows them, as text and as JSON.
    let out = kv(&["--url", &src, "tables"]);
    exits(&out, 0);
    let listing = text(&out.stdout);
    assert!(
        listing.starts_with("TABLE\tROWS\tDELETED\tVERSION_FLOOR\tHISTORY\n")
            && listing.contains("\nbanners\t1\t0\t-\t3\n")
            && listing.contains("\nflags\t2\t0\t")
            && listing.ends_with("\n\nLOG\tENTRIES\nchat\t2\n"),
        "{listing}"
    );
    let out = kv(&["--url", &src, "tables", "--json"]);
    exits(&out, 0);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let banners = lines.iter().find(|l| l["table"] == "banners").unwrap();
    assert_eq!(banners["history_records"], 3);
    let flags = lines.iter().find(|l| l["table"] == "flags").unwrap();
    assert_eq!(flags["history_records"], 0);
    assert_eq!(
        lines.last().unwrap(),
        &serde_json::json!({"log": "chat", "entries": 2})
    );

    let note = "note: the export carries rows and version floors only; the source also holds \
                3 history records (banners: 3) and 2 log entries (chat: 2), which are not in it";
    let out = kv(&["--url", &src, "export"]);
    exits(&out, 0);
    assert!(text(&out.stderr).contains(note), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#""table":"banners""#));

    // Only some tables: their history is named, the logs are not.
    let out = kv(&["--url", &src, "export", "banners"]);
    exits(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("3 history records (banners: 3), which"),
        "{err}"
    );
    assert!(!err.contains("log entries"), "{err}");
    let out = kv(&["--url", &src, "export", "flags"]);
    exits(&out, 0);
    assert!(
        !text(&out.stderr).contains("note:"),
        "{}",
        text(&out.stderr)
    );

    let out = kv(&["copy", "--from", &src, "--to", &dst]);
    exits(&out, 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("note: the copy carries rows and version floors only")
            && err.contains("3 history records (banners: 3) and 2 log entries (chat: 2)"),
        "{err}"
    );
}

/// An export taken while this process writes 1,000 times: every row is a
/// state that existed (its value and `updated_by` come from one write),
/// and all rows are as of one moment (the last ten writes, no gap).
fn consistent_snapshot(url: &str) {
    let rt = runtime();
    let store = rt.block_on(Store::open(url)).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (a, b, done) = (store.table::<SeqA>(), store.table::<SeqB>(), done.clone());
        rt.spawn(async move {
            for i in 1..=1000u64 {
                let ctx = Ctx::internal().with_actor(format!("w:{i}"));
                let key = format!("k{}", i % 10);
                if i.is_multiple_of(2) {
                    a.set(&ctx, key, SeqA { seq: i }).await.unwrap();
                } else {
                    b.set(&ctx, key, SeqB { seq: i }).await.unwrap();
                }
                done.store(i, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    while done.load(std::sync::atomic::Ordering::SeqCst) < 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = Command::new(KV)
        .args(["--url", url, "export", "seqA", "seqB"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let during = done.load(std::sync::atomic::Ordering::SeqCst);
    rt.block_on(writer).unwrap();
    exits(&out, 0);
    let mut seqs = Vec::new();
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("key").is_none() {
            continue;
        }
        let seq = v["value"]["seq"].as_u64().unwrap();
        assert_eq!(
            v["updated_by"],
            format!("w:{seq}"),
            "a state that existed: {line}"
        );
        assert_eq!(v["key"], format!("k{}", seq % 10));
        assert_eq!(
            v["table"],
            if seq.is_multiple_of(2) {
                "seqA"
            } else {
                "seqB"
            }
        );
        seqs.push(seq);
    }
    seqs.sort_unstable();
    let last = *seqs.last().unwrap();
    assert!(
        (100..1000).contains(&last),
        "taken while writing: {last} (writer at {during})"
    );
    let expected: Vec<u64> = (last - 9..=last).collect();
    assert_eq!(seqs, expected, "all rows as of one moment");
}

#[test]
fn export_while_another_process_writes_is_one_moment_on_sqlite() {
    let dir = TempDir::new("snapshot");
    consistent_snapshot(&dir.sqlite("kv.db"));
}

#[test]
fn export_while_another_process_writes_is_one_moment_on_postgres() {
    let rt = runtime();
    let Some(url) = pg_url(&rt) else {
        return;
    };
    drop(rt);
    consistent_snapshot(&url);
}

/// Each kind of damage: `BAD_FILE` (exit 6) naming the line, and the
/// store is left empty.
fn corrupt_files(dst: &str) {
    let rt = runtime();
    let dir = TempDir::new("corrupt");
    let src = dir.sqlite("src.db");
    rt.block_on(seed(&src));
    let good = dir.join("good.jsonl");
    exits(
        &kv(&["--url", &src, "export", "-o", good.to_str().unwrap()]),
        0,
    );
    let lines: Vec<String> = read(&good).lines().map(str::to_owned).collect();
    let n = lines.len();
    // Line 2 announces `flags` (2 rows), lines 3 and 4 are its rows.
    let mut cases: Vec<(&str, String, String)> = Vec::new();
    let join = |ls: &[String]| ls.join("\n") + "\n";
    cases.push((
        "truncated at a line",
        join(&lines[..n - 1]),
        format!("line {}", n - 1),
    ));
    let whole = join(&lines);
    let cut = whole.len() - lines[n - 1].len() - lines[n - 2].len() / 2 - 2;
    cases.push((
        "cut mid-line",
        whole[..cut].to_owned(),
        format!("line {}", n - 1),
    ));
    let mut garbage = lines.clone();
    garbage[3] = "{not json".to_owned();
    cases.push((
        "a line that does not parse",
        join(&garbage),
        "line 4".to_owned(),
    ));
    let mut unknown = lines.clone();
    unknown[2] = unknown[2].replace(r#""table":"flags""#, r#""table":"nope""#);
    cases.push((
        "a row of an unknown table",
        join(&unknown),
        "line 3".to_owned(),
    ));
    let mut duplicate = lines.clone();
    duplicate.insert(3, lines[2].clone());
    cases.push(("a duplicate key", join(&duplicate), "line 4".to_owned()));
    let mut count = lines.clone();
    count[1] = count[1].replace(r#""rows":2"#, r#""rows":1"#);
    cases.push((
        "a count that does not add up",
        join(&count),
        "line 4".to_owned(),
    ));
    cases.push(("an empty file", String::new(), "line 1".to_owned()));
    for (what, content, line) in cases {
        let file = dir.join("bad.jsonl");
        std::fs::write(&file, content).unwrap();
        let out = kv(&["--url", dst, "import", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(6), "{what}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("error[BAD_FILE]") && err.contains(&line),
            "{what}: {err}"
        );
        assert!(err.contains("nothing was imported"), "{what}: {err}");
        let store = rt.block_on(Store::open(dst)).unwrap();
        assert!(
            rt.block_on(store.backend().tables()).unwrap().is_empty(),
            "{what}: nothing written"
        );
    }
}

#[test]
fn a_corrupt_file_changes_nothing_on_sqlite() {
    let dir = TempDir::new("corrupt-dst");
    corrupt_files(&dir.sqlite("dst.db"));
}

#[test]
fn a_corrupt_file_changes_nothing_on_postgres() {
    let rt = runtime();
    let Some(url) = pg_url(&rt) else {
        return;
    };
    drop(rt);
    corrupt_files(&url);
}

fn doctor_and_tables(url: &str, backend_checks: &[&str]) {
    let rt = runtime();
    rt.block_on(seed(url));
    let out = kv(&["--url", url, "doctor"]);
    exits(&out, 0);
    let report = text(&out.stdout);
    for check in [
        "reachable",
        "change feed",
        "schema version",
        "rate limiter",
        "versions and floors",
    ]
    .iter()
    .chain(backend_checks)
    {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check}: {report}"
        );
    }
    let out = kv(&["--url", url, "tables", "--json"]);
    exits(&out, 0);
    let tables: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tables[0]["table"], "flags");
    assert_eq!(tables[1]["table"], "siteConfig");
    assert_eq!(
        (
            tables[1]["rows"].as_u64(),
            tables[1]["deleted_rows"].as_u64()
        ),
        (Some(2), Some(1))
    );
    // KV_URL stands in for --url.
    let out = Command::new(KV)
        .arg("tables")
        .env("KV_URL", url)
        .output()
        .unwrap();
    exits(&out, 0);
    // An unknown table is NOT_FOUND, a missing URL a usage error.
    exits(&kv(&["--url", url, "export", "nope"]), 3);
    exits(&kv(&["doctor"]), 2);
    exits(&kv(&["import"]), 2);
}

#[test]
fn doctor_and_tables_on_sqlite() {
    let dir = TempDir::new("doctor");
    doctor_and_tables(&dir.sqlite("kv.db"), &["integrity"]);
}

#[test]
fn doctor_and_tables_on_postgres() {
    let rt = runtime();
    let Some(url) = pg_url(&rt) else {
        return;
    };
    drop(rt);
    doctor_and_tables(&url, &["Verified"]);
}
