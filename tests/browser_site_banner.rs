//! The site-banner demo in a real headless Chromium, driven over WebDriver
//! (chromedriver on loopback): an admin saves, clears and restores the
//! banner while a signed-out window follows it live without reloading, a
//! stale admin window gets the conflict message, and the history panel
//! lists exactly the committed changes, with a revert button that is
//! refused from a stale editor and writes the old banner back otherwise.
//!
//! Needs `chromium` and `chromedriver` (`$CHROME`, `$CHROMEDRIVER`, or on
//! the PATH; scripts/test.sh installs them). Without them the test prints a
//! loud skip line and passes, except in CI (`CI` set), where it fails.
//!
//! `KV_UPDATE_SCREENSHOT=1` also writes the screenshot to
//! `docs/site-banner.png` (it always goes to the target directory).

#[path = "../examples/site_banner/app.rs"]
mod app;
mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::{SiteBanner, SiteBannerKey};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use kv_runtime::{web, Ctx, HistoryOp, PageRequest, Store, Table};
use serde_json::{json, Value};
use support::skip::{in_ci, loud};
use support::tempdir::TempDir;

/// Finds a program: the environment variable, else the candidates on the
/// PATH or as absolute paths.
fn find(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    for candidate in candidates {
        let path = Path::new(candidate);
        if path.is_absolute() {
            if path.is_file() {
                return Some(path.to_owned());
            }
            continue;
        }
        let dirs = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&dirs) {
            let full = dir.join(candidate);
            if full.is_file() {
                return Some(full);
            }
        }
    }
    None
}

/// The browser and its driver, or `None` (after saying so) when the test
/// should skip. Panics in CI, where a skip would hide missing coverage.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chrome = find(
        "CHROME",
        &["/usr/bin/chromium", "chromium", "chromium-browser"],
    );
    let driver = find("CHROMEDRIVER", &["chromedriver", "/usr/bin/chromedriver"]);
    match (chrome, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing = [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" and ");
            if in_ci() {
                panic!(
                    "{missing} not found, and CI is set: the browser test must run in CI. \
                     Run scripts/test.sh (it installs chromium and chromium-driver), or set \
                     CHROME and CHROMEDRIVER."
                );
            }
            loud(&format!(
                "*** SKIPPED: browser test ({missing} not found). Run scripts/test.sh, which \
                 installs chromium and chromium-driver, or set CHROME and CHROMEDRIVER. ***"
            ));
            None
        }
    }
}

fn free_port() -> u16 {
    StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// chromedriver on a loopback port, killed on drop.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(path: &Path) -> ChromeDriver {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let driver = ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    /// A new browser session with a fresh profile (its own cookies).
    async fn session(
        &self,
        chrome: &Path,
        profile: &Path,
    ) -> Result<Client, fantoccini::error::NewSessionError> {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--window-size=1000,760",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` (a JS expression's body returning a value) until it
/// returns `true`, for at most 15 s.
async fn wait_until(browser: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let result = browser.execute(script, vec![]).await;
        if let Ok(Value::Bool(true)) = result {
            return;
        }
        if Instant::now() > deadline {
            let banner = browser
                .execute(
                    "const b = document.getElementById('site-banner'); \
                     const s = document.getElementById('status'); \
                     return [location.href, b && b.hidden, b && b.textContent, s && s.textContent];",
                    vec![],
                )
                .await;
            panic!("timed out waiting for: {what} (last answer {result:?}; page {banner:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn banner_shows(browser: &Client, what: &str, text: &str) {
    let script = format!(
        "const b = document.getElementById('site-banner'); \
         return !b.hidden && b.textContent === {};",
        json!(text)
    );
    wait_until(browser, what, &script).await;
}

async fn banner_hidden(browser: &Client, what: &str) {
    wait_until(
        browser,
        what,
        "return document.getElementById('site-banner').hidden === true;",
    )
    .await;
}

async fn status_is(browser: &Client, what: &str, prefix: &str) {
    let script = format!(
        "return document.getElementById('status').textContent.startsWith({});",
        json!(prefix)
    );
    wait_until(browser, what, &script).await;
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn type_message(browser: &Client, text: &str) {
    let field = browser
        .find(Locator::Css("#message"))
        .await
        .expect("the message field");
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn sign_in(browser: &Client, base: &str, name: &str) {
    browser
        .goto(&format!("{base}/admin"))
        .await
        .expect("open /admin");
    let field = browser
        .find(Locator::Css("#name"))
        .await
        .expect("the sign-in form");
    field.send_keys(name).await.expect("type the name");
    click(browser, "#sign-in-button").await;
    wait_until(
        browser,
        "the admin panel after signing in",
        "return !!document.getElementById('banner-form');",
    )
    .await;
}

/// The scenario; the sessions are closed by the caller whatever happens.
async fn scenario(
    base: String,
    store: Store,
    admin: Client,
    visitor: Client,
    stale: Client,
) -> Vec<u8> {
    let table = store.table::<SiteBanner>();

    // A signed-out visitor: no banner yet, no admin controls.
    visitor
        .goto(&format!("{base}/admin"))
        .await
        .expect("open /admin");
    let controls = visitor
        .find_all(Locator::Css("#save, #clear, #restore, #banner-form"))
        .await
        .expect("query");
    assert!(
        controls.is_empty(),
        "a signed-out visitor sees admin controls"
    );
    visitor.goto(&format!("{base}/")).await.expect("open /");
    wait_until(
        &visitor,
        "the visitor's live stream",
        "return document.body.dataset.live === 'true';",
    )
    .await;
    banner_hidden(&visitor, "no banner at first").await;
    // The page runs under its Content-Security-Policy: its own script
    // and stylesheet load, an injected inline script does not run.
    let csp = visitor
        .execute(
            "const s = document.createElement('script'); \
             s.textContent = 'window.kvInline = true;'; \
             document.body.appendChild(s); \
             return [window.kvInline === undefined, document.styleSheets.length === 1 \
               && document.styleSheets[0].cssRules.length > 0];",
            vec![],
        )
        .await
        .expect("try an inline script");
    assert_eq!(
        csp,
        json!([true, true]),
        "[inline script blocked, stylesheet loaded]"
    );
    // Anything that reloads the page would drop this marker.
    visitor
        .execute("window.kvNoReload = 'still here'; return true;", vec![])
        .await
        .expect("mark the page");

    // The admin saves a banner; the visitor's page shows it, live.
    sign_in(&admin, &base, "ada").await;
    type_message(&admin, "Maintenance tonight at 22:00 UTC").await;
    click(&admin, "#save").await;
    status_is(&admin, "saved", "Saved.").await;
    banner_shows(
        &visitor,
        "the saved banner",
        "Maintenance tonight at 22:00 UTC",
    )
    .await;
    banner_shows(
        &admin,
        "the admin's own banner",
        "Maintenance tonight at 22:00 UTC",
    )
    .await;

    // Clear hides it; restore brings it back.
    click(&admin, "#clear").await;
    status_is(&admin, "cleared", "Cleared.").await;
    banner_hidden(&visitor, "the cleared banner").await;
    assert_eq!(
        table.get(SiteBannerKey::Banner).await.expect("read"),
        None,
        "clear soft-deletes the row"
    );
    click(&admin, "#restore").await;
    status_is(&admin, "restored", "Restored.").await;
    banner_shows(
        &visitor,
        "the restored banner",
        "Maintenance tonight at 22:00 UTC",
    )
    .await;

    // A second admin loads the panel, then the first one saves again: the
    // second one's page is now stale.
    sign_in(&stale, &base, "grace").await;
    type_message(&admin, "Back online at 23:00 UTC").await;
    click(&admin, "#save").await;
    status_is(&admin, "saved again", "Saved.").await;
    banner_shows(&visitor, "the second banner", "Back online at 23:00 UTC").await;
    banner_shows(
        &stale,
        "the stale window's banner",
        "Back online at 23:00 UTC",
    )
    .await;

    type_message(&stale, "A stale edit").await;
    click(&stale, "#save").await;
    wait_until(
        &stale,
        "the conflict message",
        "const c = document.getElementById('conflict'); \
         return !c.hidden && c.textContent.includes('Someone else changed the banner') \
           && document.getElementById('conflict-current').textContent === 'Back online at 23:00 UTC';",
    )
    .await;
    let row = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("a banner");
    assert_eq!(
        row.value.message, "Back online at 23:00 UTC",
        "the stale save was refused"
    );
    assert_eq!(row.updated_by.as_deref(), Some("ada"));
    banner_shows(
        &visitor,
        "no change from the refused save",
        "Back online at 23:00 UTC",
    )
    .await;
    let screenshot = stale.screenshot().await.expect("screenshot");

    // Loading the current text makes the next save go through.
    click(&stale, "#load-current").await;
    wait_until(
        &stale,
        "the current text in the editor",
        "return document.getElementById('message').value === 'Back online at 23:00 UTC';",
    )
    .await;
    type_message(&stale, "Back online at 23:30 UTC").await;
    click(&stale, "#save").await;
    status_is(&stale, "the retried save", "Saved.").await;
    banner_shows(&visitor, "the retried save", "Back online at 23:30 UTC").await;

    // The first admin clears the banner; before they save a new one,
    // someone restores it. Their save (based on "no banner") is a
    // conflict, not a silent overwrite of the restored banner.
    click(&admin, "#clear").await;
    status_is(&admin, "cleared again", "Cleared.").await;
    table
        .restore(
            &Ctx::user("grace").with_role("admin"),
            SiteBannerKey::Banner,
        )
        .await
        .expect("restore behind the first admin's back");
    type_message(&admin, "A save racing the restore").await;
    click(&admin, "#save").await;
    wait_until(
        &admin,
        "the conflict message after clear and restore",
        "const c = document.getElementById('conflict'); \
         return !c.hidden && document.getElementById('conflict-current').textContent \
           === 'Back online at 23:30 UTC';",
    )
    .await;
    let row = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("the restored banner");
    assert_eq!(
        row.value.message, "Back online at 23:30 UTC",
        "the save based on no banner did not overwrite the restored one"
    );

    // The visitor's page was never reloaded, and a direct PUT from it is 403.
    let marker = visitor
        .execute("return window.kvNoReload || null;", vec![])
        .await
        .expect("read the marker");
    assert_eq!(marker, json!("still here"), "the visitor's page reloaded");
    let answer = visitor
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch('/api/kv/site/banner', { method: 'PUT', \
               headers: { 'Content-Type': 'application/json' }, \
               body: JSON.stringify({ value: { active: true, message: 'defaced' } }) }) \
             .then(async r => done([r.status, (await r.json()).code])) \
             .catch(e => done(String(e)));",
            vec![],
        )
        .await
        .expect("fetch");
    assert_eq!(answer, json!([403, "FORBIDDEN"]));
    let row = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("a banner");
    assert_eq!(row.value.message, "Back online at 23:30 UTC");
    assert_eq!(row.updated_by.as_deref(), Some("grace"));

    // Every page shows the banner; signing out hides the controls.
    for page in ["/about", "/admin"] {
        visitor
            .goto(&format!("{base}{page}"))
            .await
            .expect("open page");
        banner_shows(&visitor, page, "Back online at 23:30 UTC").await;
    }

    history_and_revert(&store, &stale, &visitor).await;

    click(&admin, "#sign-out").await;
    admin
        .goto(&format!("{base}/admin"))
        .await
        .expect("open /admin");
    let controls = admin
        .find_all(Locator::Css("#banner-form"))
        .await
        .expect("query");
    assert!(controls.is_empty(), "signed out, the controls are gone");
    screenshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banner_follows_admin_changes_live_in_a_real_browser() {
    let Some((chrome, chromedriver)) = browser() else {
        return;
    };
    let dir = TempDir::new("browser");
    let url = format!("sqlite://{}", dir.join("site-banner.db").display());
    let store = Store::open(&url).await.expect("SQLite store");
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    // The demo's server, without its SIGTERM/Ctrl-C handler (the test
    // aborts it).
    let server = tokio::spawn(
        web::Server::new(listener, app::app(store.table()))
            .with_graceful_shutdown(std::future::pending())
            .serve(),
    );

    let driver = ChromeDriver::start(&chromedriver);
    let mut sessions: Vec<Client> = Vec::new();
    for name in ["admin", "visitor", "stale"] {
        match driver
            .session(&chrome, &dir.join(&format!("profile-{name}")))
            .await
        {
            Ok(session) => sessions.push(session),
            Err(e) => {
                // Close the browsers already started before failing, so
                // no headless Chromium outlives the test.
                for session in sessions {
                    let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
                }
                panic!("cannot open the {name} browser session: {e}");
            }
        }
    }
    let run = tokio::spawn(tokio::time::timeout(
        Duration::from_secs(240),
        scenario(
            base,
            store,
            sessions[0].clone(),
            sessions[1].clone(),
            sessions[2].clone(),
        ),
    ));
    let outcome = run.await;
    for session in sessions {
        let _ = tokio::time::timeout(Duration::from_secs(10), session.close()).await;
    }
    drop(driver);
    server.abort();
    let screenshot = match outcome {
        Ok(Ok(png)) => png,
        Ok(Err(_)) => panic!("the browser scenario took longer than 240 s"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the browser scenario was cancelled: {e}"),
    };
    assert!(screenshot.starts_with(b"\x89PNG"), "a PNG screenshot");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("site-banner.png");
    std::fs::write(&out, &screenshot).expect("write the screenshot");
    if std::env::var_os("KV_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/site-banner.png");
        std::fs::write(&docs, &screenshot).expect("write docs/site-banner.png");
    }
}

/// What the admin page's history panel shows, newest first: per change its
/// text, who made it, whether it has a revert button, and its version.
const HISTORY_PANEL: &str = "return Array.from(document.querySelectorAll('#history li')).map(li => \
     [li.querySelector('.what').textContent, li.querySelector('.meta').textContent.split(' · ')[0], \
      !!li.querySelector('button.revert'), Number(li.dataset.version)]);";

/// Waits until `browser`'s history panel shows `expected` (see
/// [`HISTORY_PANEL`]).
async fn history_panel_is(browser: &Client, what: &str, expected: &Value) {
    let script = format!(
        "const shown = (() => {{ {HISTORY_PANEL} }})(); return JSON.stringify(shown) === {};",
        json!(expected.to_string())
    );
    wait_until(browser, what, &script).await;
}

/// The admin page's history panel lists exactly the committed changes (not
/// the saves refused as conflicts), and its revert button writes an old
/// banner back: refused as a conflict from a window whose editor is stale,
/// accepted once it has loaded the current banner.
async fn history_and_revert(store: &Store, stale: &Client, visitor: &Client) {
    let table = store.table::<SiteBanner>();
    let history = |table: Table<SiteBanner>| async move {
        let page = table
            .history(
                &Ctx::user("grace").with_role("admin"),
                SiteBannerKey::Banner,
                PageRequest::first(100),
            )
            .await
            .expect("the banner's history");
        assert!(page.is_done && page.unreadable.is_empty());
        page.entries
    };

    // Seven committed changes; the two saves refused as conflicts left no
    // record.
    let entries = history(table.clone()).await;
    let summary: Vec<(HistoryOp, &str, Option<&str>)> = entries
        .iter()
        .map(|e| (e.op, e.value.message.as_str(), e.updated_by.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                HistoryOp::Restore,
                "Back online at 23:30 UTC",
                Some("grace")
            ),
            (HistoryOp::Rm, "Back online at 23:30 UTC", Some("ada")),
            (HistoryOp::Set, "Back online at 23:30 UTC", Some("grace")),
            (HistoryOp::Set, "Back online at 23:00 UTC", Some("ada")),
            (
                HistoryOp::Restore,
                "Maintenance tonight at 22:00 UTC",
                Some("ada")
            ),
            (
                HistoryOp::Rm,
                "Maintenance tonight at 22:00 UTC",
                Some("ada")
            ),
            (
                HistoryOp::Set,
                "Maintenance tonight at 22:00 UTC",
                Some("ada")
            ),
        ]
    );
    let v: Vec<i64> = entries.iter().map(|e| e.version).collect();
    let live = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("a banner");
    assert_eq!(live.updated_at, v[0], "the newest record is the live row's");

    // The stale window's panel follows the banner live: every change but
    // the current one has a revert button.
    let panel = json!([
        ["restored “Back online at 23:30 UTC”", "grace", false, v[0]],
        ["cleared", "ada", true, v[1]],
        ["“Back online at 23:30 UTC”", "grace", true, v[2]],
        ["“Back online at 23:00 UTC”", "ada", true, v[3]],
        [
            "restored “Maintenance tonight at 22:00 UTC”",
            "ada",
            true,
            v[4]
        ],
        ["cleared", "ada", true, v[5]],
        ["“Maintenance tonight at 22:00 UTC”", "ada", true, v[6]],
    ]);
    history_panel_is(stale, "the history panel", &panel).await;

    // Its editor is still based on its own save, which the banner has
    // moved on from since: reverting from it is a conflict.
    let first_banner = format!("#history li[data-version=\"{}\"] button.revert", v[6]);
    click(stale, &first_banner).await;
    wait_until(
        stale,
        "the conflict message of a stale revert",
        "const c = document.getElementById('conflict'); \
         return !c.hidden && document.getElementById('conflict-current').textContent \
           === 'Back online at 23:30 UTC';",
    )
    .await;
    assert_eq!(
        history(table.clone()).await.len(),
        7,
        "the refused revert left no record"
    );
    let row = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("a banner");
    assert_eq!(row, live, "the refused revert changed nothing");

    // Based on the current banner, the revert goes through: the first
    // banner is back, for the visitor too, and is the newest change.
    click(stale, "#load-current").await;
    wait_until(
        stale,
        "the current text in the editor before reverting",
        "return document.getElementById('message').value === 'Back online at 23:30 UTC';",
    )
    .await;
    click(stale, &first_banner).await;
    status_is(stale, "the revert", "Reverted to the banner of").await;
    banner_shows(
        visitor,
        "the reverted banner",
        "Maintenance tonight at 22:00 UTC",
    )
    .await;
    wait_until(
        stale,
        "the reverted text in the editor",
        "return document.getElementById('message').value === 'Maintenance tonight at 22:00 UTC';",
    )
    .await;
    let row = table
        .get(SiteBannerKey::Banner)
        .await
        .expect("read")
        .expect("the reverted banner");
    assert_eq!(row.value.message, "Maintenance tonight at 22:00 UTC");
    assert_eq!(row.updated_by.as_deref(), Some("grace"));
    let entries = history(table.clone()).await;
    assert_eq!(entries.len(), 8);
    assert_eq!(
        (entries[0].op, entries[0].version, &entries[0].value),
        (HistoryOp::Set, row.updated_at, &row.value),
        "the revert is recorded as a set of the old value"
    );
    let mut panel = panel.as_array().expect("a list").clone();
    panel[0][2] = json!(true);
    panel.insert(
        0,
        json!([
            "“Maintenance tonight at 22:00 UTC”",
            "grace",
            false,
            row.updated_at
        ]),
    );
    history_panel_is(
        stale,
        "the history panel after the revert",
        &Value::from(panel),
    )
    .await;
}
