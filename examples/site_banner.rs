//! The site-banner demo: every page shows a banner read from kv without
//! login and updated live; an admin panel at `/admin` saves, clears and
//! restores it.
//!
//! ```text
//! cargo run --example site_banner                      # http://127.0.0.1:3000, sqlite://site-banner.db
//! PORT=8080 cargo run --example site_banner            # another port (or pass it: -- 8080)
//! cargo run --example site_banner -- postgres://user@127.0.0.1:5432/db   # or KV_URL=...
//! ```

#[path = "site_banner/app.rs"]
mod app;

use kv_runtime::{web, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let mut url = std::env::var("KV_URL").unwrap_or_else(|_| "sqlite://site-banner.db".to_owned());
    for arg in std::env::args().skip(1) {
        match arg.parse::<u16>() {
            Ok(p) => port = p,
            Err(_) if arg.contains(':') => url = arg,
            Err(_) => {
                return Err(format!(
                    "unexpected argument {arg:?}: pass a port number and/or a store URL \
                     (sqlite://file.db, postgres://..., memory:)"
                )
                .into())
            }
        }
    }
    let store = Store::open(&url).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!(
        "site banner demo on http://{addr}/ (store: {})",
        redact(&url)
    );
    println!("sign in at http://{addr}/admin to change the banner; Ctrl-C stops");
    // Header, idle and body timeouts, a connection cap, the client address
    // for rate limits; SIGTERM or Ctrl-C shuts down gracefully.
    web::serve(listener, app::app(store.table())).await?;
    Ok(())
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
