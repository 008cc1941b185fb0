//! The shipped runbooks against the AWS emulator (chaos/emulator), through the real AWS
//! SDK clients: the wire behaviour of `cloud/aws.rs`.
//!
//! Each test starts its own emulator on a free 127.0.0.1 port (stopped by its pid when
//! the test ends), seeds `topologies/prod.toml`, and runs the `drpilot` binary with
//! `--endpoint-url` and the generated ids as `--param`s. Faults (blackholes, throttling,
//! errors, lost responses) are set through the emulator's `/_drpilot/` control API. The
//! emulator's clock runs fast (its failovers take seconds); drpilot's own polls are real
//! time, so each test takes tens of seconds.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::text;

/// Emulated seconds per real second: a 90 s switchover takes under 2 s.
const CLOCK_SPEED: f64 = 60.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator, stopped (SIGTERM to its pid) when dropped.
pub struct Emulator {
    child: Child,
    pub url: String,
    port: u16,
    /// What seeding printed: generated ids, ARNs, endpoints.
    pub seed: Value,
}

impl Emulator {
    /// Starts and seeds an emulator. Panics with the reason when it cannot: a test
    /// that needs the emulator must fail, not pass, without it.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Emulator::start`] with more of `chaos/emulator/start`'s options
    /// (`--enforce-iam`).
    pub fn start_with(options: &[&str]) -> Self {
        let mut child = Command::new(root().join("chaos/emulator/start"))
            .args(["--clock-speed", &CLOCK_SPEED.to_string()])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chaos/emulator/start runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Creating the venv on a fresh machine takes a while; after that it is seconds.
        let line = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(l) if l.starts_with("http://") => l.trim().to_string(),
            other => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("the emulator did not start ({other:?}): {err}");
            }
        };
        let port: u16 = line
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the URL has a port");
        let mut emu = Self {
            child,
            url: line,
            port,
            seed: Value::Null,
        };
        let out = Command::new(root().join("chaos/emulator/seed"))
            .arg(root().join("chaos/emulator/topologies/prod.toml"))
            .args(["--endpoint", &emu.url])
            .output()
            .expect("seed runs");
        assert!(
            out.status.success(),
            "seeding failed: {}",
            text(&out.stderr)
        );
        emu.seed = serde_json::from_slice(&out.stdout).expect("seed prints JSON");
        emu
    }

    /// One HTTP request to the control API; the JSON answer.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let raw = String::from_utf8_lossy(&raw).to_string();
        let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        assert!(
            head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2"),
            "{method} {path}: {head}\n{payload}"
        );
        serde_json::from_str(payload).unwrap_or(Value::Null)
    }

    /// A seeded value by path, as a string.
    pub fn seeded(&self, path: &[&str]) -> String {
        let mut v = &self.seed;
        for p in path {
            v = &v[*p];
        }
        v.as_str()
            .unwrap_or_else(|| panic!("seed has no {path:?}"))
            .to_string()
    }

    /// The DNS answer Route 53 would give.
    pub fn answer(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let zone_id = self.seeded(&["route53", "zones", zone, "id"]);
        let v = self.call(
            "GET",
            &format!("/_drpilot/route53/answer?zone_id={zone_id}&name={name}&type={rtype}"),
            None,
        );
        v["values"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One raw S3 request to the emulator with access key `key_id`, signed for `region` as
/// far as the emulator looks (it routes and blackholes by the SigV4 scope, and with
/// `--enforce-iam` authorizes by the key; signatures are not verified): the status and
/// body.
pub fn raw_s3(
    emu: &Emulator,
    key_id: &str,
    method: &str,
    path: &str,
    region: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", emu.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={key_id}/20260101/{region}/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        emu.port,
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, payload.to_string())
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM to our own child's pid: the emulator exits cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a drpilot run printed.
pub struct RunOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `service:Operation` -> requests, from the summary.
    pub api_calls: BTreeMap<String, u64>,
}

/// Steps that need a data plane the emulator does not have (databases, HTTP, DNS):
/// the runs skip them with `--skip-step`, as the chaos harness does.
pub fn data_plane_steps(file: &Path) -> Vec<String> {
    let loaded = drpilot::runbook::load(file).expect("shipped runbook loads");
    drpilot_chaos::emulator::data_plane_steps(&loaded.runbook)
}

/// Runs drpilot against the emulator and waits for it.
pub fn run_drpilot(
    emu: &Emulator,
    state: &Path,
    args: &[&str],
    params: &[(String, String)],
) -> RunOutput {
    run_drpilot_as(
        emu,
        ("AKIDEMULATOR", "emulator-secret"),
        state,
        args,
        params,
    )
}

/// [`run_drpilot`] with these credentials (access key id, secret).
pub fn run_drpilot_as(
    emu: &Emulator,
    (key_id, secret): (&str, &str),
    state: &Path,
    args: &[&str],
    params: &[(String, String)],
) -> RunOutput {
    let mut cmd = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_drpilot")));
    cmd.current_dir(root())
        .args(args)
        .arg("--state")
        .arg(state)
        .args(["--endpoint-url", &emu.url])
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("NO_COLOR");
    if matches!(
        args.first(),
        Some(&"run") | Some(&"preflight") | Some(&"readiness")
    ) {
        for (k, v) in params {
            cmd.args(["--param", &format!("{k}={v}")]);
        }
        if let Some(file) = args.get(1).filter(|f| f.starts_with("runbooks/")) {
            for s in data_plane_steps(&root().join(file)) {
                cmd.args(["--skip-step", &s]);
            }
        }
    }
    let out = cmd.output().expect("drpilot runs");
    let stderr = text(&out.stderr).to_string();
    let mut api_calls = BTreeMap::new();
    for line in stderr.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(n), Some(k), None) = (parts.next(), parts.next(), parts.next())
            && let (Ok(n), true) = (n.parse::<u64>(), k.contains(':'))
        {
            api_calls.insert(k.to_string(), n);
        }
    }
    RunOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout).to_string(),
        stderr,
        api_calls,
    }
}

pub fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drpilot-emu-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A client of drpilot's own SDK implementation, pointed at the emulator, with the
/// emulator's administrator key (allowed everything when it enforces IAM).
async fn sdk(emu: &Emulator) -> drpilot::cloud::aws::AwsCloud {
    use aws_credential_types::Credentials;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&emu.url)
        .load()
        .await;
    drpilot::cloud::aws::AwsCloud::from_sdk_config(config, Default::default())
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// The region of the global cluster's writer, read from us-west-2.
pub fn writer_region(emu: &Emulator) -> String {
    block_on(async {
        let aws = sdk(emu).await;
        let g = drpilot::cloud::Rds::describe_global_cluster(&aws, "us-west-2", "acme-prod")
            .await
            .expect("DescribeGlobalClusters");
        g.writer().map(|w| w.region.clone()).unwrap_or_default()
    })
}

/// The Valkey global datastore, read from us-west-2.
fn datastore(emu: &Emulator) -> drpilot::cloud::GlobalDatastore {
    block_on(async {
        let aws = sdk(emu).await;
        drpilot::cloud::ElastiCache::describe_global_datastore(
            &aws,
            "us-west-2",
            "ldgnf-acme-sessions",
        )
        .await
        .expect("DescribeGlobalReplicationGroups")
    })
}

/// The region of the Valkey global datastore's primary.
pub fn primary_region(emu: &Emulator) -> String {
    datastore(emu)
        .primary()
        .map(|m| m.region.clone())
        .unwrap_or_default()
}

/// The seeded ids for the runbook's declared params (`--param` must name one).
pub fn params_for(emu: &Emulator, file: &str) -> Vec<(String, String)> {
    let rb = drpilot::runbook::load(&root().join(file))
        .expect("shipped runbook loads")
        .runbook;
    drpilot_chaos::emulator::params_for(&emu.seed, &rb)
}

fn run_shipped(emu: &Emulator, state: &Path, file: &str, extra: &[&str]) -> RunOutput {
    let params = params_for(emu, file);
    let mut args = vec!["run", file, "--yes"];
    args.extend_from_slice(extra);
    run_drpilot(emu, state, &args, &params)
}

/// Where the private zone's names answer: the writer's and the cache's regions.
fn internal_answers(emu: &Emulator) -> (Vec<String>, Vec<String>) {
    (
        emu.answer("acme.internal.", "db-writer.acme.internal.", "CNAME"),
        emu.answer("acme.internal.", "cache.acme.internal.", "CNAME"),
    )
}

fn in_region(values: &[String], code: &str) -> bool {
    !values.is_empty() && values.iter().all(|v| v.contains(code))
}

#[test]
fn the_shipped_failover_moves_everything_while_us_east_1_is_blackholed() {
    let emu = Emulator::start();
    let state = state_dir("failover");
    let (db, cache) = internal_answers(&emu);
    assert!(in_region(&db, "us-east-1"), "before: {db:?}");
    assert!(in_region(&cache, "use1"), "before: {cache:?}");
    // us-east-1 goes dark: connections are reset, as when a region's endpoints fail.
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(json!({"region": "us-east-1", "mode": "reset"})),
    );
    let file = "runbooks/region-failover.toml";
    let params = params_for(&emu, file);
    let run = {
        let emu = &emu;
        let state = state.clone();
        std::thread::scope(|scope| {
            let run =
                scope.spawn(move || run_drpilot(emu, &state, &["run", file, "--yes"], &params));
            // While us-east-1 is still dark, traffic must move: the writer, the cache
            // primary and both DNS answers in us-west-2.
            let mut moved = false;
            for _ in 0..600 {
                let (db, cache) = internal_answers(emu);
                if in_region(&db, "us-west-2") && in_region(&cache, "usw2") {
                    moved = true;
                    break;
                }
                if run.is_finished() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            if moved {
                assert_eq!(writer_region(emu), "us-west-2");
                // With us-east-1 dark, FailoverGlobalReplicationGroup is refused and the
                // us-west-2 member is disassociated: it stands alone as a primary.
                let d = datastore(emu);
                assert!(
                    d.primary().is_some_and(|m| m.region == "us-west-2")
                        || !d
                            .members
                            .iter()
                            .any(|m| m.replication_group_id == "acme-sessions-usw2"),
                    "{d:?}"
                );
            }
            // The region comes back, so the last step (keeping the lost writes, whose
            // snapshot AWS takes in the old primary's region) can finish.
            emu.call("DELETE", "/_drpilot/blackholes", None);
            let out = run.join().expect("run thread");
            assert!(
                moved,
                "traffic never moved while us-east-1 was dark: {}",
                out.stderr
            );
            out
        })
    };
    let out = run;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(writer_region(&emu), "us-west-2");
    // The failover was sent once, to the target's region, with AllowDataLoss.
    assert_eq!(
        out.api_calls.get("rds:FailoverGlobalCluster"),
        Some(&1),
        "{}",
        out.stderr
    );
    let history = emu.call("GET", "/_drpilot/rds", None);
    assert_eq!(history["history"][0]["kind"], "failover", "{history}");
    eprintln!("API requests of the shipped failover: {:#?}", out.api_calls);
    // Route 53's control plane (us-east-1) was never needed.
    assert!(
        !out.api_calls
            .keys()
            .any(|k| k.starts_with("route53:Change") || k.starts_with("route53:UpdateHealthCheck")),
        "{:?}",
        out.api_calls
    );
}

#[test]
fn a_lost_failover_response_is_reread_not_resent() {
    let emu = Emulator::start();
    let state = state_dir("lost");
    emu.call(
        "POST",
        "/_drpilot/faults",
        Some(json!({
            "kind": "drop_response", "mode": "reset", "service": "rds",
            "operation": "FailoverGlobalCluster", "count": 1
        })),
    );
    let out = run_shipped(&emu, &state, "runbooks/region-failover.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(writer_region(&emu), "us-west-2");
    let faults = emu.call("GET", "/_drpilot/faults", None);
    assert_eq!(faults["rules"][0]["fired"], 1, "{faults}");
    // One request reached the service (its response was lost); drpilot re-read the
    // global cluster, saw the failover in progress, and never sent a second.
    assert_eq!(
        out.api_calls.get("rds:FailoverGlobalCluster"),
        Some(&1),
        "{}",
        out.stderr
    );
}

#[test]
fn switchover_and_failback_round_trip_without_the_data_loss_flag() {
    let emu = Emulator::start();
    let state = state_dir("roundtrip");
    let out = run_shipped(&emu, &state, "runbooks/planned-switchover.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("canary deleted"), "{}", out.stderr);
    assert_eq!(writer_region(&emu), "us-west-2");
    assert_eq!(primary_region(&emu), "us-west-2");
    let (db, _) = internal_answers(&emu);
    assert!(in_region(&db, "us-west-2"), "{db:?}");
    let out = run_shipped(&emu, &state, "runbooks/failback.toml", &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(writer_region(&emu), "us-east-1");
    assert_eq!(primary_region(&emu), "us-east-1");
    let (db, cache) = internal_answers(&emu);
    assert!(in_region(&db, "us-east-1"), "{db:?}");
    assert!(in_region(&cache, "use1"), "{cache:?}");
    let history = emu.call("GET", "/_drpilot/rds", None);
    let ops = history["history"].as_array().expect("rds history");
    assert!(ops.len() >= 2, "{history}");
    // Every operation was a switchover: FailoverGlobalCluster with AllowDataLoss (the
    // emulator records it as "failover") was never sent.
    for op in ops {
        assert_eq!(op["kind"], "switchover", "{op}");
    }
    // The global writer endpoint, read through drpilot's SDK path, is the one the
    // emulator moves with the writer.
    let g = block_on(async {
        drpilot::cloud::Rds::describe_global_cluster(&sdk(&emu).await, "us-west-2", "acme-prod")
            .await
            .expect("DescribeGlobalClusters")
    });
    let endpoints = &history["global_endpoints"]["acme-prod"];
    assert_eq!(
        g.endpoint.as_deref(),
        endpoints["endpoint"].as_str(),
        "{history}"
    );
    assert!(
        endpoints["points_to"]
            .as_str()
            .is_some_and(|e| e.contains(".us-east-1.")),
        "{history}"
    );
}

#[test]
fn a_permanent_failure_mid_run_rolls_everything_back() {
    let emu = Emulator::start();
    let state = state_dir("rollback");
    let before = internal_answers(&emu);
    // The Valkey failover fails every time (the fault layer answers 500 and the request
    // never reaches the service): the step exhausts its retries after Aurora moved.
    emu.call(
        "POST",
        "/_drpilot/faults",
        Some(json!({
            "kind": "error", "status": 500, "code": "InternalFailure",
            "service": "elasticache", "operation": "FailoverGlobalReplicationGroup"
        })),
    );
    let out = run_shipped(&emu, &state, "runbooks/planned-switchover.toml", &[]);
    assert_eq!(out.code, 1, "rolled back cleanly: {}", out.stderr);
    assert_eq!(writer_region(&emu), "us-east-1", "{}", out.stderr);
    assert_eq!(primary_region(&emu), "us-east-1");
    assert_eq!(internal_answers(&emu), before);
}

#[test]
fn throttling_on_every_service_still_converges() {
    let emu = Emulator::start();
    let state = state_dir("throttle");
    emu.call("POST", "/_drpilot/seed", Some(json!({"seed": 7})));
    emu.call(
        "POST",
        "/_drpilot/faults",
        Some(json!({"kind": "throttle", "service": "*", "operation": "*", "rate": 0.3})),
    );
    let out = run_shipped(&emu, &state, "runbooks/planned-switchover.toml", &[]);
    let faults = emu.call("GET", "/_drpilot/faults", None);
    // The checks below must not be throttled themselves.
    emu.call("DELETE", "/_drpilot/faults", None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let fired = faults["rules"][0]["fired"].as_u64().unwrap_or(0);
    assert!(fired > 0, "the throttle rule fired: {faults}");
    eprintln!(
        "throttled {fired} of {} requests",
        out.api_calls.values().sum::<u64>()
    );
    assert_eq!(writer_region(&emu), "us-west-2");
    assert_eq!(primary_region(&emu), "us-west-2");
}

/// planned-switchover.toml with its DNS step in a second account, reached by a role.
fn multi_account_runbook(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("runbooks/planned-switchover.toml"))
        .expect("shipped runbook");
    let text = text.replacen(
        "\n[params]\n",
        "\n[accounts.dns]\nid = \"111122223333\"\nrole_arn = \"arn:aws:iam::111122223333:role/drpilot-dns\"\nexternal_id = \"acme-dr\"\n\n[params]\n",
        1,
    );
    let text = text.replacen(
        "id = \"dns-switchover\"\n",
        "id = \"dns-switchover\"\naccount = \"dns\"\n",
        1,
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("multi-account.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_step_of_another_account_acts_with_the_role_it_assumes() {
    let emu = Emulator::start();
    let state = state_dir("accounts");
    let file = multi_account_runbook(&state.join("rb"));
    let file_s = file.to_str().unwrap().to_string();
    // Shipped params apply (the same declared params as planned-switchover.toml).
    let params = params_for(&emu, "runbooks/planned-switchover.toml");
    let mut args = vec!["run", file_s.as_str(), "--yes"];
    let skips = data_plane_steps(&file);
    for s in &skips {
        args.extend(["--skip-step", s.as_str()]);
    }
    // STS refuses the role: the preflight of that account's step fails, naming why,
    // and nothing changes.
    emu.call(
        "POST",
        "/_drpilot/faults",
        Some(json!({"kind": "error", "status": 500, "service": "sts", "operation": "AssumeRole"})),
    );
    let out = run_drpilot(&emu, &state, &args, &params);
    assert_eq!(out.code, 5, "{}", out.stderr);
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("✗ dns-switchover"))
        .collect();
    assert!(!failed.is_empty(), "{}", out.stderr);
    assert!(
        failed.iter().all(|l| l.contains("credentials")),
        "{failed:?}"
    );
    assert!(
        !out.stderr.contains("✗ aurora"),
        "the caller's own steps are unaffected: {}",
        out.stderr
    );
    assert_eq!(writer_region(&emu), "us-east-1", "nothing changed");
    // With STS answering, the same run succeeds.
    emu.call("DELETE", "/_drpilot/faults", None);
    let out = run_drpilot(&emu, &state, &args, &params);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (db, _) = internal_answers(&emu);
    assert!(in_region(&db, "us-west-2"), "{db:?}");
}

#[test]
fn a_cutover_batches_within_route53s_limits_and_its_rollback_restores_the_zone() {
    let emu = Emulator::start();
    let state = state_dir("cutover");
    let zone = emu.seeded(&["route53", "zones", "acme.example.", "id"]);
    let hc = emu.seeded(&["route53", "health_checks", "api-primary", "id"]);
    // 600 new records: UPSERTs count twice against Route 53's 1,000-element limit, so
    // two calls; then a health-check flip; then an approval nobody gives (a headless
    // run refuses it), so both changes are rolled back.
    let mut text = format!(
        "[runbook]\nname = \"wire-cutover\"\nmode = \"planned\"\n\n\
         [[step]]\nid = \"cut\"\naction = \"route53.cutover\"\nhosted_zone_id = \"{zone}\"\n"
    );
    for i in 0..600 {
        text.push_str(&format!(
            "[[step.records]]\nname = \"h{i}.acme.example.\"\ntype = \"A\"\nttl = 60\nvalues = [\"192.0.2.{}\"]\n",
            i % 250 + 1
        ));
    }
    text.push_str(
        "[step.gate]\ncheck = \"route53.change_insync\"\ntimeout = \"5m\"\ninterval = \"1s\"\n[step.rollback]\n\n",
    );
    text.push_str(&format!(
        "[[step]]\nid = \"flip\"\naction = \"route53.health_check_flip\"\nafter = [\"cut\"]\nhealth_checks = [\"{hc}\"]\ninvert = true\n[step.rollback]\n\n"
    ));
    text.push_str(
        "[[step]]\nid = \"go-on\"\naction = \"approval\"\nafter = [\"flip\"]\nmessage = \"Nobody approves this.\"\n",
    );
    std::fs::create_dir_all(&state).unwrap();
    let file = state.join("cutover.toml");
    std::fs::write(&file, text).unwrap();
    // The preflight reads the zone's record-set quota (GetHostedZoneLimit)...
    let out = run_drpilot(
        &emu,
        &state,
        &["preflight", file.to_str().unwrap(), "--output", "json"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.api_calls.len(), 0, "preflight prints no summary");
    // ... and refuses a cutover that would not fit.
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"route53": {"max_rrsets_by_zone": 500}})),
    );
    let table = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_drpilot")))
        .args([
            "preflight",
            file.to_str().unwrap(),
            "--endpoint-url",
            &emu.url,
        ])
        .env("AWS_ACCESS_KEY_ID", "AKIDEMULATOR")
        .env("AWS_SECRET_ACCESS_KEY", "emulator-secret")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("preflight runs");
    assert_eq!(table.status.code(), Some(5));
    let stdout = crate::text(&table.stdout);
    assert!(
        stdout.contains("this cutover creates 600: over the quota"),
        "{stdout}"
    );
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"route53": {"max_rrsets_by_zone": 10000}})),
    );
    let out = run_drpilot(
        &emu,
        &state,
        &["run", file.to_str().unwrap(), "--output", "human"],
        &[],
    );
    assert_eq!(out.code, 1, "rolled back cleanly: {}", out.stderr);
    // Two calls forward (1,200 elements), one back (600 DELETEs).
    assert_eq!(
        out.api_calls.get("route53:ChangeResourceRecordSets"),
        Some(&3),
        "{:?}\n{}",
        out.api_calls,
        out.stderr
    );
    assert_eq!(out.api_calls.get("route53:UpdateHealthCheck"), Some(&2));
    block_on(async {
        let aws = sdk(&emu).await;
        for i in [0, 299, 599] {
            let sets = drpilot::cloud::Route53::list_record_sets(
                &aws,
                &zone,
                &format!("h{i}.acme.example."),
                "A",
            )
            .await
            .expect("ListResourceRecordSets");
            assert!(sets.is_empty(), "h{i} left behind: {sets:?}");
        }
        let h = drpilot::cloud::Route53::get_health_check(&aws, &hc)
            .await
            .expect("GetHealthCheck");
        assert!(!h.inverted, "the flip was rolled back");
    });
}

/// A drill against the emulator: the shipped failover and failback through the real SDK
/// clients, each phase's RTO measured until its verification steps (skipped here: the
/// emulator has no data planes) and reported. The emulator has no databases either, so
/// the heartbeat steps are skipped and the RPO is reported as not measured — the local
/// lab (`tests/it/lab.rs`) is where the RPO is measured against real servers.
#[test]
fn a_drill_fails_over_and_back_through_the_emulator_and_reports_each_phase() {
    let emu = Emulator::start();
    let state = state_dir("drill");
    let reports = state.join("reports");
    let (failover, failback) = ("runbooks/region-failover.toml", "runbooks/failback.toml");
    let mut params = params_for(&emu, failover);
    for p in params_for(&emu, failback) {
        if !params.contains(&p) {
            params.push(p);
        }
    }
    let mut skips: Vec<String> = data_plane_steps(&root().join(failover));
    for s in data_plane_steps(&root().join(failback)) {
        if !skips.contains(&s) {
            skips.push(s);
        }
    }
    let report_dir = reports.display().to_string();
    let mut args = vec![
        "drill",
        failover,
        "--failback",
        failback,
        "--yes",
        "--soak",
        "1s",
        "--report-dir",
        &report_dir,
    ];
    let flags: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(skips.iter().cloned())
        .collect();
    for (i, f) in flags.iter().enumerate() {
        args.push(if i < params.len() {
            "--param"
        } else {
            "--skip-step"
        });
        args.push(f);
    }
    let out = run_drpilot(&emu, &state, &args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Everything is back where it started, and the failover really went to us-west-2.
    assert_eq!(writer_region(&emu), "us-east-1");
    assert_eq!(primary_region(&emu), "us-east-1");
    let history = emu.call("GET", "/_drpilot/rds", None);
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .expect("rds history")
        .iter()
        .filter_map(|op| op["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["failover", "switchover"], "{history}");
    let drill: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.join("drill.json")).expect("drill.json"),
    )
    .expect("drill.json is JSON");
    assert_eq!(drill["result"], "succeeded", "{drill:#}");
    assert!(drill["target"]["aws"].is_object(), "{drill:#}");
    for phase in 0..2 {
        let p = &drill["phases"][phase];
        let rto = p["rto"]["achieved_secs"].as_f64().expect("RTO measured");
        assert!(rto > 0.0, "{p:#}");
        assert_eq!(p["rto"]["met"], true, "{p:#}");
        assert!(p["rpo"]["achieved_secs"].is_null(), "{p:#}");
        let run_id = p["run_id"].as_str().expect("run id");
        for ext in ["md", "html", "junit.xml", "json"] {
            assert!(
                reports.join(format!("{run_id}.{ext}")).exists(),
                "{run_id}.{ext}"
            );
        }
    }
}

/// The replication lag of the us-west-2 secondary as drpilot's SDK implementation reads
/// it from CloudWatch.
fn usw2_lag(emu: &Emulator) -> Option<Duration> {
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    block_on(async {
        let aws = sdk(emu).await;
        drpilot::cloud::Rds::replication_lag(&aws, "us-west-2", "acme-prod", &arn)
            .await
            .expect("GetMetricData")
    })
}

/// A runbook of one `aurora.lag_below` step on the us-west-2 secondary, tried once.
fn lag_gate_runbook(emu: &Emulator, dir: &Path) -> PathBuf {
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    let text = format!(
        "[runbook]\nname = \"lag-gate\"\nmode = \"planned\"\n\n\
         [[step]]\nid = \"lag-ok\"\naction = \"aurora.lag_below\"\n\
         global_cluster = \"acme-prod\"\ncluster = \"{arn}\"\nmax_lag = \"5s\"\n\
         retry = {{ attempts = 1 }}\n"
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("lag-gate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn lag_below_does_not_pass_on_datapoints_from_before_the_primary_region_went_dark() {
    let emu = Emulator::start();
    // A state directory per run: the second run fails, and the third is a new run.
    let states: Vec<PathBuf> = (1..=3)
        .map(|i| state_dir(&format!("lag-gate-{i}")))
        .collect();
    let file = lag_gate_runbook(&emu, &states[0].join("rb"));
    let file = file.to_str().unwrap();
    emu.call(
        "POST",
        "/_drpilot/rds/lag",
        Some(json!({"cluster": "acme-prod-usw2", "lag_ms": 2000})),
    );
    // Replicating: the lag is read and the check passes.
    assert_eq!(usw2_lag(&emu), Some(Duration::from_secs(2)));
    let out = run_drpilot(&emu, &states[0], &["run", file, "--yes"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // us-east-1 goes dark, and ten minutes pass: the secondary's lag metrics stopped
    // when it did. Their last datapoints (2 s) are still in CloudWatch's 15-minute
    // window, but they say nothing about the lag now.
    emu.call(
        "POST",
        "/_drpilot/blackholes",
        Some(json!({"region": "us-east-1", "mode": "reset"})),
    );
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"cloudwatch": {"time_skip_seconds": 600}})),
    );
    assert_eq!(usw2_lag(&emu), None, "an old datapoint read as the lag now");
    let out = run_drpilot(&emu, &states[1], &["run", file, "--yes"], &[]);
    assert_ne!(out.code, 0, "the check passed: {}", out.stderr);
    assert!(out.stderr.contains("lag unknown"), "{}", out.stderr);
    // An Aurora MySQL-like cluster, publishing only AuroraGlobalDBReplicationLag, once
    // the region is back: its lag is read from that metric.
    emu.call("DELETE", "/_drpilot/blackholes", None);
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"cloudwatch": {"time_skip_seconds": 0}})),
    );
    emu.call(
        "POST",
        "/_drpilot/rds/clusters/acme-prod-usw2/metrics",
        Some(json!({"metrics": ["AuroraGlobalDBReplicationLag"]})),
    );
    assert_eq!(usw2_lag(&emu), Some(Duration::from_secs(2)));
    let out = run_drpilot(&emu, &states[2], &["run", file, "--yes"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Whether drpilot's SDK implementation reads the health check as healthy now.
fn health_of(emu: &Emulator, id: &str) -> drpilot::cloud::CloudResult<bool> {
    block_on(async {
        let aws = sdk(emu).await;
        drpilot::cloud::Route53::health_check_healthy(&aws, id).await
    })
}

#[test]
fn a_health_check_gate_reads_health_check_status_from_cloudwatch_in_us_east_1() {
    let emu = Emulator::start();
    let state = state_dir("hc-gate");
    let hc = emu.seeded(&["route53", "health_checks", "api-primary", "id"]);
    assert!(health_of(&emu, &hc).expect("GetMetricData"));
    // A flip whose gate waits until Route 53 reports the check unhealthy.
    let text = format!(
        "[runbook]\nname = \"hc-gate\"\nmode = \"planned\"\n\n\
         [[step]]\nid = \"flip\"\naction = \"route53.health_check_flip\"\n\
         health_checks = [\"{hc}\"]\ninvert = true\n\
         [step.gate]\ncheck = \"route53.health_check_healthy\"\nhealth_check_id = \"{hc}\"\n\
         healthy = false\ntimeout = \"2m\"\ninterval = \"1s\"\n[step.rollback]\n"
    );
    std::fs::create_dir_all(&state).unwrap();
    let file = state.join("hc-gate.toml");
    std::fs::write(&file, text).unwrap();
    let out = run_drpilot(
        &emu,
        &state.join("run"),
        &["run", file.to_str().unwrap(), "--yes"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.api_calls.get("cloudwatch:GetMetricData") >= Some(&1),
        "{:?}",
        out.api_calls
    );
    assert!(
        !out.api_calls.contains_key("route53:GetHealthCheckStatus"),
        "{:?}",
        out.api_calls
    );
    assert!(!health_of(&emu, &hc).expect("GetMetricData"));
    // A health check that publishes no more (deleted), read ten minutes on: its last
    // datapoints are still in the window read, but they say nothing about now.
    block_on(async {
        use aws_credential_types::Credentials;
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .credentials_provider(Credentials::new("AKIDTEST", "s", None, None, "test"))
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&emu.url)
            .load()
            .await;
        aws_sdk_route53::Client::new(&config)
            .delete_health_check()
            .health_check_id(&hc)
            .send()
            .await
            .expect("DeleteHealthCheck");
    });
    emu.call(
        "POST",
        "/_drpilot/config",
        Some(json!({"cloudwatch": {"time_skip_seconds": 600}})),
    );
    let e = health_of(&emu, &hc).unwrap_err();
    assert_eq!(e.kind, drpilot::cloud::CloudErrorKind::Transient, "{e}");
    assert!(
        e.message.contains("no current HealthCheckStatus datapoint"),
        "{e}"
    );
}

/// A runbook that sets the us-west-2 cluster's capacity range (built-in rollback), and
/// optionally then waits for a replication lag it never gets, so the run rolls back.
fn capacity_runbook(
    emu: &Emulator,
    dir: &Path,
    name: &str,
    min: &str,
    max: &str,
    fail: bool,
) -> PathBuf {
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    let mut text = format!(
        "[runbook]\nname = \"{name}\"\nmode = \"unplanned\"\n\n\
         [[step]]\nid = \"scale-usw2\"\naction = \"aurora.serverless_capacity\"\n\
         cluster = \"{arn}\"\nmin_acu = {min}\nmax_acu = {max}\n[step.rollback]\n"
    );
    if fail {
        // The emulator's lag is 500 ms: a 1 ms limit is never met.
        text.push_str(
            "\n[[step]]\nid = \"lag-ok\"\nafter = [\"scale-usw2\"]\naction = \"aurora.lag_below\"\n\
             global_cluster = \"acme-prod\"\nmax_lag = \"1ms\"\nretry = { attempts = 2, initial = \"1s\" }\n",
        );
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The us-west-2 cluster as the emulator itself holds it: range, status, instance
/// classes, and every range change it accepted for it.
fn usw2_serverless(emu: &Emulator) -> (Value, Vec<Value>) {
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    let rds = &emu.call("GET", "/_drpilot/state", None)["rds"];
    let changes = rds["capacity_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["cluster"] == json!(arn))
        .map(|c| json!([c["from"], c["to"]]))
        .collect();
    (rds["serverless"][&arn].clone(), changes)
}

fn acus(min: f64, max: f64) -> Value {
    json!({"MinCapacity": min, "MaxCapacity": max})
}

#[test]
fn a_standby_cluster_is_scaled_before_promotion_once_and_rolled_back_exactly() {
    let emu = Emulator::start();
    let dir = state_dir("capacity-rb");
    let (before, changes) = usw2_serverless(&emu);
    assert_eq!(
        before["scaling"],
        acus(0.5, 8.0),
        "seeded for standby: {before}"
    );
    assert_eq!(before["instance_classes"], json!(["db.serverless"]));
    assert!(changes.is_empty());
    // The primary runs at 24 ACUs now.
    emu.call(
        "POST",
        "/_drpilot/rds/capacity",
        Some(json!({"cluster": "acme-prod-use1", "acu": 24})),
    );
    // A maximum below it: preflight refuses, nothing is sent.
    let small = capacity_runbook(&emu, &dir, "too-small", "2", "16", false);
    let out = run_drpilot(
        &emu,
        &state_dir("capacity-small"),
        &["run", small.to_str().unwrap(), "--yes"],
        &[],
    );
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("runs at 24 ACUs now (ServerlessDatabaseCapacity), above max_acu 16"),
        "{}",
        out.stderr
    );
    assert_eq!(out.api_calls.get("rds:ModifyDBCluster"), None);
    assert!(usw2_serverless(&emu).1.is_empty(), "nothing changed");
    // Scaled to carry production: one ModifyDBCluster, to us-west-2, and the run ends
    // only once the cluster is available at the new range.
    let scale = capacity_runbook(&emu, &dir, "scale", "2", "64", false);
    let scale = scale.to_str().unwrap();
    let out = run_drpilot(
        &emu,
        &state_dir("capacity-1"),
        &["run", scale, "--yes"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.api_calls.get("rds:ModifyDBCluster"),
        Some(&1),
        "{}",
        out.stderr
    );
    let (now, changes) = usw2_serverless(&emu);
    assert_eq!(
        (now["scaling"].clone(), now["status"].clone()),
        (acus(2.0, 64.0), json!("available")),
        "{now}"
    );
    assert_eq!(changes, [json!([acus(0.5, 8.0), acus(2.0, 64.0)])]);
    // The same runbook again (a new run): already there, nothing sent.
    let out = run_drpilot(
        &emu,
        &state_dir("capacity-2"),
        &["run", scale, "--yes"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.api_calls.get("rds:ModifyDBCluster"),
        None,
        "{}",
        out.stderr
    );
    assert_eq!(usw2_serverless(&emu).1.len(), 1);
    // A later step fails: the built-in rollback puts back exactly the range the step
    // found (2-64, not the seeded one), and the run is rolled back cleanly.
    let failing = capacity_runbook(&emu, &dir, "scale-then-fail", "4", "128", true);
    let out = run_drpilot(
        &emu,
        &state_dir("capacity-3"),
        &["run", failing.to_str().unwrap(), "--yes"],
        &[],
    );
    assert_eq!(out.code, 1, "rolled back cleanly: {}", out.stderr);
    assert_eq!(
        out.api_calls.get("rds:ModifyDBCluster"),
        Some(&2),
        "{}",
        out.stderr
    );
    let (now, changes) = usw2_serverless(&emu);
    assert_eq!(
        (now["scaling"].clone(), now["status"].clone()),
        (acus(2.0, 64.0), json!("available")),
        "{now}"
    );
    assert_eq!(
        changes[1..],
        [
            json!([acus(2.0, 64.0), acus(4.0, 128.0)]),
            json!([acus(4.0, 128.0), acus(2.0, 64.0)])
        ]
    );
    // drpilot's SDK path reads what the emulator holds.
    let arn = emu.seeded(&["aurora", "clusters", "acme-prod-usw2", "arn"]);
    let c = block_on(async {
        drpilot::cloud::Rds::describe_cluster(&sdk(&emu).await, &arn)
            .await
            .expect("DescribeDBClusters")
    });
    assert_eq!(c.global_cluster.as_deref(), Some("acme-prod"));
    assert_eq!(
        c.scaling.map(|r| r.to_string()).as_deref(),
        Some("2-64 ACUs")
    );
}

/// Reads the stack's sizes with boto3 (AWS's SDK for Python, in the emulator's venv):
/// what AWS's own clients see, not drpilot's SDK path. Per region: the ECS services'
/// desired counts, the Auto Scaling group's [min, desired, max], the Aurora cluster's
/// capacity range; and the global writer's region.
const BOTO3_VIEW: &str = r#"
import json, sys, boto3
kw = dict(endpoint_url=sys.argv[1], aws_access_key_id="AKIDEMULATOR",
          aws_secret_access_key="emulator-secret")
out = {}
for region, code in (("us-east-1", "use1"), ("us-west-2", "usw2")):
    ecs = boto3.client("ecs", region_name=region, **kw)
    services = ecs.describe_services(cluster="acme-prod", services=["worker", "api"])["services"]
    asg = boto3.client("autoscaling", region_name=region, **kw)
    group = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["acme-prod-ecs-" + code])["AutoScalingGroups"][0]
    rds = boto3.client("rds", region_name=region, **kw)
    cluster = rds.describe_db_clusters(DBClusterIdentifier="acme-prod-" + code)["DBClusters"][0]
    scaling = cluster["ServerlessV2ScalingConfiguration"]
    out[region] = {
        "ecs": {s["serviceName"]: s["desiredCount"] for s in services},
        "hosts": [group["MinSize"], group["DesiredCapacity"], group["MaxSize"]],
        "acu": [scaling["MinCapacity"], scaling["MaxCapacity"]],
    }
rds = boto3.client("rds", region_name="us-west-2", **kw)
members = rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"][0]["GlobalClusterMembers"]
writer = [m["DBClusterArn"] for m in members if m["IsWriter"]]
out["writer"] = writer[0].split(":")[3] if len(writer) == 1 else None
print(json.dumps(out))
"#;

fn boto3_view(emu: &Emulator) -> Value {
    let out = Command::new(root().join("chaos/emulator/.venv/bin/python"))
        .args(["-c", BOTO3_VIEW, &emu.url])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("the emulator's venv runs boto3");
    assert!(out.status.success(), "boto3: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the boto3 view is JSON")
}

/// One region's sizes: ECS (worker, api), hosts [min, desired, max], ACUs [min, max].
fn sizes(worker: u64, api: u64, hosts: [u64; 3], acu: [f64; 2]) -> Value {
    json!({"ecs": {"worker": worker, "api": api}, "hosts": hosts, "acu": acu})
}

#[test]
fn the_shipped_failover_scales_us_west_2_before_promotion_and_failback_restores_both() {
    let emu = Emulator::start();
    let state = state_dir("compute");
    let production = |acu| sizes(6, 4, [3, 6, 12], acu);
    let standby = sizes(1, 2, [1, 2, 12], [0.5, 8.0]);
    let seeded = boto3_view(&emu);
    assert_eq!(seeded["us-east-1"], production([2.0, 64.0]), "{seeded}");
    assert_eq!(seeded["us-west-2"], standby, "{seeded}");
    assert_eq!(seeded["writer"], "us-east-1");

    // Headless without the approval: the run stops at it, after the capacity steps
    // that run beside it have finished. Nothing has been promoted; us-west-2 is sized
    // for production already.
    let file = "runbooks/region-failover.toml";
    let out = run_drpilot(
        &emu,
        &state,
        &["run", file, "--on-failure", "pause"],
        &params_for(&emu, file),
    );
    eprintln!("--- the failover, stopped at its approval\n{}", out.stderr);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("needs approval"), "{}", out.stderr);
    let before = boto3_view(&emu);
    assert_eq!(before["writer"], "us-east-1", "{before}");
    assert_eq!(before["us-west-2"], production([2.0, 64.0]), "{before}");
    assert_eq!(before["us-east-1"], seeded["us-east-1"], "{before}");

    // Approved, the failover goes on from there and promotes us-west-2.
    let run_id = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let mut args = vec![
        "resume",
        &run_id,
        "--retry",
        "--approve",
        "approve-failover",
    ];
    let skips = data_plane_steps(&root().join(file));
    for s in &skips {
        args.extend(["--skip-step", s.as_str()]);
    }
    let out = run_drpilot(&emu, &state, &args, &[]);
    eprintln!("--- the failover, resumed\n{}", out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = boto3_view(&emu);
    assert_eq!(after["writer"], "us-west-2", "{after}");
    assert_eq!(after["us-west-2"], production([2.0, 64.0]), "{after}");

    // Failback: production home again, us-west-2 back to standby.
    let out = run_shipped(&emu, &state, "runbooks/failback.toml", &[]);
    eprintln!("--- the failback\n{}", out.stderr);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let back = boto3_view(&emu);
    assert_eq!(back["writer"], "us-east-1", "{back}");
    assert_eq!(back["us-east-1"], production([2.0, 64.0]), "{back}");
    assert_eq!(back["us-west-2"], standby, "{back}");
}
