//! The ops command line an app embeds (`kv_runtime::cli`), run as the
//! child process `kv-test-app kv ...` (tests/app/), on SQLite and on
//! PostgreSQL: every command, its output, its exit codes, and that writes
//! from the shell go through the app's table (validation, hooks,
//! `updated_by`).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{pg, sqlite, tempdir::TempDir};

const APP: &str = env!("CARGO_BIN_EXE_kv-test-app");

/// `kv-test-app kv ARGS...` on the store `url`, as the OS user `alice`.
fn kv(url: &str, args: &[&str]) -> Output {
    kv_with(url, args, None, &[])
}

fn kv_with(url: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(APP);
    command
        .arg("kv")
        .args(args)
        .env("KV_URL", url)
        .env("USER", "alice")
        .env_remove("KV_TEST_CALLER")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("kv-test-app starts");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(text.as_bytes())
            .expect("stdin takes the value");
    }
    child.wait_with_output().expect("kv-test-app runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
fn exits(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// The JSON lines of stdout.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is JSON: {e}")))
        .collect()
}

/// Every command of the typed CLI on the store `url`.
fn every_command(url: &str) {
    // tables
    let out = kv(url, &["tables"]);
    exits(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("TABLE"), "{text}");
    assert!(
        text.contains("siteConfig") && text.contains("flags"),
        "{text}"
    );

    // set, through the hook (trimmed), recorded as cli:alice
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":true,"message":"  Back at 5pm  "}"#,
            "--json",
        ],
    );
    exits(&out, 0);
    let row = &json_lines(&out)[0];
    assert_eq!(
        row["value"]["message"], "Back at 5pm",
        "the hook trimmed it"
    );
    assert_eq!(row["updated_by"], "cli:alice");
    let version = row["updated_at"].as_i64().expect("a version");

    // get: human table and JSON
    let out = kv(url, &["get", "siteConfig", "banner"]);
    exits(&out, 0);
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("KEY") && header.contains("VERSION") && header.contains("AGE"));
    assert!(
        header.contains("BY") && header.ends_with("VALUE"),
        "{header}"
    );
    let line = lines.next().unwrap();
    assert!(
        line.starts_with("banner ") && line.contains(&version.to_string()),
        "{line}"
    );
    assert!(
        line.contains("cli:alice") && line.contains("Back at 5pm"),
        "{line}"
    );
    // The columns line up: VALUE starts where the value does.
    assert_eq!(header.find("VALUE"), line.find('{'), "{text}");

    // set from stdin, with the current version
    let out = kv_with(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            "-",
            "--expect",
            &version.to_string(),
            "--json",
        ],
        Some(r#"{"active":true,"message":"Back at 6pm"}"#),
        &[],
    );
    exits(&out, 0);
    let newer = json_lines(&out)[0]["updated_at"].as_i64().unwrap();
    assert!(newer > version);

    // a stale --expect is CONFLICT (4), naming the current version
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":false,"message":"x"}"#,
            "--expect",
            &version.to_string(),
        ],
    );
    exits(&out, 4);
    assert!(stderr(&out).contains("error[CONFLICT]"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&newer.to_string()),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("what to do:"), "{}", stderr(&out));
    // --if-absent with a live row too, and in JSON
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":false,"message":"x"}"#,
            "--if-absent",
            "--json",
        ],
    );
    exits(&out, 4);
    let err: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(err["error"]["code"], "CONFLICT");
    assert_eq!(err["error"]["exit"], 4);

    // invalid value: VALIDATION_FAILED (6) naming the field; nothing written
    let long = "x".repeat(41);
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            &format!(r#"{{"active":true,"message":"{long}"}}"#),
        ],
    );
    exits(&out, 6);
    assert!(
        stderr(&out).contains("VALIDATION_FAILED") && stderr(&out).contains("message"),
        "{}",
        stderr(&out)
    );
    // malformed JSON: INVALID_JSON with line and column
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":true,"message":}"#,
        ],
    );
    exits(&out, 6);
    assert!(
        stderr(&out).contains("INVALID_JSON") && stderr(&out).contains("line 1, column"),
        "{}",
        stderr(&out)
    );
    // a field of the wrong type, named
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":"yes","message":"m"}"#,
        ],
    );
    exits(&out, 6);
    assert!(stderr(&out).contains("`active`"), "{}", stderr(&out));
    // a key the table does not declare
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "motd",
            r#"{"active":true,"message":"m"}"#,
        ],
    );
    exits(&out, 6);
    assert!(
        stderr(&out).contains("INVALID_KEY") && stderr(&out).contains("banner, maintenance"),
        "{}",
        stderr(&out)
    );
    // a hook's refusal
    let out = kv(
        url,
        &[
            "set",
            "siteConfig",
            "banner",
            r#"{"active":true,"message":"refused"}"#,
        ],
    );
    exits(&out, 6);
    assert!(stderr(&out).contains("REJECTED"), "{}", stderr(&out));
    let out = kv(url, &["get", "siteConfig", "banner", "--json"]);
    assert_eq!(
        json_lines(&out)[0]["value"]["message"],
        "Back at 6pm",
        "nothing was written"
    );

    // a caller without the role: FORBIDDEN (5)
    let out = kv_with(
        url,
        &["set", "flags", "beta", r#"{"on":true}"#],
        None,
        &[("KV_TEST_CALLER", "bob")],
    );
    exits(&out, 5);
    assert!(stderr(&out).contains("FORBIDDEN"), "{}", stderr(&out));

    // list, rm, list --deleted, restore
    exits(&kv(url, &["set", "flags", "beta", r#"{"on":true}"#]), 0);
    exits(
        &kv(
            url,
            &[
                "set",
                "siteConfig",
                "maintenance",
                r#"{"active":false,"message":"m"}"#,
            ],
        ),
        0,
    );
    let out = kv(url, &["list", "siteConfig", "--json"]);
    exits(&out, 0);
    let keys: Vec<String> = json_lines(&out)
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["banner", "maintenance"]);
    let out = kv(url, &["rm", "siteConfig", "banner"]);
    exits(&out, 0);
    assert!(stdout(&out).contains("deleted"), "{}", stdout(&out));
    exits(&kv(url, &["rm", "siteConfig", "banner"]), 3);
    exits(&kv(url, &["get", "siteConfig", "banner"]), 3);
    let out = kv(url, &["list", "siteConfig"]);
    assert!(!stdout(&out).contains("banner"), "{}", stdout(&out));
    let out = kv(url, &["list", "siteConfig", "--deleted"]);
    exits(&out, 0);
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("DELETED"), "{text}");
    let banner_line = text
        .lines()
        .find(|l| l.starts_with("banner"))
        .expect("the deleted row is listed");
    assert!(banner_line.contains("ago"), "{text}");
    let out = kv(url, &["restore", "siteConfig", "banner", "--json"]);
    exits(&out, 0);
    let back = &json_lines(&out)[0];
    assert_eq!(back["value"]["message"], "Back at 6pm");
    assert_eq!(back["deleted_at"], serde_json::Value::Null);
    // restore on a table without soft delete is a usage error
    exits(&kv(url, &["restore", "flags", "beta"]), 2);
    // hard delete, then NOT_FOUND
    exits(&kv(url, &["rm", "flags", "beta"]), 0);
    exits(&kv(url, &["get", "flags", "beta"]), 3);

    // purge: nothing old enough
    let out = kv(
        url,
        &["purge", "siteConfig", "--older-than", "30d", "--json"],
    );
    exits(&out, 0);
    assert_eq!(json_lines(&out)[0]["purged"], 0);

    // usage errors: 2
    exits(&kv(url, &["get", "nosuch", "banner"]), 2);
    exits(&kv(url, &["get", "siteConfig"]), 2);
    exits(&kv(url, &["purge", "siteConfig", "--older-than", "30"]), 2);
    exits(
        &kv(
            url,
            &[
                "set",
                "siteConfig",
                "banner",
                "{}",
                "--expect",
                "1",
                "--if-absent",
            ],
        ),
        2,
    );
    let out = kv(url, &["--help"]);
    exits(&out, 0);
    assert!(stdout(&out).contains("watch"), "{}", stdout(&out));

    // watch: the current state first
    let mut child = Command::new(APP)
        .args(["kv", "watch", "siteConfig", "banner", "--json"])
        .env("KV_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("watch starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["value"]["message"], "Back at 6pm");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn every_command_on_sqlite() {
    let dir = TempDir::new("cli-app");
    let url = sqlite::url(&dir.join("app.db"));
    every_command(&url);
}

#[test]
fn every_command_on_postgres() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let url = runtime().block_on(pg::fresh_database(&server));
    every_command(&url);
}

/// What the store holds reaches an operator's terminal escaped: a web
/// user whose name carries a terminal escape (an OSC title change ended by
/// BEL) and a right-to-left override, and a value with DEL and a C1
/// control (which JSON leaves as they are), are printed by `get` and
/// `list` with those characters written as `\u{..}`, never raw; the JSON
/// output keeps the exact text for scripts.
#[test]
fn hostile_text_in_the_store_reaches_the_terminal_escaped() {
    use kv_runtime::{Ctx, Store};
    use support::tables::{SiteConfig, SiteConfigKey};

    let dir = TempDir::new("cli-hostile");
    let url = sqlite::url(&dir.join("app.db"));
    let name = "mallory\u{1b}]0;owned\u{7}\u{202e}";
    let message = "Back\u{7f} at\u{9b}31m 5";
    runtime().block_on(async {
        let store = Store::open(&url).await.unwrap();
        let value = SiteConfig {
            active: true,
            message: message.to_owned(),
        };
        let writer = Ctx::user(name).with_role("admin");
        store
            .table::<SiteConfig>()
            .set(&writer, SiteConfigKey::Banner, value)
            .await
            .unwrap();
    });
    let raw = ['\u{1b}', '\u{7}', '\u{7f}', '\u{9b}', '\u{202e}'];
    for args in [
        &["get", "siteConfig", "banner"][..],
        &["list", "siteConfig"][..],
    ] {
        let out = kv(&url, args);
        exits(&out, 0);
        let text = stdout(&out);
        assert!(
            !text.contains(raw),
            "{args:?} printed a raw control: {text:?}"
        );
        assert!(
            text.contains("mallory\\u{1b}]0;owned\\u{7}\\u{202e}"),
            "{args:?}: {text:?}"
        );
        assert!(
            text.contains("Back\\u{7f} at\\u{9b}31m 5"),
            "{args:?}: {text:?}"
        );
    }
    let out = kv(&url, &["get", "siteConfig", "banner", "--json"]);
    exits(&out, 0);
    let row = &json_lines(&out)[0];
    assert_eq!(row["updated_by"], name);
    assert_eq!(row["value"]["message"], message);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `watch` prints a change another process makes (PostgreSQL: its change
/// feed crosses processes; SQLite's reports only its own process's writes).
#[test]
fn watch_prints_a_change_made_by_another_process() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let url = runtime().block_on(pg::fresh_database(&server));
    exits(
        &kv(
            url.as_str(),
            &[
                "set",
                "siteConfig",
                "banner",
                r#"{"active":true,"message":"one"}"#,
            ],
        ),
        0,
    );
    let mut child = Command::new(APP)
        .args(["kv", "watch", "siteConfig"])
        .env("KV_URL", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("watch starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(support::wait::BOUND)
        .expect("the current state");
    assert!(
        first.starts_with("banner") && first.contains("one"),
        "{first}"
    );
    // Another process writes: the set, then a delete.
    exits(
        &kv(
            &url,
            &[
                "set",
                "siteConfig",
                "banner",
                r#"{"active":true,"message":"two"}"#,
            ],
        ),
        0,
    );
    let second = rx
        .recv_timeout(support::wait::BOUND)
        .expect("the change arrives");
    assert!(
        second.starts_with("banner") && second.contains("two") && second.contains("cli:alice"),
        "{second}"
    );
    exits(&kv(&url, &["rm", "siteConfig", "banner"]), 0);
    let third = rx
        .recv_timeout(support::wait::BOUND)
        .expect("the delete arrives");
    assert!(third.contains("no live row"), "{third}");
    child.kill().unwrap();
    let _ = child.wait();
    let _ = Duration::ZERO;
}
