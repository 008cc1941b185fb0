//! Real data planes for tests (DESIGN.md, "Test beds" 3): a PostgreSQL primary with a
//! streaming replica, and a redis primary with a replica, on 127.0.0.1 and free ports,
//! in temporary directories, stopped by their own process id when dropped.
//!
//! The servers come from Debian's `postgresql` and `redis-server` packages, which
//! scripts/test.sh installs. A missing one fails the tests under `CI=true` and skips
//! them loudly elsewhere ([`postgres_available`], [`redis_available`]).
//!
//! Every server requires a password (scram-sha-256 for PostgreSQL, `requirepass` for
//! redis), so the probes' password path is the one exercised. Each server set has its
//! own random password, handed to the probes through
//! `LiveDataPlane::with_secrets` under [`PASSWORD_ENV`].
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the server processes
//! run as the `postgres` user (the package creates it), with their directories owned by
//! it. Command::uid/gid change user in the child itself, so the child we hold *is* the
//! postmaster and stopping it by pid stops the server.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The name a runbook's `password_env` gives the servers' password.
pub const PASSWORD_ENV: &str = "DRPILOT_IT_DATAPLANE_PASSWORD";
/// The PostgreSQL superuser the probes log in as.
pub const PG_USER: &str = "drpilot";
/// How long a server may take to start, promote or catch up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the PostgreSQL binaries are installed; under CI their absence fails.
pub fn postgres_available() -> bool {
    available("PostgreSQL", pg_bin_dir().is_some())
}

/// Whether redis-server is installed; under CI its absence fails.
pub fn redis_available() -> bool {
    available(
        "redis-server",
        Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
    )
}

fn available(what: &str, found: bool) -> bool {
    if !found {
        // The test script installs it; in CI its absence is a failure, not a pass.
        assert!(
            std::env::var("CI").is_err(),
            "{what} is not installed (scripts/test.sh installs it)"
        );
        eprintln!(
            "SKIPPED (not counted as a pass): {what} is not installed; \
             `apt-get install postgresql redis-server` runs these tests"
        );
    }
    found
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A password nobody guesses, different per server set.
fn new_password() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "it-{:x}{nanos:x}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory for one server set, removed by [`TempDir`]'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dp-it-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).trim() == "0"
}

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    check(cmd, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check(cmd: &Command, out: &Output) {
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends a signal to one of our own children, by its pid.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Stops a child by pid: `sig` first, SIGKILL after `grace`, and reaps it.
fn stop_child(child: &mut Child, sig: &str, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // A stopped process (see `pause_replication`) only acts on a signal once continued.
    signal(child.id(), "CONT");
    signal(child.id(), sig);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `ready` until it holds or [`READY_TIMEOUT`] passes; `what` names the wait, and
/// `log` is shown when it does not.
fn wait_until(what: &str, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    let _ = std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text));
    panic!(
        "{what} did not happen within {READY_TIMEOUT:?}; log {}:\n{text}",
        log.display()
    );
}

/// Waits for a server we just started to be `ready`. `false` when it exited because its
/// port was taken meanwhile (the free port is only free when asked): the caller starts
/// it again on another. Any other exit, or no readiness in time, fails the test.
fn wait_started(
    child: &mut Child,
    what: &str,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if text.contains("Address already in use") {
                return false;
            }
            panic!("{what} exited ({status}); log {}:\n{text}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_child(child, "KILL", Duration::from_secs(5));
    let text = std::fs::read_to_string(log).unwrap_or_default();
    panic!(
        "{what} was not ready within {READY_TIMEOUT:?}; log {}:\n{text}",
        log.display()
    );
}

/// How often a server is started again after losing its port to another process.
const START_ATTEMPTS: usize = 3;

// ----------------------------------------------------------------------- PostgreSQL

/// The newest installed PostgreSQL's bin directory (`/usr/lib/postgresql/<ver>/bin`).
fn pg_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let ver: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((ver, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid PostgreSQL runs as: `postgres` when we are root, else ourselves.
fn pg_identity() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let uid = run(Command::new("id").args(["-u", "postgres"]));
    let gid = run(Command::new("id").args(["-g", "postgres"]));
    Some((
        uid.trim().parse().expect("uid"),
        gid.trim().parse().expect("gid"),
    ))
}

/// TLS files for a server: a test CA and a certificate for 127.0.0.1 and localhost
/// that it issued, made with the `openssl` tool (Debian's PostgreSQL depends on it).
pub struct TestCa {
    /// The CA certificate (PEM), which a probe must be told to trust.
    pub ca_pem: Vec<u8>,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    /// Makes the CA and the server certificate in `dir`.
    pub fn new(dir: &Path) -> TestCa {
        let p = |name: &str| dir.join(name);
        let ext = p("server.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            run(Command::new("openssl").args(args).current_dir(dir));
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
            "/CN=drpilot test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa {
            ca_pem: std::fs::read(p("ca.pem")).unwrap(),
            ca_file: p("ca.pem"),
            cert_file: p("server.pem"),
            key_file: p("server.key"),
        }
    }
}

/// One PostgreSQL server (a postmaster we started).
pub struct Postgres {
    pub port: u16,
    /// The superuser's password (also the replication user's).
    pub password: String,
    /// Its data directory.
    pub data: PathBuf,
    child: Child,
    log: PathBuf,
    bin: PathBuf,
}

impl Postgres {
    /// Starts a postmaster on `data` (already initialised) listening on 127.0.0.1 only,
    /// with its socket in `dir`; settings are passed on the command line, so a replica
    /// copied from the primary gets its own port and socket directory.
    fn start(
        bin: &Path,
        dir: &Path,
        data: PathBuf,
        password: &str,
        identity: Option<(u32, u32)>,
        tls: Option<&TestCa>,
    ) -> Postgres {
        for _ in 0..START_ATTEMPTS {
            if let Some(pg) = Self::try_start(bin, dir, &data, password, identity, tls) {
                return pg;
            }
        }
        panic!("postgres found no free port in {START_ATTEMPTS} attempts");
    }

    fn try_start(
        bin: &Path,
        dir: &Path,
        data: &Path,
        password: &str,
        identity: Option<(u32, u32)>,
        tls: Option<&TestCa>,
    ) -> Option<Postgres> {
        let port = free_port();
        let log = dir.join(format!("postgres-{port}.log"));
        let logfile = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D").arg(data);
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_string(),
            format!("port={port}"),
            format!("unix_socket_directories={}", dir.display()),
            "wal_level=replica".into(),
            "max_wal_senders=4".into(),
            "hot_standby=on".into(),
            "fsync=off".into(),
            "full_page_writes=off".into(),
            "shared_buffers=16MB".into(),
            "max_connections=30".into(),
        ];
        if let Some(ca) = tls {
            settings.push("ssl=on".into());
            settings.push(format!("ssl_cert_file={}", ca.cert_file.display()));
            settings.push(format!("ssl_key_file={}", ca.key_file.display()));
        }
        for s in settings {
            cmd.arg("-c").arg(s);
        }
        if let Some((uid, gid)) = identity {
            cmd.uid(uid).gid(gid);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile)
            .spawn()
            .expect("postgres starts");
        let ready = wait_started(&mut child, &format!("postgres on {port}"), &log, || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        ready.then(|| Postgres {
            port,
            password: password.to_string(),
            data: data.to_path_buf(),
            child,
            log,
            bin: bin.to_path_buf(),
        })
    }

    /// Runs SQL as the superuser over TCP (password authentication); the rows, one per
    /// line, columns separated by `|`.
    pub fn sql(&self, sql: &str) -> String {
        run(Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", PG_USER, "-d", "postgres", "-X", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10"))
        .trim()
        .to_string()
    }

    /// `pg_is_in_recovery()`.
    pub fn in_recovery(&self) -> bool {
        self.sql("SELECT pg_is_in_recovery()") == "t"
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, no waiting.
        stop_child(&mut self.child, "INT", Duration::from_secs(15));
        // A lab's `follow` command may have rebuilt and restarted the server: that
        // postmaster is not our child; its own pid file names it.
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|p| *p != self.child.id()) {
            let alive = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
            signal(pid, "INT");
            let deadline = Instant::now() + Duration::from_secs(15);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                signal(pid, "KILL");
            }
        }
    }
}

/// A PostgreSQL primary and a streaming replica of it.
pub struct PgPair {
    // Fields drop in order: the servers stop before their directory goes.
    pub primary: Postgres,
    pub replica: Postgres,
    pub password: String,
    _dir: TempDir,
}

/// Initialises a data directory in `dir` with a superuser that logs in with `password`
/// over TCP (scram-sha-256) and a pg_hba.conf that allows nothing else but the local
/// socket.
fn initdb(bin: &Path, dir: &Path, password: &str, identity: Option<(u32, u32)>) -> PathBuf {
    let data = dir.join("primary");
    let pwfile = dir.join("pwfile");
    std::fs::write(&pwfile, password).unwrap();
    if let Some((uid, gid)) = identity {
        run(Command::new("chown")
            .arg(format!("{uid}:{gid}"))
            .arg(dir)
            .arg(&pwfile));
    }
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(&data)
        .args([
            "-U",
            PG_USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args(["--locale=C", "-E", "UTF8", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()));
    if let Some((uid, gid)) = identity {
        cmd.uid(uid).gid(gid);
    }
    run(&mut cmd);
    std::fs::remove_file(&pwfile).unwrap();
    // Password authentication over TCP for everything, replication included.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n\
         host replication all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    data
}

impl PgPair {
    /// Starts a primary, then a replica made with `pg_basebackup -R` that streams from it.
    pub fn start() -> PgPair {
        let bin = pg_bin_dir().expect("PostgreSQL is installed");
        let dir = TempDir::new("pg");
        let identity = pg_identity();
        let password = new_password();
        let data = initdb(&bin, &dir.0, &password, identity);
        let primary = Postgres::start(&bin, &dir.0, data, &password, identity, None);
        // The password is ours (letters and digits): safe to quote.
        primary.sql(&format!(
            "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '{password}'"
        ));
        let replica_data = dir.0.join("replica");
        let mut backup = Command::new(bin.join("pg_basebackup"));
        backup
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", "replicator", "-D"])
            .arg(&replica_data)
            .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
            .env("PGPASSWORD", &password);
        if let Some((uid, gid)) = identity {
            backup.uid(uid).gid(gid);
        }
        run(&mut backup);
        let replica = Postgres::start(&bin, &dir.0, replica_data, &password, identity, None);
        wait_until("the replica streaming", &replica.log, || {
            primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"
        });
        assert!(replica.in_recovery(), "{}", replica.log());
        PgPair {
            primary,
            replica,
            password,
            _dir: dir,
        }
    }

    /// Promotes the replica (`pg_promote()`, which waits until it is done).
    pub fn promote_replica(&self) {
        assert_eq!(self.replica.sql("SELECT pg_promote()"), "t");
        wait_until("the promotion", &self.replica.log, || {
            !self.replica.in_recovery()
        });
    }

    /// Cuts the replica off its primary (no `primary_conninfo`, so its WAL receiver
    /// stops): what the primary commits from now on never reaches it, and a promotion
    /// loses it. Pausing replay would not: a promotion replays what was received.
    pub fn cut_replication(&self) {
        self.replica.sql("ALTER SYSTEM SET primary_conninfo = ''");
        self.replica.sql("SELECT pg_reload_conf()");
        wait_until(
            "the replica's WAL receiver stopped",
            &self.replica.log,
            || {
                self.replica
                    .sql("SELECT count(*) FROM pg_stat_wal_receiver")
                    == "0"
            },
        );
    }

    /// The user PostgreSQL's programs run as (`postgres` when the tests run as root).
    pub fn run_as(&self) -> Option<&'static str> {
        pg_identity().map(|_| "postgres")
    }

    /// Stops applying WAL on the replica: it keeps answering, and falls behind.
    pub fn pause_replication(&self) {
        self.replica.sql("SELECT pg_wal_replay_pause()");
    }

    /// Resumes applying WAL on the replica.
    pub fn resume_replication(&self) {
        self.replica.sql("SELECT pg_wal_replay_resume()");
    }
}

/// A single PostgreSQL server, optionally offering TLS only (a test CA's certificate).
pub struct PgPrimary {
    pub server: Postgres,
    /// The CA that issued the server's certificate, when it speaks TLS.
    pub ca: Option<TestCa>,
    _dir: TempDir,
}

impl PgPrimary {
    /// A plaintext server with password authentication.
    pub fn start() -> PgPrimary {
        Self::start_with(false)
    }

    /// A server that accepts TCP connections over TLS only (`hostssl`).
    pub fn start_tls() -> PgPrimary {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> PgPrimary {
        let bin = pg_bin_dir().expect("PostgreSQL is installed");
        let dir = TempDir::new("pg1");
        let identity = pg_identity();
        let password = new_password();
        let ca = tls.then(|| TestCa::new(&dir.0));
        if let Some(ca) = &ca {
            if let Some((uid, gid)) = identity {
                // The server reads its key, which must be its own and private.
                run(Command::new("chown")
                    .arg(format!("{uid}:{gid}"))
                    .arg(&ca.cert_file)
                    .arg(&ca.key_file));
            }
            run(Command::new("chmod").arg("600").arg(&ca.key_file));
        }
        let data = initdb(&bin, &dir.0, &password, identity);
        if tls {
            // TLS required for TCP: a plaintext connection finds no pg_hba.conf entry.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
        }
        let server = Postgres::start(&bin, &dir.0, data, &password, identity, ca.as_ref());
        PgPrimary {
            server,
            ca,
            _dir: dir,
        }
    }
}

// ---------------------------------------------------------------------------- redis

/// One redis-server we started.
pub struct Redis {
    pub port: u16,
    child: Child,
    log: PathBuf,
    password: String,
    /// `redis-cli --tls` arguments when the server speaks TLS only.
    tls_args: Vec<String>,
}

impl Redis {
    fn start(dir: &Path, password: &str, extra: &[String], tls: Option<&TestCa>) -> Redis {
        for _ in 0..START_ATTEMPTS {
            if let Some(r) = Self::try_start(dir, password, extra, tls) {
                return r;
            }
        }
        panic!("redis-server found no free port in {START_ATTEMPTS} attempts");
    }

    fn try_start(
        dir: &Path,
        password: &str,
        extra: &[String],
        tls: Option<&TestCa>,
    ) -> Option<Redis> {
        let port = free_port();
        let log = dir.join(format!("redis-{port}.log"));
        // Its own working directory: a replica writes the RDB of its full sync there.
        let work = dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&work).unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--requirepass", password])
            .args(["--masterauth", password])
            .arg("--dir")
            .arg(&work)
            .arg("--logfile")
            .arg(&log)
            .args(extra);
        let mut tls_args = Vec::new();
        if let Some(ca) = tls {
            cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(&ca.cert_file)
                .arg("--tls-key-file")
                .arg(&ca.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&ca.ca_file)
                .args(["--tls-auth-clients", "no"]);
            tls_args = vec![
                "--tls".into(),
                "--cacert".into(),
                ca.ca_file.display().to_string(),
            ];
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let ready = wait_started(&mut child, &format!("redis on {port}"), &log, || {
            redis_cli(port, &tls_args, password, &["PING"]).is_some_and(|o| o.trim() == "PONG")
        });
        ready.then(|| Redis {
            port,
            child,
            log,
            password: password.to_string(),
            tls_args,
        })
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        redis_cli(self.port, &self.tls_args, &self.password, args)
    }

    /// Runs one command with redis-cli; its reply.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} on {} failed", self.port))
            .trim()
            .to_string()
    }

    /// The first element of `ROLE`.
    pub fn role(&self) -> String {
        self.cli(&["ROLE"])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        stop_child(&mut self.child, "TERM", Duration::from_secs(10));
    }
}

/// One redis-cli command; its output when it succeeded.
fn redis_cli(port: u16, tls_args: &[String], password: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(tls_args)
        .args(args)
        // The password through the environment, not the command line.
        .env("REDISCLI_AUTH", password)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A redis primary and a replica of it (`--replicaof`), both requiring the password.
pub struct RedisPair {
    pub primary: Redis,
    pub replica: Redis,
    pub password: String,
    _dir: TempDir,
}

impl RedisPair {
    pub fn start() -> RedisPair {
        let dir = TempDir::new("redis");
        let password = new_password();
        let primary = Redis::start(&dir.0, &password, &[], None);
        let replica = Redis::start(
            &dir.0,
            &password,
            &[
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ],
            None,
        );
        wait_until("the redis replica linked", &replica.log, || {
            replica
                .try_cli(&["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:up"))
        });
        RedisPair {
            primary,
            replica,
            password,
            _dir: dir,
        }
    }

    /// Promotes the replica: `REPLICAOF NO ONE`.
    pub fn promote_replica(&self) {
        assert_eq!(self.replica.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
        assert_eq!(self.replica.role(), "master");
    }

    /// Cuts the replica off its primary without promoting it: it follows a port where
    /// nothing listens, keeping its data as of now (redis keeps its dataset until a
    /// sync with a new primary succeeds).
    pub fn cut_replication(&self) {
        let nowhere = free_port().to_string();
        assert_eq!(
            self.replica.cli(&["REPLICAOF", "127.0.0.1", &nowhere]),
            "OK"
        );
    }

    /// Freezes the replica (SIGSTOP to its pid): replication stops, and so does every
    /// answer from it, until [`RedisPair::resume_replication`]. Redis has no way to stop
    /// applying the stream while still serving reads.
    pub fn pause_replication(&self) {
        signal(self.replica.child.id(), "STOP");
    }

    /// Lets a frozen replica go on (SIGCONT); it catches up from the primary's backlog.
    pub fn resume_replication(&self) {
        signal(self.replica.child.id(), "CONT");
    }
}

/// A redis primary that speaks TLS only, with a test CA's certificate.
pub struct RedisTls {
    pub server: Redis,
    pub password: String,
    pub ca: TestCa,
    _dir: TempDir,
}

impl RedisTls {
    pub fn start() -> RedisTls {
        let dir = TempDir::new("redistls");
        let password = new_password();
        let ca = TestCa::new(&dir.0);
        let server = Redis::start(&dir.0, &password, &[], Some(&ca));
        RedisTls {
            server,
            password,
            ca,
            _dir: dir,
        }
    }
}

// -------------------------------------------------------------------- redis cluster

/// The ACL user a cluster's nodes replicate as (`masteruser`): turning it off on a
/// primary cuts its replica off, while every client keeps working.
const REPL_USER: &str = "repl";
/// The ACL user the probes log in as (not `default`: the ACL path is exercised).
pub const CLUSTER_PROBE_USER: &str = "probe";

/// One node as `CLUSTER NODES` lists it.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub id: String,
    pub port: u16,
    pub primary: bool,
    /// A replica's primary's id.
    pub follows: Option<String>,
    /// A primary's slots, as listed (`0-5460`).
    pub slots: Vec<String>,
}

/// A redis cluster of three shards with one replica each: six redis-server processes
/// with `--cluster-enabled yes` on 127.0.0.1, formed by `redis-cli --cluster create`,
/// each stopped by its own pid when this is dropped (a panicking test included).
///
/// Every node requires a password for `default` (the fixture's own commands), the
/// probes log in as the ACL user [`CLUSTER_PROBE_USER`] with [`RedisCluster::password`],
/// and replicas authenticate as `repl`, which [`RedisCluster::cut_replication`] turns
/// off on a primary.
pub struct RedisCluster {
    // Fields drop in order: the servers stop before their directory goes.
    pub nodes: Vec<Redis>,
    /// The probe user's password.
    pub password: String,
    _dir: TempDir,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let dir = TempDir::new("rcluster");
        let admin = new_password();
        let password = new_password();
        let repl = new_password();
        let nodes: Vec<Redis> = (0..6)
            .map(|_| Self::start_node(&dir.0, &admin, &repl))
            .collect();
        for n in &nodes {
            for (user, pw) in [(REPL_USER, &repl), (CLUSTER_PROBE_USER, &password)] {
                let rule = format!(">{pw}");
                assert_eq!(
                    n.cli(&["ACL", "SETUSER", user, "on", &rule, "~*", "&*", "+@all"]),
                    "OK"
                );
            }
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .env("REDISCLI_AUTH", &admin)
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let c = RedisCluster {
            nodes,
            password,
            _dir: dir,
        };
        c.wait_formed();
        c
    }

    /// A node with the cluster bus on a port of its own (`--cluster-port`: the default,
    /// port + 10000, may be taken or out of range), started again on other ports when
    /// it lost one to another process.
    fn start_node(dir: &Path, admin: &str, repl: &str) -> Redis {
        for _ in 0..START_ATTEMPTS {
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
                "--cluster-port",
                &free_port().to_string(),
                "--masteruser",
                REPL_USER,
                "--masterauth",
                repl,
            ]
            .map(str::to_string);
            if let Some(r) = Redis::try_start(dir, admin, &extra, None) {
                return r;
            }
        }
        panic!("a cluster node found no free ports in {START_ATTEMPTS} attempts");
    }

    /// The node listening on `port`.
    pub fn node(&self, port: u16) -> &Redis {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node on {port}"))
    }

    /// `CLUSTER NODES` as `node` sees it.
    pub fn topology(&self, node: &Redis) -> Vec<ClusterNode> {
        node.cli(&["CLUSTER", "NODES"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let port = f
                    .get(1)?
                    .split('@')
                    .next()?
                    .rsplit_once(':')?
                    .1
                    .parse()
                    .ok()?;
                let flags = f.get(2)?;
                Some(ClusterNode {
                    id: f[0].to_string(),
                    port,
                    primary: flags.contains("master") && !flags.contains("fail"),
                    follows: f.get(3).filter(|m| **m != "-").map(|m| m.to_string()),
                    slots: f
                        .iter()
                        .skip(8)
                        .filter(|s| !s.starts_with('['))
                        .map(|s| s.to_string())
                        .collect(),
                })
            })
            .collect()
    }

    /// The shards as every node agrees on them: `(slots, primary port, replica port)`,
    /// in slot order; `None` while the nodes disagree or a shard lacks either.
    fn agreed(&self) -> Option<Vec<(String, u16, u16)>> {
        let mut seen = None;
        for n in &self.nodes {
            let t = self.topology(n);
            let mut shards: Vec<(String, u16, u16)> = t
                .iter()
                .filter(|p| p.primary && !p.slots.is_empty())
                .map(|p| {
                    let replica = t
                        .iter()
                        .find(|r| r.follows.as_deref() == Some(p.id.as_str()))
                        .map_or(0, |r| r.port);
                    (p.slots.join(","), p.port, replica)
                })
                .collect();
            shards.sort_by_key(|(s, _, _)| {
                s.split(['-', ','])
                    .next()
                    .and_then(|x| x.parse::<u32>().ok())
                    .unwrap_or(0)
            });
            if shards.len() != 3 || shards.iter().any(|(_, _, r)| *r == 0) {
                return None;
            }
            match &seen {
                None => seen = Some(shards),
                Some(s) if *s == shards => {}
                Some(_) => return None,
            }
        }
        seen
    }

    /// The shards: `(slots, primary port, replica port)`, in slot order.
    pub fn shards(&self) -> Vec<(String, u16, u16)> {
        self.agreed().expect("the nodes agree on the topology")
    }

    /// Waits until the cluster serves every slot, every node agrees on three shards
    /// with a replica each, and every replica is linked to its primary.
    fn wait_formed(&self) {
        let log = self.nodes[0].log.clone();
        wait_until("the cluster formed", &log, || {
            self.nodes.iter().all(|n| {
                n.try_cli(&["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            }) && self.agreed().is_some_and(|shards| {
                shards.iter().all(|(_, _, r)| {
                    self.node(*r)
                        .try_cli(&["INFO", "replication"])
                        .is_some_and(|i| i.contains("master_link_status:up"))
                })
            })
        });
    }

    /// Waits until every replica has applied everything its primary wrote.
    pub fn wait_replicated(&self) {
        let offset = |node: &Redis, field: &str| -> Option<i64> {
            node.try_cli(&["INFO", "replication"])?
                .lines()
                .find_map(|l| l.strip_prefix(field))?
                .trim()
                .parse()
                .ok()
        };
        let log = self.nodes[0].log.clone();
        wait_until("the replicas caught up", &log, || {
            self.shards().iter().all(|(_, p, r)| {
                let written = offset(self.node(*p), "master_repl_offset:");
                let applied = offset(self.node(*r), "slave_repl_offset:");
                written.is_some() && written == applied
            })
        });
    }

    /// Cuts the replica of the shard whose primary listens on `primary` off it: the
    /// replication user is turned off there and the replica's link killed, so it cannot
    /// come back. The primary goes on acknowledging writes the replica never gets.
    pub fn cut_replication(&self, primary: u16) {
        let (_, _, replica) = self
            .shards()
            .into_iter()
            .find(|(_, p, _)| *p == primary)
            .expect("a shard with that primary");
        let p = self.node(primary);
        assert_eq!(p.cli(&["ACL", "SETUSER", REPL_USER, "off"]), "OK");
        p.cli(&["CLIENT", "KILL", "TYPE", "replica"]);
        let r = self.node(replica);
        wait_until("the replica's link down", &r.log, || {
            r.try_cli(&["INFO", "replication"])
                .is_some_and(|i| i.contains("master_link_status:down"))
        });
    }

    /// Undoes [`RedisCluster::cut_replication`] of the node on `port`: replicas may
    /// log in to it again.
    pub fn restore_replication(&self, port: u16) {
        assert_eq!(
            self.node(port).cli(&["ACL", "SETUSER", REPL_USER, "on"]),
            "OK"
        );
    }

    /// Waits until the nodes on `primaries` are their shards' primaries, as every node
    /// agrees, and each has its replica linked to it.
    pub fn wait_primaries(&self, primaries: &[u16]) {
        let log = self.nodes[0].log.clone();
        wait_until("the primaries agreed and linked", &log, || {
            self.agreed().is_some_and(|shards| {
                let mut at: Vec<u16> = shards.iter().map(|(_, p, _)| *p).collect();
                at.sort_unstable();
                let mut want = primaries.to_vec();
                want.sort_unstable();
                at == want
                    && shards.iter().all(|(_, _, r)| {
                        self.node(*r)
                            .try_cli(&["INFO", "replication"])
                            .is_some_and(|i| i.contains("master_link_status:up"))
                    })
            })
        });
    }

    /// Makes the replica on `replica` its shard's primary without its primary's
    /// agreement (`CLUSTER FAILOVER TAKEOVER`, as after losing the primary), and waits
    /// until every node agrees.
    pub fn take_over(&self, replica: u16) {
        let r = self.node(replica);
        assert_eq!(r.cli(&["CLUSTER", "FAILOVER", "TAKEOVER"]), "OK");
        wait_until("the takeover agreed by every node", &r.log, || {
            self.agreed()
                .is_some_and(|shards| shards.iter().any(|(_, p, _)| *p == replica))
                && r.role() == "master"
        });
    }
}
