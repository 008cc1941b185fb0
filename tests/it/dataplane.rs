//! The data-plane checks (`postgres.check`, `valkey.check`, `http.check`, `dns.check`)
//! through the real action code and [`LiveDataPlane`], against real servers on
//! 127.0.0.1: PostgreSQL and redis from Debian's packages (see `local_servers`), and
//! tiny HTTP and DNS responders started here.
//!
//! Each step is evaluated as the engine evaluates a gate: `actions::check` with the
//! step's fields, on a `Cloud` whose data plane is the live one (its control planes are
//! a simulated world the checks never touch).

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drpilot::actions::{ActionError, ActionErrorKind, Observation, StepContext, check};
use drpilot::clock::Clock;
use drpilot::cloud::live::LiveDataPlane;
use drpilot::cloud::{Cloud, CloudErrorKind, DataPlane, HttpProbe};
use drpilot::runbook::{RenderStyle, Runbook, load_str};
use drpilot::sim::{SimConfig, SimWorld};

use crate::local_servers::{
    PASSWORD_ENV, PG_USER, PgPair, PgPrimary, RedisPair, RedisTls, free_port, postgres_available,
    redis_available,
};

/// Longest any one test's probes may take (the servers' start is bounded on its own).
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("the probes finished in time")
}

/// A live data plane that finds `password` under [`PASSWORD_ENV`] (and nothing else).
pub(crate) fn plane(password: &str) -> LiveDataPlane {
    let password = password.to_string();
    LiveDataPlane::new().with_secrets(move |name| (name == PASSWORD_ENV).then(|| password.clone()))
}

/// Runbook steps evaluated against a live data plane.
pub(crate) struct Bed {
    pub(crate) runbook: Runbook,
    pub(crate) cloud: Cloud,
    pub(crate) clock: Clock,
}

impl Bed {
    pub(crate) fn new(steps: &str, data: LiveDataPlane) -> Bed {
        let text = format!("[runbook]\nname = \"dataplane-it\"\nmode = \"planned\"\n{steps}");
        let loaded = match load_str(Path::new("dataplane-it.toml"), &text) {
            Ok(l) => l,
            Err(e) => panic!("{}", e.render(RenderStyle::Short)),
        };
        let clock = Clock::real();
        let world =
            SimWorld::from_runbook(&loaded.runbook, &SimConfig::default(), 1, clock.clone())
                .expect("world builds");
        let mut cloud = world.cloud();
        cloud.data = Arc::new(data);
        Bed {
            runbook: loaded.runbook,
            cloud,
            clock,
        }
    }

    fn ctx(&self, id: &str) -> StepContext<'_> {
        let step = self
            .runbook
            .steps
            .iter()
            .find(|s| s.id.as_str() == id)
            .unwrap_or_else(|| panic!("no step {id}"));
        StepContext {
            cloud: &self.cloud,
            runbook: &self.runbook,
            step,
            clock: &self.clock,
            interrupted: false,
        }
    }

    /// One evaluation of step `id`'s check.
    pub(crate) async fn check(&self, id: &str) -> Result<Observation, ActionError> {
        let ctx = self.ctx(id);
        check(&ctx, ctx.step.spec, &ctx.step.fields, None).await
    }

    /// Heartbeat step `id` run as a step: its measurement.
    pub(crate) async fn measure(&self, id: &str) -> drpilot::actions::dataplane::HeartbeatOutput {
        let ctx = self.ctx(id);
        let executed = drpilot::actions::dataplane::heartbeat_measure(
            &ctx,
            ctx.step.spec.kind,
            &ctx.step.fields,
        )
        .await
        .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        drpilot::actions::dataplane::HeartbeatOutput::of(&executed).expect("a heartbeat output")
    }

    /// `(passed, observed)` of step `id`, which must not fail.
    pub(crate) async fn observe(&self, id: &str) -> (bool, String) {
        match self.check(id).await {
            Ok(o) => (o.passed, o.observed),
            Err(e) => panic!("{id}: {e:?}"),
        }
    }
}

/// A `postgres.check` step.
fn pg_step(id: &str, port: u16, expect: &str, extra: &str) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"postgres.check\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"{PG_USER}\"\npassword_env = \"{PASSWORD_ENV}\"\n\
         expect = \"{expect}\"\n{extra}\n"
    )
}

/// A `valkey.check` step.
fn valkey_step(id: &str, port: u16, expect: &str, extra: &str) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"valkey.check\"\nhost = \"127.0.0.1\"\n\
         port = {port}\npassword_env = \"{PASSWORD_ENV}\"\nexpect = \"{expect}\"\n{extra}\n"
    )
}

/// The cloud error kind behind a failed check.
fn cloud_kind(e: &ActionError) -> CloudErrorKind {
    e.cloud.as_ref().map(|c| c.kind).expect("a cloud error")
}

/// Asserts `secret` appears nowhere in an error: its message, the cloud error's, or its
/// debug form (what a log would print).
fn assert_no_secret(e: &ActionError, secret: &str) {
    let all = format!("{e} | {e:?}");
    assert!(!all.contains(secret), "the secret leaked: {all}");
}

// ---------------------------------------------------------------------- PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writer_and_reader_follow_a_promotion() {
    if !postgres_available() {
        return;
    }
    let pg = PgPair::start();
    let (p, r) = (pg.primary.port, pg.replica.port);
    let bed = Bed::new(
        &[
            pg_step("primary-writer", p, "writer", "canary = true"),
            pg_step("primary-reader", p, "reader", ""),
            pg_step("replica-reader", r, "reader", ""),
            pg_step("replica-writer", r, "writer", "canary = true"),
        ]
        .concat(),
        plane(&pg.password),
    );
    within(async {
        assert_eq!(
            bed.observe("primary-writer").await,
            (
                true,
                "127.0.0.1 is a writer (not in recovery), canary row ok".into()
            )
        );
        assert_eq!(
            bed.observe("primary-reader").await,
            (
                false,
                "127.0.0.1 is a writer (not in recovery), expected a reader".into()
            )
        );
        assert_eq!(
            bed.observe("replica-reader").await,
            (true, "127.0.0.1 is a reader (in recovery)".into())
        );
        // A reader refuses the canary: the probe does not even try.
        assert_eq!(
            bed.observe("replica-writer").await,
            (
                false,
                "127.0.0.1 is a reader (in recovery), expected a writer, canary row failed".into()
            )
        );
    })
    .await;
    // The canary really wrote on the writer: its table exists there and reached the
    // replica through replication, and its row was removed again.
    assert_eq!(pg.primary.sql("SELECT count(*) FROM drpilot_canary"), "0");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg
        .replica
        .sql("SELECT to_regclass('drpilot_canary') IS NOT NULL")
        != "t"
    {
        assert!(
            Instant::now() < deadline,
            "the canary table never replicated"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The harness's pause holds replication back (for the RPO tests), and resume ends it.
    pg.pause_replication();
    pg.primary.sql("CREATE TABLE after_pause (x int)");
    std::thread::sleep(Duration::from_millis(500));
    let exists = "SELECT to_regclass('after_pause') IS NOT NULL";
    assert_eq!(pg.replica.sql(exists), "f");
    pg.resume_replication();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.replica.sql(exists) != "t" {
        assert!(Instant::now() < deadline, "replication never resumed");
        std::thread::sleep(Duration::from_millis(100));
    }

    pg.promote_replica();
    within(async {
        assert_eq!(
            bed.observe("replica-writer").await,
            (
                true,
                "127.0.0.1 is a writer (not in recovery), canary row ok".into()
            )
        );
        assert_eq!(
            bed.observe("replica-reader").await,
            (
                false,
                "127.0.0.1 is a writer (not in recovery), expected a reader".into()
            )
        );
    })
    .await;
    assert_eq!(pg.replica.sql("SELECT count(*) FROM drpilot_canary"), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failures_are_classified_and_never_show_the_password() {
    if !postgres_available() {
        return;
    }
    let pg = PgPrimary::start();
    let port = pg.server.port;
    let closed = free_port();
    let steps = [
        pg_step("writer", port, "writer", "canary = true"),
        pg_step("closed", closed, "writer", ""),
        pg_step("no-db", port, "writer", "database = \"missing_db\""),
        format!(
            "[[step]]\nid = \"no-password\"\naction = \"postgres.check\"\n\
             host = \"127.0.0.1\"\nport = {port}\nuser = \"{PG_USER}\"\nexpect = \"writer\"\n"
        ),
    ]
    .concat();
    let wrong = format!("Wr0ng-{}", pg.server.password);
    within(async {
        // The right password: a writer (so the wrong one below is the only difference).
        let right = Bed::new(&steps, plane(&pg.server.password));
        assert!(right.observe("writer").await.0);

        // A rejected password: not retryable, says why, and never shows the password.
        let bed = Bed::new(&steps, plane(&wrong));
        let e = bed.check("writer").await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent, "{e:?}");
        assert_eq!(cloud_kind(&e), CloudErrorKind::AccessDenied);
        assert!(
            e.message.contains("password authentication failed"),
            "{}",
            e.message
        );
        assert_eq!(e.cloud.as_ref().unwrap().code.as_deref(), Some("28P01"));
        assert_no_secret(&e, &wrong);
        assert_no_secret(&e, &pg.server.password);

        // A password variable that is not set: named, not guessed around.
        let unset = Bed::new(&steps, LiveDataPlane::new().with_secrets(|_| None));
        let e = unset.check("writer").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::InvalidRequest);
        assert!(e.message.contains(PASSWORD_ENV), "{}", e.message);

        // Nothing listening: an observation the gate keeps polling, not an error.
        let (passed, observed) = right.observe("closed").await;
        assert!(!passed);
        assert!(
            observed.contains(&format!("127.0.0.1:{closed}"))
                && observed.to_lowercase().contains("connection refused"),
            "{observed}"
        );

        // A database that does not exist: NotFound, permanent.
        let e = right.check("no-db").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::NotFound, "{e:?}");
        assert!(e.message.contains("missing_db"), "{}", e.message);

        // No password_env for a server that wants a password: denied, and says so.
        let e = right.check("no-password").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::AccessDenied, "{e:?}");
        assert!(e.message.contains("password missing"), "{}", e.message);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_verifies_the_server_certificate() {
    if !postgres_available() {
        return;
    }
    let pg = PgPrimary::start_tls();
    let ca = pg.ca.as_ref().unwrap();
    let port = pg.server.port;
    let steps = [
        pg_step(
            "tls",
            port,
            "writer",
            "canary = true\nsslmode = \"require\"",
        ),
        pg_step("plain", port, "writer", "sslmode = \"disable\""),
        pg_step("prefer", port, "writer", "sslmode = \"prefer\""),
    ]
    .concat();
    within(async {
        // Trusting the CA that issued the server's certificate: TLS, and the probe works.
        let trusted = plane(&pg.server.password)
            .with_ca_bundle(&ca.ca_pem)
            .unwrap();
        let bed = Bed::new(&steps, trusted);
        assert_eq!(
            bed.observe("tls").await,
            (
                true,
                "127.0.0.1 is a writer (not in recovery), canary row ok".into()
            )
        );
        // `prefer` uses TLS wherever the server offers it (this server takes TLS only).
        assert_eq!(
            bed.observe("prefer").await,
            (true, "127.0.0.1 is a writer (not in recovery)".into())
        );
        // The server takes TLS only, so the passes above went over TLS.
        let e = bed.check("plain").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::AccessDenied, "{e:?}");
        assert!(
            e.message.contains("no encryption")
                && e.message
                    .contains("the server requires TLS: set sslmode = \"require\""),
            "{}",
            e.message
        );

        // The system's roots do not include the test CA: refused, not polled.
        let system = Bed::new(&steps, plane(&pg.server.password));
        let e = system.check("tls").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::InvalidRequest, "{e:?}");
        assert!(e.message.contains("certificate"), "{}", e.message);
        // Nor does `prefer` fall back to plaintext over a certificate it cannot trust.
        let e = system.check("prefer").await.unwrap_err();
        assert!(e.message.contains("certificate"), "{}", e.message);
    })
    .await;
}

// -------------------------------------------------------------------------- Valkey

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_role_and_canary_follow_a_promotion() {
    if !redis_available() {
        return;
    }
    let rs = RedisPair::start();
    let (p, r) = (rs.primary.port, rs.replica.port);
    let bed = Bed::new(
        &[
            valkey_step("primary", p, "primary", "canary = true"),
            valkey_step("replica", r, "replica", ""),
            valkey_step("replica-primary", r, "primary", "canary = true"),
        ]
        .concat(),
        plane(&rs.password),
    );
    within(async {
        assert_eq!(
            bed.observe("primary").await,
            (true, "127.0.0.1 role master, canary key ok".into())
        );
        assert_eq!(
            bed.observe("replica").await,
            (true, "127.0.0.1 role slave".into())
        );
        // The replica refuses the canary write (READONLY).
        assert_eq!(
            bed.observe("replica-primary").await,
            (
                false,
                "127.0.0.1 role slave, expected primary, canary key failed".into()
            )
        );
    })
    .await;
    // The canary key is on the primary, with its 60 s expiry.
    let keys = rs.primary.cli(&["KEYS", "drpilot:canary:*"]);
    let key = keys.lines().next().unwrap_or_default().to_string();
    assert!(key.starts_with("drpilot:canary:"), "{keys}");
    let ttl: i64 = rs.primary.cli(&["TTL", &key]).parse().unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");

    // The harness's pause holds replication back (the frozen replica acknowledges
    // nothing the primary writes), and resume lets it catch up.
    rs.pause_replication();
    assert_eq!(rs.primary.cli(&["SET", "after-pause", "1"]), "OK");
    std::thread::sleep(Duration::from_millis(1500));
    let info = rs.primary.cli(&["INFO", "replication"]);
    let written: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("master_repl_offset:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("master_repl_offset in {info}"));
    let acked: i64 = info
        .lines()
        .find_map(|l| l.strip_prefix("slave0:"))
        .and_then(|v| v.split(',').find_map(|kv| kv.strip_prefix("offset=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("slave0 offset in {info}"));
    assert!(acked < written, "{info}");
    rs.resume_replication();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rs.replica.cli(&["GET", "after-pause"]) != "1" {
        assert!(Instant::now() < deadline, "replication never resumed");
        std::thread::sleep(Duration::from_millis(100));
    }

    rs.promote_replica();
    within(async {
        assert_eq!(
            bed.observe("replica-primary").await,
            (true, "127.0.0.1 role master, canary key ok".into())
        );
        assert_eq!(
            bed.observe("replica").await,
            (false, "127.0.0.1 role master, expected replica".into())
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_failures_are_classified_and_never_show_the_password() {
    if !redis_available() {
        return;
    }
    let rs = RedisPair::start();
    let closed = free_port();
    let steps = [
        valkey_step("primary", rs.primary.port, "primary", "canary = true"),
        valkey_step(
            "acl-user",
            rs.primary.port,
            "primary",
            "username = \"nobody\"",
        ),
        valkey_step("closed", closed, "primary", ""),
    ]
    .concat();
    let wrong = format!("Wr0ng-{}", rs.password);
    within(async {
        let right = Bed::new(&steps, plane(&rs.password));
        assert!(right.observe("primary").await.0);

        let bed = Bed::new(&steps, plane(&wrong));
        let e = bed.check("primary").await.unwrap_err();
        assert_eq!(e.kind, ActionErrorKind::Permanent, "{e:?}");
        assert_eq!(cloud_kind(&e), CloudErrorKind::AccessDenied);
        assert_no_secret(&e, &wrong);
        assert_no_secret(&e, &rs.password);

        // An ACL user that does not exist: denied too (AUTH user password).
        let e = right.check("acl-user").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::AccessDenied, "{e:?}");
        assert_no_secret(&e, &rs.password);

        let (passed, observed) = right.observe("closed").await;
        assert!(!passed);
        assert!(
            observed.contains(&format!("127.0.0.1:{closed}"))
                && observed.to_lowercase().contains("refused"),
            "{observed}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_tls_verifies_the_server_certificate() {
    if !redis_available() {
        return;
    }
    let rs = RedisTls::start();
    let step = valkey_step(
        "tls",
        rs.server.port,
        "primary",
        "canary = true\ntls = true",
    );
    within(async {
        let trusted = plane(&rs.password).with_ca_bundle(&rs.ca.ca_pem).unwrap();
        let bed = Bed::new(&step, trusted);
        assert_eq!(
            bed.observe("tls").await,
            (true, "127.0.0.1 role master, canary key ok".into())
        );
        let system = Bed::new(&step, plane(&rs.password));
        let e = system.check("tls").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::InvalidRequest, "{e:?}");
        assert!(e.message.contains("certificate"), "{}", e.message);
    })
    .await;
}

// ---------------------------------------------------------------------------- HTTP

/// One canned HTTP exchange: wait `delay`, then write `response` (nothing when empty:
/// the connection is held for `delay` and closed).
struct Canned {
    delay: Duration,
    response: Vec<u8>,
}

fn canned(status: &str, body: &str) -> Canned {
    Canned {
        delay: Duration::ZERO,
        response: format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    }
}

/// A one-thread HTTP server on 127.0.0.1 that answers its connections with `script`, in
/// order, and then stops; it gives back the request line of each. Bounded: it gives up
/// after 30 s without a connection.
fn http_server(script: Vec<Canned>) -> (u16, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for c in script {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return seen,
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            seen.push(head.lines().next().unwrap_or_default().to_string());
            std::thread::sleep(c.delay);
            let _ = stream.write_all(&c.response);
        }
        seen
    });
    (port, thread)
}

fn http_step(id: &str, port: u16, extra: &str) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"http.check\"\n\
         url = \"http://127.0.0.1:{port}/healthz\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_status_body_and_latency_of_a_real_server() {
    let body = r#"{"region":"us-west-2"}"#;
    let slow = Canned {
        delay: Duration::from_millis(400),
        ..canned("200 OK", body)
    };
    let (port, server) = http_server(vec![
        canned("200 OK", body),
        canned("503 Service Unavailable", "down"),
        slow,
        canned("200 OK", ""),
    ]);
    let closed = free_port();
    let contains = r#"body_contains = '"region":"us-west-2"'"#;
    let bed = Bed::new(
        &[
            http_step("ok", port, contains),
            http_step("down", port, contains),
            http_step(
                "slow",
                port,
                &format!("{contains}\nmax_latency = \"200ms\""),
            ),
            http_step("head", port, "method = \"HEAD\""),
            http_step("closed", closed, ""),
        ]
        .concat(),
        LiveDataPlane::new(),
    );
    within(async {
        let (passed, observed) = bed.observe("ok").await;
        assert!(passed, "{observed}");
        assert!(
            observed.starts_with("200 in ")
                && observed.ends_with(r#", body has "region":"us-west-2""#),
            "{observed}"
        );
        let (passed, observed) = bed.observe("down").await;
        assert!(!passed);
        assert!(
            observed.starts_with("503 in ")
                && observed.ends_with(r#"(expected 200, body lacks "region":"us-west-2")"#),
            "{observed}"
        );
        let (passed, observed) = bed.observe("slow").await;
        assert!(!passed);
        assert!(observed.ends_with("(slower than 200ms)"), "{observed}");
        assert!(bed.observe("head").await.0);
        let (passed, observed) = bed.observe("closed").await;
        assert!(!passed);
        assert!(observed.contains("Connection refused"), "{observed}");
    })
    .await;
    assert_eq!(
        server.join().unwrap(),
        [
            "GET /healthz HTTP/1.1",
            "GET /healthz HTTP/1.1",
            "GET /healthz HTTP/1.1",
            "HEAD /healthz HTTP/1.1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_latency_is_measured_bodies_are_bounded_and_silence_times_out() {
    let big = "x".repeat(100 * 1024);
    let (port, server) = http_server(vec![
        Canned {
            delay: Duration::from_millis(300),
            ..canned("200 OK", &big)
        },
        Canned {
            delay: Duration::from_secs(2),
            response: Vec::new(),
        },
    ]);
    let live = LiveDataPlane::new();
    let probe = |timeout| HttpProbe {
        url: format!("http://127.0.0.1:{port}/"),
        method: "POST".into(),
        timeout,
    };
    within(async {
        let o = live.http(&probe(Duration::from_secs(10))).await.unwrap();
        assert_eq!(o.status, 200);
        assert_eq!(o.body.len(), drpilot::cloud::live::MAX_HTTP_BODY);
        assert!(
            o.latency >= Duration::from_millis(300) && o.latency < Duration::from_secs(5),
            "{:?}",
            o.latency
        );
        let started = Instant::now();
        let e = live
            .http(&probe(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert_eq!(e.kind, CloudErrorKind::Transient, "{e:?}");
        assert!(e.message.contains("timed out after 300ms"), "{}", e.message);
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await;
    let seen = server.join().unwrap();
    assert_eq!(seen[0], "POST / HTTP/1.1");
}

// ----------------------------------------------------------------------------- DNS

/// What the test DNS server knows about one name.
enum Rec {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(&'static str),
}

/// A UDP DNS server on 127.0.0.1 that answers from a fixed table (following a CNAME for
/// A/AAAA questions, as a recursive resolver's answer does), NXDOMAIN for unknown names.
/// Stopped (and joined) on drop; counts the questions it answered.
struct DnsServer {
    port: u16,
    questions: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

impl DnsServer {
    fn start(table: Vec<(&'static str, Rec)>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let questions = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (questions.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = Self::answer(&table, &buf[..n]) {
                    q.fetch_add(1, Ordering::Relaxed);
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        DnsServer {
            port,
            questions,
            stop,
            thread: Some(thread),
        }
    }

    fn answer(table: &[(&'static str, Rec)], query: &[u8]) -> Option<Vec<u8>> {
        // Question: the name's labels, then type and class.
        let mut pos = 12;
        let mut labels = Vec::new();
        loop {
            let len = *query.get(pos)? as usize;
            pos += 1;
            if len == 0 {
                break;
            }
            labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_lowercase());
            pos += len;
        }
        let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
        let question = query.get(12..pos + 4)?;
        let name = labels.join(".");
        let of = |n: &str| -> Vec<&Rec> {
            table
                .iter()
                .filter(|(k, _)| *k == n)
                .map(|(_, r)| r)
                .collect()
        };
        let mut answers: Vec<(String, &Rec)> = Vec::new();
        let mut at = name.clone();
        for _ in 0..4 {
            let here: Vec<&Rec> = of(&at);
            let matching: Vec<&Rec> = here
                .iter()
                .copied()
                .filter(|r| match r {
                    Rec::A(_) => qtype == 1,
                    Rec::Aaaa(_) => qtype == 28,
                    Rec::Cname(_) => qtype == 5,
                })
                .collect();
            if !matching.is_empty() {
                answers.extend(matching.into_iter().map(|r| (at.clone(), r)));
                break;
            }
            match here.iter().find_map(|r| match r {
                Rec::Cname(t) => Some(*t),
                _ => None,
            }) {
                Some(target) if qtype == 1 || qtype == 28 => {
                    answers.push((
                        at.clone(),
                        here.iter().find(|r| matches!(r, Rec::Cname(_)))?,
                    ));
                    at = target.to_string();
                }
                _ => break,
            }
        }
        let nxdomain = of(&name).is_empty();
        let mut out = Vec::new();
        out.extend_from_slice(&query[..2]); // id
        let rd = query[2] & 0x01;
        out.push(0x84 | rd); // QR, AA, RD as asked
        out.push(0x80 | if nxdomain { 3 } else { 0 }); // RA, rcode
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(question);
        for (owner, rec) in answers {
            encode_name(&mut out, &owner);
            let (rtype, rdata) = match rec {
                Rec::A(ip) => (1u16, ip.octets().to_vec()),
                Rec::Aaaa(ip) => (28, ip.octets().to_vec()),
                Rec::Cname(t) => {
                    let mut d = Vec::new();
                    encode_name(&mut d, t);
                    (5, d)
                }
            };
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes()); // IN
            out.extend_from_slice(&30u32.to_be_bytes()); // TTL
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        Some(out)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn dns_step(id: &str, name: &str, rtype: &str, expect: &[&str], resolver: &str) -> String {
    let expect: Vec<String> = expect.iter().map(|e| format!("\"{e}\"")).collect();
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"dns.check\"\nname = \"{name}\"\n\
         type = \"{rtype}\"\nexpect = [{}]\nresolvers = [\"{resolver}\"]\n",
        expect.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_come_from_the_given_resolver() {
    let dns = DnsServer::start(vec![
        ("app.dp.test", Rec::A(Ipv4Addr::new(10, 1, 2, 3))),
        ("app.dp.test", Rec::A(Ipv4Addr::new(10, 1, 2, 4))),
        ("db.dp.test", Rec::Cname("writer-usw2.dp.test")),
        ("writer-usw2.dp.test", Rec::A(Ipv4Addr::new(10, 9, 9, 9))),
        ("v6.dp.test", Rec::Aaaa("2001:db8::7".parse().unwrap())),
    ]);
    let at = format!("127.0.0.1:{}", dns.port);
    let bed = Bed::new(
        &[
            dns_step("a-set", "app.dp.test", "A", &["10.1.2.4", "10.1.2.3"], &at),
            dns_step("a-wrong", "app.dp.test", "A", &["10.1.2.3"], &at),
            dns_step(
                "cname",
                "db.dp.test",
                "CNAME",
                &["writer-usw2.dp.test."],
                &at,
            ),
            dns_step("through-cname", "db.dp.test", "A", &["10.9.9.9"], &at),
            dns_step("aaaa", "v6.dp.test", "AAAA", &["2001:db8::7"], &at),
            dns_step("no-aaaa", "app.dp.test", "AAAA", &["2001:db8::1"], &at),
            dns_step("nxdomain", "gone.dp.test", "A", &["10.0.0.1"], &at),
            dns_step(
                "bad-resolver",
                "app.dp.test",
                "A",
                &["10.1.2.3"],
                "dns.example",
            ),
        ]
        .concat(),
        LiveDataPlane::new(),
    );
    within(async {
        assert_eq!(
            bed.observe("a-set").await,
            (true, "app.dp.test A -> 10.1.2.3, 10.1.2.4".into())
        );
        assert_eq!(
            bed.observe("a-wrong").await,
            (
                false,
                "app.dp.test A -> 10.1.2.3, 10.1.2.4 (expected 10.1.2.3)".into()
            )
        );
        // A CNAME target without its trailing dot, as the simulated world answers.
        assert_eq!(
            bed.observe("cname").await,
            (true, "db.dp.test CNAME -> writer-usw2.dp.test".into())
        );
        assert_eq!(
            bed.observe("through-cname").await,
            (true, "db.dp.test A -> 10.9.9.9".into())
        );
        assert_eq!(
            bed.observe("aaaa").await,
            (true, "v6.dp.test AAAA -> 2001:db8::7".into())
        );
        assert_eq!(
            bed.observe("no-aaaa").await,
            (
                false,
                "app.dp.test AAAA -> nothing (expected 2001:db8::1)".into()
            )
        );
        let (passed, observed) = bed.observe("nxdomain").await;
        assert!(!passed);
        assert!(
            observed.starts_with("gone.dp.test A does not resolve"),
            "{observed}"
        );
        let e = bed.check("bad-resolver").await.unwrap_err();
        assert_eq!(cloud_kind(&e), CloudErrorKind::InvalidRequest);
        assert!(e.message.contains("dns.example"), "{}", e.message);
    })
    .await;
    // Every answer came from our server (no cache: each probe asked again).
    assert!(
        dns.questions.load(Ordering::Relaxed) >= 7,
        "{} questions",
        dns.questions.load(Ordering::Relaxed)
    );
}

// ---------------------------------------------------------------------- heartbeats

fn beat_target(
    port: u16,
    store: drpilot::cloud::HeartbeatStore,
) -> drpilot::cloud::HeartbeatTarget {
    drpilot::cloud::HeartbeatTarget {
        endpoint: drpilot::cloud::Endpoint {
            host: "127.0.0.1".into(),
            port,
            user: matches!(store, drpilot::cloud::HeartbeatStore::Postgres { .. })
                .then(|| PG_USER.to_string()),
            password_env: Some(PASSWORD_ENV.into()),
            tls: drpilot::cloud::Tls::Off,
        },
        store,
    }
}

/// Writes three heartbeats that replicate, cuts replication, writes five more to the
/// old primary, promotes the replica with `promote`, writes one there: the new primary
/// lacks exactly the five, and the measured window is from the last survivor to the
/// last lost one, as written.
async fn heartbeats_measure_a_lost_window(
    data: &LiveDataPlane,
    primary: drpilot::cloud::HeartbeatTarget,
    replica: drpilot::cloud::HeartbeatTarget,
    cut: impl FnOnce(),
    promote: impl FnOnce(),
) {
    use drpilot::actions::heartbeats::beat;
    use drpilot::heartbeat::{Writer, measure};
    let clock = Clock::real();
    let since = clock.now().as_millisecond() - 1_000;
    let mut w = Writer::new();
    let mut written = Vec::new();
    for _ in 0..3 {
        written.push(
            beat(&mut w, data, &primary, &clock)
                .await
                .expect("primary takes it")
                .remove(0),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while data
        .heartbeat_read(&replica, since)
        .await
        .map_or(0, |b| b[0].beats.len())
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "heartbeats never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A replica refuses the write; it is not counted.
    let refused = beat(&mut w, data, &replica, &clock).await.unwrap_err();
    assert_eq!(refused.kind, CloudErrorKind::InvalidState, "{refused}");
    assert_eq!(w.acknowledged(), 3);
    cut();
    for _ in 0..5 {
        written.push(
            beat(&mut w, data, &primary, &clock)
                .await
                .expect("primary takes it")
                .remove(0),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    promote();
    let first = beat(&mut w, data, &replica, &clock)
        .await
        .expect("the new primary takes it")
        .remove(0);
    assert_eq!(first.seq, 9);
    let beats = data
        .heartbeat_read(&replica, since)
        .await
        .unwrap()
        .remove(0)
        .beats;
    let seqs: Vec<u64> = {
        let mut s: Vec<u64> = beats
            .iter()
            .filter(|b| b.writer == w.id())
            .map(|b| b.seq)
            .collect();
        s.sort();
        s
    };
    assert_eq!(seqs, [1, 2, 3, 9]);
    let m = measure(&beats, since).expect("heartbeats");
    assert_eq!(m.lost(), 5);
    let expected = (written[7].at_ms - written[2].at_ms) as u64;
    assert_eq!(m.rpo(), Duration::from_millis(expected));
    assert!(m.rpo() >= Duration::from_millis(1_200), "{:?}", m.rpo());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_heartbeats_measure_the_writes_a_promotion_lost() {
    if !postgres_available() {
        return;
    }
    let pg = PgPair::start();
    let data = plane(&pg.password);
    let store = || drpilot::cloud::HeartbeatStore::Postgres {
        database: "postgres".into(),
        table: "drpilot_heartbeat".into(),
    };
    within(heartbeats_measure_a_lost_window(
        &data,
        beat_target(pg.primary.port, store()),
        beat_target(pg.replica.port, store()),
        || pg.cut_replication(),
        || pg.promote_replica(),
    ))
    .await;
    // The writer created the table it writes to; what it wrote is all there is.
    assert_eq!(
        pg.replica.sql("SELECT count(*) FROM drpilot_heartbeat"),
        "4",
        "{}",
        pg.replica.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_heartbeats_measure_the_writes_a_promotion_lost() {
    if !redis_available() {
        return;
    }
    let r = RedisPair::start();
    let data = plane(&r.password);
    let store = || drpilot::cloud::HeartbeatStore::Valkey {
        key: "drpilot:heartbeat".into(),
        cluster: drpilot::cloud::ClusterMode::Detect,
    };
    within(heartbeats_measure_a_lost_window(
        &data,
        beat_target(r.primary.port, store()),
        beat_target(r.replica.port, store()),
        || r.cut_replication(),
        || r.promote_replica(),
    ))
    .await;
    assert_eq!(r.replica.cli(&["ZCARD", "drpilot:heartbeat"]), "4");
}
