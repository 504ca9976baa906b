//! `kv-test-app`: an app that embeds the ops command line
//! (`kv_runtime::cli`), as an app's own binary would: `kv-test-app kv
//! get siteConfig banner`. The store is `KV_URL`. Its tables have hooks,
//! so that the tests see writes from the shell go through them: a
//! `before_set` on `siteConfig` trims the message and refuses one that
//! says "refused". With `KV_TEST_CALLER=bob`, commands run as the user
//! `bob`, who has no role (to see `FORBIDDEN`).

#[allow(dead_code)] // the tests use tables the app does not
#[path = "../support/tables.rs"]
mod tables;

use std::process::ExitCode;

use kv_runtime::cli::{self, Cli};
use kv_runtime::hooks::HookError;
use kv_runtime::{Ctx, Store};
use tables::{Flag, SiteConfig};

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) != Some("kv") {
        eprintln!("usage: kv-test-app kv COMMAND ...");
        return ExitCode::from(2);
    }
    // "kv-test-app kv" is the program clap shows in its messages.
    args.drain(..2);
    args.insert(0, "kv-test-app kv".into());
    let json = args.iter().any(|a| a == "--json");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime can be built");
    runtime.block_on(async {
        let url = std::env::var("KV_URL").unwrap_or_else(|_| "sqlite://kv-test-app.db".into());
        let store = match Store::open(&url).await {
            Ok(store) => store,
            Err(e) => return cli::fail(e.into(), json),
        };
        let site = store.table::<SiteConfig>();
        site.before_set("trim", |mut change| async move {
            change.value.message = change.value.message.trim().to_owned();
            if change.value.message.contains("refused") {
                return Err(HookError::new("this message is refused by the app"));
            }
            Ok(change.value)
        });
        let mut cli = Cli::new(store).table::<SiteConfig>().table::<Flag>();
        if let Ok(user) = std::env::var("KV_TEST_CALLER") {
            cli = cli.caller(Ctx::user(user));
        }
        ExitCode::from(cli.run_from(args).await)
    })
}
