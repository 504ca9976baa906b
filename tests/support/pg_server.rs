//! Stopping and starting the test PostgreSQL server, for the tests that
//! check behaviour across a restart. `scripts/test.sh` exports where the
//! server lives (`KV_TEST_PG_CTL`, `KV_TEST_PG_DATA`, `KV_TEST_PG_RUN_AS`,
//! `KV_TEST_PG_OPTS`, `KV_TEST_PG_LOG`).

use std::process::Command;

/// How to stop and start the test server.
pub struct Server {
    ctl: String,
    data: String,
    run_as: String,
    opts: String,
    log: String,
}

impl Server {
    /// The server described by the environment, or `None` (after a loud
    /// skip line; a failure in CI) when it is not.
    pub fn from_env_or_skip() -> Option<Server> {
        let server = Server::from_env();
        if server.is_none() {
            super::skip::skip(
                "a server restart test needs KV_TEST_PG_CTL, KV_TEST_PG_DATA, KV_TEST_PG_RUN_AS, \
                 KV_TEST_PG_OPTS and KV_TEST_PG_LOG",
                "Run scripts/test.sh, which sets them for the server it starts.",
            );
        }
        server
    }

    /// The server described by the environment, or `None` when it is not.
    fn from_env() -> Option<Server> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Server {
            ctl: var("KV_TEST_PG_CTL")?,
            data: var("KV_TEST_PG_DATA")?,
            run_as: var("KV_TEST_PG_RUN_AS")?,
            opts: var("KV_TEST_PG_OPTS")?,
            log: var("KV_TEST_PG_LOG")?,
        })
    }

    /// `pg_ctl -D data <args>`, as the server's user when we are root.
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let mut command = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", &self.run_as, "--", &self.ctl]);
            c
        } else {
            Command::new(&self.ctl)
        };
        let out = command
            .args(["-D", &self.data])
            .args(args)
            .output()
            .map_err(|e| format!("pg_ctl cannot run: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn start(&self) -> Result<(), String> {
        self.pg_ctl(&["-o", &self.opts, "-l", &self.log, "-w", "start"])
    }

    /// Stops the server (fast shutdown); it comes back when the returned
    /// guard is started again or dropped.
    pub fn stop(&self) -> Down<'_> {
        if let Err(e) = self.pg_ctl(&["-m", "fast", "-w", "stop"]) {
            panic!("{e}");
        }
        Down {
            server: self,
            up: false,
        }
    }
}

/// The server while stopped: started again when dropped, so that a failing
/// assertion does not leave the test binaries after it without a server.
pub struct Down<'a> {
    server: &'a Server,
    up: bool,
}

impl Down<'_> {
    /// Starts the server again.
    pub fn start(&mut self) {
        if let Err(e) = self.server.start() {
            panic!("{e}");
        }
        self.up = true;
    }
}

impl Drop for Down<'_> {
    fn drop(&mut self) {
        // Report rather than panic: a panic while unwinding aborts.
        if !self.up {
            if let Err(e) = self.server.start() {
                eprintln!("could not start the test server again: {e}");
            }
        }
    }
}
