//! The AWS emulator (`chaos/emulator`) as a chaos target: one emulator per harness job
//! (started by `chaos/emulator/start` on a free 127.0.0.1 port, stopped by its pid),
//! reset and re-seeded before each scenario, and read afterwards through its control
//! API and drpilot's own SDK client: where the writers are, which routing controls are
//! On, and the emulator's own history of the changes it applied.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use drpilot::runbook::Runbook;

/// Emulated seconds per real second, as the integration tests use: a 90 s switchover
/// takes 1.5 s.
pub const CLOCK_SPEED: f64 = 60.0;

/// The topology every scenario starts from (the shipped runbooks' stack).
pub const TOPOLOGY: &str = "chaos/emulator/topologies/prod.toml";

/// A running emulator, stopped (SIGTERM to its own pid) when dropped.
pub struct Emulator {
    child: Child,
    root: PathBuf,
    /// Its URL (`http://127.0.0.1:PORT`).
    pub url: String,
    port: u16,
}

impl Emulator {
    /// Starts an emulator (creating its venv on first use).
    pub fn start(root: &Path) -> Result<Emulator, String> {
        let mut child = Command::new(root.join("chaos/emulator/start"))
            .args(["--clock-speed", &CLOCK_SPEED.to_string()])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run chaos/emulator/start: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Its log goes nowhere, but the pipe must be drained or the emulator blocks.
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut head = Vec::new();
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if head.len() < 16_384 {
                    head.extend_from_slice(&buf[..n]);
                }
            }
            let _ = etx.send(String::from_utf8_lossy(&head).into_owned());
        });
        // A fresh machine creates the venv first; after that it is seconds.
        let line = match rx.recv_timeout(Duration::from_secs(600)) {
            Ok(l) if l.starts_with("http://") => l.trim().to_string(),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let err = erx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
                return Err(format!("the emulator did not start ({other:?}): {err}"));
            }
        };
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("the emulator printed no port: {line}"))?;
        Ok(Emulator {
            child,
            root: root.to_path_buf(),
            url: line,
            port,
        })
    }

    /// A handle for calls from another thread (a timer lifting a blackhole).
    pub fn control(&self) -> Control {
        Control { port: self.port }
    }

    /// One request to the control API.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.control().call(method, path, body)
    }

    /// Everything back to a fresh topology: moto's and the extensions' state, faults,
    /// blackholes and config reset, the clock at [`CLOCK_SPEED`], the fault RNG seeded,
    /// the stack created again. Returns what seeding printed (generated ids).
    pub fn fresh(&self, seed: u64) -> Result<Value, String> {
        self.call("POST", "/_drpilot/reset", Some(json!({"moto": true})))?;
        self.call(
            "POST",
            "/_drpilot/clock",
            Some(json!({ "speed": CLOCK_SPEED })),
        )?;
        self.call("POST", "/_drpilot/seed", Some(json!({ "seed": seed })))?;
        let out = Command::new(self.root.join("chaos/emulator/seed"))
            .arg(self.root.join(TOPOLOGY))
            .args(["--endpoint", &self.url])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run chaos/emulator/seed: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "seeding failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("seed printed no JSON: {e}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM to our own child's pid: it exits cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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

/// The control API of one emulator (`/_drpilot/...`), by port.
#[derive(Clone, Copy, Debug)]
pub struct Control {
    port: u16,
}

impl Control {
    /// One HTTP/1.1 request; the JSON answer, or why there is none.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|e| format!("{method} {path}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .map_err(|e| format!("{method} {path}: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let raw = String::from_utf8_lossy(&raw).to_string();
        let (head, payload) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        if !(head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2")) {
            return Err(format!(
                "{method} {path}: {}: {payload}",
                head.lines().next().unwrap_or("")
            ));
        }
        Ok(serde_json::from_str(payload).unwrap_or(Value::Null))
    }
}

/// A seeded value by path, as a string.
fn seeded(seed: &Value, path: &[&str]) -> Option<String> {
    let mut v = seed;
    for p in path {
        v = &v[*p];
    }
    v.as_str().map(String::from)
}

/// The seeded ids for the runbook's declared params (`--param` must name one): the
/// zone, health-check and routing-control ids the emulator generated.
pub fn params_for(seed: &Value, rb: &Runbook) -> Vec<(String, String)> {
    let (from_cell, to_cell) = if rb.params.get("from").map(String::as_str) == Some("us-east-1") {
        ("cell-use1", "cell-usw2")
    } else {
        ("cell-usw2", "cell-use1")
    };
    [
        (
            "public_zone",
            seeded(seed, &["route53", "zones", "acme.example.", "id"]),
        ),
        (
            "private_zone",
            seeded(seed, &["route53", "zones", "acme.internal.", "id"]),
        ),
        (
            "api_primary_health_check",
            seeded(seed, &["route53", "health_checks", "api-primary", "id"]),
        ),
        (
            "cell_from",
            seeded(seed, &["arc", "routing_controls", from_cell, "arn"]),
        ),
        (
            "cell_to",
            seeded(seed, &["arc", "routing_controls", to_cell, "arn"]),
        ),
    ]
    .into_iter()
    .filter(|(k, _)| rb.params.contains_key(*k))
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect()
}

/// Steps that need a data plane the emulator does not have (databases, HTTP, DNS):
/// runs skip them with `--skip-step`, as an operator would from outside the VPC.
pub fn data_plane_steps(rb: &Runbook) -> Vec<String> {
    rb.steps
        .iter()
        .filter(|s| {
            matches!(
                s.spec.name,
                "postgres.check"
                    | "valkey.check"
                    | "http.check"
                    | "dns.check"
                    // Resolves the global writer endpoint: AWS's DNS, not served here.
                    | "aurora.global_endpoint"
                    | "postgres.heartbeat"
                    | "valkey.heartbeat"
            )
        })
        .map(|s| s.id.as_str().to_string())
        .collect()
}

/// The resource key of each routing control, by ARN, from what seeding printed.
fn control_names(seed: &Value) -> BTreeMap<String, String> {
    seed["arc"]["routing_controls"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, c)| Some((c["arn"].as_str()?.to_string(), name.clone())))
        .collect()
}

/// What the emulator says about the resources the runbooks change, keyed as the
/// checks key them: `global_cluster:ID` (the writer's region), `datastore:ID`
/// (the primary's region and the members' regions), `routing_control:NAME` (On/Off).
/// Waits (bounded) until no operation is in progress: the emulator finishes what a
/// killed run started on its own clock.
pub fn read_world(emu: &Emulator, seed: &Value) -> Result<BTreeMap<String, Value>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rds = emu.call("GET", "/_drpilot/rds", None)?;
        let ec = emu.call("GET", "/_drpilot/elasticache", None)?;
        let busy_rds = rds["operations"].as_object().is_some_and(|o| !o.is_empty());
        let busy_ec = ec["global_replication_groups"]
            .as_object()
            .into_iter()
            .flatten()
            .any(|(_, g)| g["Status"] != "available");
        if !(busy_rds || busy_ec) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "an operation was still in progress after 60 s: rds {} elasticache {}",
                rds["operations"], ec["global_replication_groups"]
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut out = BTreeMap::new();
    let url = emu.url.clone();
    let writers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(async move {
            let aws = sdk(&url).await;
            let g = drpilot::cloud::Rds::describe_global_cluster(&aws, "us-west-2", "acme-prod")
                .await
                .map_err(|e| format!("DescribeGlobalClusters: {e}"))?;
            Ok::<_, String>(
                g.members
                    .iter()
                    .filter(|m| m.is_writer)
                    .map(|m| m.region.clone())
                    .collect::<Vec<_>>(),
            )
        })?;
    out.insert(
        "global_cluster:acme-prod".to_string(),
        json!({ "writers": writers }),
    );
    let ec = emu.call("GET", "/_drpilot/elasticache", None)?;
    for (id, g) in ec["global_replication_groups"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let members = g["Members"].as_array().cloned().unwrap_or_default();
        let primary: Vec<&Value> = members
            .iter()
            .filter(|m| m["Role"] == "PRIMARY")
            .map(|m| &m["ReplicationGroupRegion"])
            .collect();
        let mut regions: Vec<&Value> = members
            .iter()
            .map(|m| &m["ReplicationGroupRegion"])
            .collect();
        regions.sort_by_key(|r| r.to_string());
        out.insert(
            format!("datastore:{id}"),
            json!({ "primary": primary, "members": regions }),
        );
    }
    let names = control_names(seed);
    let arc = emu.call("GET", "/_drpilot/arc", None)?;
    for (arn, c) in arc["routing_controls"].as_object().into_iter().flatten() {
        let name = names.get(arn).cloned().unwrap_or_else(|| arn.clone());
        out.insert(format!("routing_control:{name}"), c["State"].clone());
    }
    Ok(out)
}

/// The emulator's own record of the changes it applied: `GET /_drpilot/rds`,
/// `/_drpilot/elasticache` and `/_drpilot/arc` histories, and Route 53's changes.
pub fn histories(emu: &Emulator) -> Result<Value, String> {
    Ok(json!({
        "rds": emu.call("GET", "/_drpilot/rds", None)?["history"],
        "elasticache": emu.call("GET", "/_drpilot/elasticache", None)?["history"],
        "arc": emu.call("GET", "/_drpilot/arc", None)?["history"],
        "route53": emu.call("GET", "/_drpilot/route53", None)?["changes"],
    }))
}

/// drpilot's own SDK implementation, pointed at the emulator.
async fn sdk(url: &str) -> drpilot::cloud::aws::AwsCloud {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDCHAOSREADER",
            "chaos-reader",
            None,
            None,
            "chaos",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .load()
        .await;
    drpilot::cloud::aws::AwsCloud::from_sdk_config(config, Default::default())
}
