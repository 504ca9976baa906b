//! Private PostgreSQL servers (and a PgBouncer) that a test starts for
//! itself, beside the shared test server: one with TLS, one to pause with
//! SIGSTOP, one to stop. Each is initialised from the binaries of the
//! shared server (`KV_TEST_PG_CTL`'s folder), runs as `KV_TEST_PG_RUN_AS`
//! when we are root, listens on 127.0.0.1 only, and is stopped and its
//! folder removed when its handle is dropped. A small watcher shell holds
//! a pipe from this process: when the process ends (even by a crash or a
//! panic that skips every `Drop`) the pipe closes and the watcher resumes
//! a paused server and stops it.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the PostgreSQL binaries are and who runs them.
#[derive(Clone, Debug)]
pub struct Binaries {
    bin: PathBuf,
    run_as: String,
    root: bool,
}

impl Binaries {
    /// From `KV_TEST_PG_CTL` and `KV_TEST_PG_RUN_AS` (scripts/test.sh sets
    /// them). `None` after a loud skip line outside CI; panics in CI.
    pub fn from_env(what: &str) -> Option<Binaries> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("KV_TEST_PG_CTL"), var("KV_TEST_PG_RUN_AS")) {
            (Some(ctl), Some(run_as)) => Some(Binaries {
                bin: Path::new(&ctl).parent()?.to_path_buf(),
                run_as,
                root: is_root(),
            }),
            _ => {
                skip_or_fail(&format!(
                    "{what} needs KV_TEST_PG_CTL and KV_TEST_PG_RUN_AS (scripts/test.sh sets them)"
                ));
                None
            }
        }
    }

    /// A command running `program` as the server's user.
    fn command(&self, program: &Path) -> Command {
        if self.root {
            let mut c = Command::new("runuser");
            c.arg("-u").arg(&self.run_as).arg("--").arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// The user the servers run as (and the database user to connect as).
    pub fn user(&self) -> &str {
        &self.run_as
    }

    /// Makes `path` (and everything in it) belong to the server's user.
    pub fn give(&self, path: &Path) {
        if self.root {
            run(Command::new("chown")
                .arg("-R")
                .arg(format!("{}:", self.run_as))
                .arg(path));
        }
    }
}

/// Prints a loud skip line, or panics in CI (where skipping would hide
/// missing coverage).
pub fn skip_or_fail(why: &str) {
    // Not `support::skip`: the TLS bench includes this file on its own.
    let ci = std::env::var("CI").unwrap_or_default();
    if !ci.is_empty() && ci != "false" && ci != "0" {
        panic!("{why}, and CI is set: run the tests with scripts/test.sh");
    }
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {why} ***\n");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on 127.0.0.1 (free now; taken by whoever binds first).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh folder under the temporary directory.
fn fresh_dir(kind: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kv-{kind}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// Waits until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} does not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL server of this test process.
pub struct Instance {
    bins: Binaries,
    dir: PathBuf,
    data: PathBuf,
    pub port: u16,
    opts: String,
    /// The watcher; its stdin is the pipe that keeps the server alive.
    watcher: Option<Child>,
}

impl Instance {
    /// Initialises and starts a server with `settings` (`-c name=value`
    /// each) besides the test defaults; `files` are copied into its folder
    /// first (as (name, contents), key files with mode 0600).
    pub fn start(bins: &Binaries, settings: &[&str], files: &[(&str, &[u8])]) -> Instance {
        let dir = fresh_dir("pg");
        let data = dir.join("data");
        for (name, contents) in files {
            let path = dir.join(name);
            std::fs::write(&path, contents).expect("a server file");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("file mode");
            }
        }
        bins.give(&dir);
        run(bins
            .command(&bins.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", &bins.run_as, "-E", "UTF8"])
            .args(["--no-locale", "--no-sync"]));
        let port = free_port();
        let mut opts = format!(
            "-h 127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=100",
            dir.display()
        );
        for s in settings {
            opts.push_str(" -c ");
            opts.push_str(&s.replace("{dir}", &dir.display().to_string()));
        }
        let mut instance = Instance {
            bins: bins.clone(),
            dir,
            data,
            port,
            opts,
            watcher: None,
        };
        instance.pg_ctl_start();
        instance.watcher = Some(instance.spawn_watcher());
        instance
    }

    fn pg_ctl_start(&self) {
        run(self
            .bins
            .command(&self.bins.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-o", &self.opts, "start"]));
        wait_for_port(self.port, "the private PostgreSQL server");
    }

    /// The shell that stops the server once this process lets go of its
    /// stdin (by `Drop`, or by exiting).
    fn spawn_watcher(&self) -> Child {
        let pg_ctl = self.bins.bin.join("pg_ctl");
        let as_user = if self.bins.root {
            format!("runuser -u {} -- ", self.bins.run_as)
        } else {
            String::new()
        };
        let script = format!(
            "read _ignored; \
             pm=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null); \
             if [ -n \"$pm\" ]; then kill -CONT $pm $(ps -o pid= --ppid $pm) 2>/dev/null; fi; \
             {as_user}'{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            data = self.data.display(),
            pg_ctl = pg_ctl.display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the watcher shell starts")
    }

    /// `postgres://<user>@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{db}",
            self.bins.run_as, self.port
        )
    }

    /// The folder holding the server's data and files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster and its children, paused with SIGSTOP until the
    /// returned guard is dropped (SIGCONT), even when the test panics.
    pub fn pause(&self) -> Paused {
        let pm = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .expect("postmaster.pid")
            .lines()
            .next()
            .expect("the postmaster's pid")
            .trim()
            .to_owned();
        let children = run(Command::new("ps").args(["-o", "pid=", "--ppid", &pm]));
        let mut pids: Vec<String> = vec![pm];
        pids.extend(children.split_whitespace().map(str::to_owned));
        run(Command::new("kill").arg("-STOP").args(&pids));
        Paused { pids }
    }

    /// Kills the server as a crash would: `pg_ctl stop -m immediate` (no
    /// checkpoint; every session is cut off at once). When the returned
    /// guard is started or dropped, it starts again and recovers from its
    /// write-ahead log.
    pub fn crash(&self) -> Stopped<'_> {
        run(self
            .bins
            .command(&self.bins.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]));
        Stopped {
            instance: self,
            up: false,
        }
    }

    /// Stops the server (fast shutdown) until the returned guard is
    /// dropped or started.
    pub fn stop(&self) -> Stopped<'_> {
        run(self
            .bins
            .command(&self.bins.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]));
        Stopped {
            instance: self,
            up: false,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut watcher) = self.watcher.take() {
            drop(watcher.stdin.take());
            let _ = watcher.wait();
        }
    }
}

/// Processes stopped with SIGSTOP; SIGCONT when dropped.
pub struct Paused {
    pids: Vec<String>,
}

impl Drop for Paused {
    fn drop(&mut self) {
        // Report rather than panic: a panic while unwinding aborts.
        if let Err(e) = Command::new("kill").arg("-CONT").args(&self.pids).status() {
            eprintln!("could not resume the paused server: {e}");
        }
    }
}

/// A stopped server; started again when dropped.
pub struct Stopped<'a> {
    instance: &'a Instance,
    up: bool,
}

impl Stopped<'_> {
    pub fn start(&mut self) {
        self.instance.pg_ctl_start();
        self.up = true;
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        if !self.up {
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.instance.pg_ctl_start()
            }));
            if started.is_err() {
                eprintln!("could not start the private server again");
            }
        }
    }
}

/// A CA and a server certificate signed by it, made with the `openssl`
/// command: PEM text of the CA certificate, the server certificate and
/// its key.
pub struct Certs {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl Certs {
    /// A CA named `ca_name`, and a server certificate for the DNS names
    /// and IP addresses in `names` (e.g. `["localhost", "IP:127.0.0.1"]`).
    pub fn new(ca_name: &str, names: &[&str]) -> Certs {
        let dir = fresh_dir("certs");
        let p = |name: &str| dir.join(name).display().to_string();
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args));
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca_name}"),
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kv test server",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]);
        let san: Vec<String> = names
            .iter()
            .map(|n| {
                if n.starts_with("IP:") {
                    (*n).to_owned()
                } else {
                    format!("DNS:{n}")
                }
            })
            .collect();
        std::fs::write(
            dir.join("ext.cnf"),
            format!(
                "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,\
                 keyEncipherment\nextendedKeyUsage=serverAuth\n",
                san.join(",")
            ),
        )
        .expect("the extensions file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("server.pem"),
        ]);
        let read = |name: &str| std::fs::read(dir.join(name)).expect("a generated file");
        let certs = Certs {
            ca: read("ca.pem"),
            cert: read("server.pem"),
            key: read("server.key"),
        };
        let _ = std::fs::remove_dir_all(&dir);
        certs
    }

    /// Writes the CA certificate to `dir/name` (say, a server's folder,
    /// removed with it) and returns its path.
    pub fn write_ca(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca).expect("the CA file");
        path
    }
}

/// A server with TLS on, presenting `certs`' server certificate.
pub fn start_tls(bins: &Binaries, certs: &Certs) -> Instance {
    Instance::start(
        bins,
        &[
            "ssl=on",
            "ssl_cert_file={dir}/server.pem",
            "ssl_key_file={dir}/server.key",
        ],
        &[("server.pem", &certs.cert), ("server.key", &certs.key)],
    )
}

/// PgBouncer in transaction mode in front of a server, stopped when dropped.
pub struct Bouncer {
    pub port: u16,
    dir: PathBuf,
    watcher: Option<Child>,
}

impl Bouncer {
    /// Starts `pgbouncer` (scripts/test.sh installs it) in front of
    /// 127.0.0.1:`server_port`, every database, pool mode `transaction`.
    /// `None` after a loud skip line outside CI when it is missing.
    pub fn start(bins: &Binaries, server_port: u16) -> Option<Bouncer> {
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
        let Some(program) = program else {
            skip_or_fail("PgBouncer is not installed (scripts/test.sh installs it)");
            return None;
        };
        let dir = fresh_dir("pgbouncer");
        let port = free_port();
        std::fs::write(dir.join("users.txt"), format!("\"{}\" \"\"\n", bins.user()))
            .expect("the auth file");
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {dir}/users.txt\npool_mode = transaction\n\
                 max_client_conn = 200\ndefault_pool_size = 10\n\
                 logfile = {dir}/pgbouncer.log\n",
                dir = dir.display()
            ),
        )
        .expect("the configuration");
        bins.give(&dir);
        // PgBouncer refuses to run as root; `-u` makes it switch user.
        let as_user = if bins.root {
            format!("-u {} ", bins.run_as)
        } else {
            String::new()
        };
        let script = format!(
            "'{program}' {as_user}'{dir}/pgbouncer.ini' </dev/null >/dev/null 2>&1 & p=$!; \
             read _ignored; kill $p 2>/dev/null; wait $p; rm -rf '{dir}'",
            program = program.display(),
            dir = dir.display()
        );
        let watcher = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the PgBouncer watcher starts");
        let bouncer = Bouncer {
            port,
            dir,
            watcher: Some(watcher),
        };
        wait_for_port(port, "PgBouncer");
        Some(bouncer)
    }

    /// `postgres://<user>@127.0.0.1:<port>/<db>` through PgBouncer.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        if let Some(mut watcher) = self.watcher.take() {
            drop(watcher.stdin.take());
            let _ = watcher.wait();
        }
    }
}
