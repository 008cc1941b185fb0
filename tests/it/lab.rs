//! The local lab: a drill whose control planes are simulated and whose data planes are
//! real. The shipped runbooks run with `--sim-config` binding Aurora's two clusters to a
//! PostgreSQL primary/replica pair and the two Valkey replication groups to a redis
//! pair, all on 127.0.0.1 (see `local_servers`). The test cuts PostgreSQL replication the
//! moment the failover step starts, and the simulated `FailoverGlobalCluster` answers
//! 5 s later (a latency fault): the drill must report an RPO of about 5 s, measured
//! from the heartbeats it wrote, and an RPO of 0 for the failback (a switchover). The
//! promotions are real: after the drill the original primaries are primaries again and
//! the others replicate from them (the PostgreSQL one rebuilt by `chaos/lab/pg-follow`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::local_servers::{
    CLUSTER_PROBE_USER, PASSWORD_ENV, PG_USER, PgPair, RedisCluster, RedisPair, postgres_available,
    redis_available,
};

/// The redis pair has its own password (the PostgreSQL one is under [`PASSWORD_ENV`]).
const REDIS_PASSWORD_ENV: &str = "DRPILOT_IT_LAB_REDIS_PASSWORD";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How a lab binds the cache: one server per member (the shipped runbooks' cache
/// probes then say `cluster = true` no more: a single server refuses them), or both
/// members on one real cluster (the runbooks as shipped).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cache {
    Pair,
    Cluster,
}

/// A shipped runbook with its poll intervals shortened (the lab runs at real time) and,
/// for a cache bound to a pair, its cache probed as one node.
fn quick_copy(name: &str, dir: &Path, cache: Cache) -> PathBuf {
    let mut text = std::fs::read_to_string(root().join("runbooks").join(name)).unwrap();
    assert!(
        text.contains("\ncluster = true\n"),
        "{name} no longer probes a cluster"
    );
    if cache == Cache::Pair {
        text = text.replace("\ncluster = true\n", "\n");
    }
    let quick = ["30s", "10s", "5s"].iter().fold(text, |t, long| {
        t.replace(&format!("interval = \"{long}\""), "interval = \"1s\"")
    });
    let path = dir.join(name);
    std::fs::write(&path, quick).unwrap();
    path
}

/// The simulated timings of a lab drill: short, since a lab runs at real time.
const QUICK_TIMING: &str = "[timing]\naurora_pending = \"1s\"\naurora_failover = \"2s\"\n\
     aurora_switchover = \"3s\"\nsnapshot_create = \"1s\"\nsnapshot_copy = \"1s\"\n\
     replication_lag = [\"100ms\", \"300ms\"]\nvalkey_failover = \"2s\"\n\
     route53_insync = \"1s\"\nhealth_check_update = \"1s\"\nhealth_check_detect = \"1s\"\n\
     routing_control_propagation = \"1s\"\ns3_replication = \"1s\"\n\
     http_latency = \"20ms\"\naurora_modify = \"1s\"\necs_task_start = \"1s\"\n\
     ecs_task_stop = \"1s\"\nasg_instance_launch = \"1s\"\nasg_instance_terminate = \"1s\"\n\n";

fn lab_config(pg: &PgPair, redis: &RedisPair) -> String {
    let follow = |data: &Path| {
        let mut cmd = vec![
            root().join("chaos/lab/pg-follow").display().to_string(),
            data.display().to_string(),
        ];
        if let Some(user) = pg.run_as() {
            cmd.push(user.to_string());
        }
        cmd.iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pg_bind = |id: &str, port: u16, data: &Path| {
        format!(
            "[clusters.{id}.local]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{PG_USER}\"\n\
             password_env = \"{PASSWORD_ENV}\"\ndatabase = \"postgres\"\nfollow = [{}]\n\n",
            follow(data)
        )
    };
    let redis_bind = |id: &str, port: u16| {
        format!(
            "[replication_groups.{id}.local]\nhost = \"127.0.0.1\"\nport = {port}\n\
             user = \"default\"\npassword_env = \"{REDIS_PASSWORD_ENV}\"\n\n"
        )
    };
    format!(
        "{QUICK_TIMING}\
         # The failover answers 5 s after the test cut replication.\n\
         [[fault]]\nkind = \"latency\"\nservice = \"rds\"\n\
         operation = \"FailoverGlobalCluster\"\nlatency = \"5s\"\n\n{}{}{}{}",
        pg_bind("acme-prod-use1", pg.primary.port, &pg.primary.data),
        pg_bind("acme-prod-usw2", pg.replica.port, &pg.replica.data),
        redis_bind("acme-sessions-use1", redis.primary.port),
        redis_bind("acme-sessions-usw2", redis.replica.port),
    )
}

/// Runs `drpilot drill FAILOVER --failback FAILBACK` in the lab of `config` with `env`,
/// calling `on_event` with each NDJSON event as it comes; the exit status, the events
/// and drpilot's stderr. A drill that hangs is stopped by its pid after 5 minutes.
fn drill(
    dir: &Path,
    failover: &Path,
    failback: &Path,
    config: &Path,
    env: &[(&str, &str)],
    mut on_event: impl FnMut(&Value),
) -> (std::process::ExitStatus, Vec<Value>, String) {
    let stderr = std::fs::File::create(dir.join("stderr.txt")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(["--color", "never", "drill"])
        .arg(failover)
        .arg("--failback")
        .arg(failback)
        .arg("--sim-config")
        .arg(config)
        .args(["--sim", "--yes", "--soak", "2s", "--output", "json"])
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--report-dir")
        .arg(dir.join("reports"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("drpilot runs");
    let stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(300)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        on_event(&v);
        events.push(v);
    }
    let status = child.wait().unwrap();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let log = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the drill took over 5 minutes (stopped):\n{log}"
    );
    (status, events, log)
}

#[test]
fn a_drill_against_local_servers_measures_the_rpo_the_test_injected() {
    if !postgres_available() || !redis_available() {
        return;
    }
    let pg = PgPair::start();
    let redis = RedisPair::start();
    let dir = std::env::temp_dir().join(format!("lab-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let failover = quick_copy("region-failover.toml", &dir, Cache::Pair);
    let failback = quick_copy("failback.toml", &dir, Cache::Pair);
    let config = dir.join("lab.toml");
    std::fs::write(&config, lab_config(&pg, &redis)).unwrap();
    let mut cut_at = None;
    let (status, events, log) = drill(
        &dir,
        &failover,
        &failback,
        &config,
        &[
            (PASSWORD_ENV, pg.password.as_str()),
            (REDIS_PASSWORD_ENV, redis.password.as_str()),
            // The replication user's password, for pg-follow's pg_basebackup.
            ("PGPASSWORD", pg.password.as_str()),
        ],
        |v| {
            // Cut replication the moment the failover step starts.
            if cut_at.is_none() && v["event"] == "step_started" && v["step"] == "aurora-promote" {
                pg.cut_replication();
                cut_at = Some(Instant::now());
            }
        },
    );
    assert!(cut_at.is_some(), "the failover step never started:\n{log}");
    assert_eq!(status.code(), Some(0), "{log}");

    let drill: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reports/drill.json")).unwrap())
            .unwrap();
    let rpo = |phase: usize| drill["phases"][phase]["rpo"]["achieved_secs"].as_f64();
    let failover_rpo = rpo(0).unwrap_or_else(|| panic!("no RPO measured: {drill:#}\n{log}"));
    // Replication stopped ~5 s before the old writer was fenced; heartbeats are 1 s apart.
    assert!(
        (3.8..=6.5).contains(&failover_rpo),
        "failover RPO {failover_rpo}s, injected about 5s:\n{log}"
    );
    assert_eq!(rpo(1), Some(0.0), "a switchover loses nothing:\n{log}");
    eprintln!(
        "lab drill: failover RPO {failover_rpo}s (injected ~5s), RTO {:?}s; failback RPO {:?}s, RTO {:?}s",
        drill["phases"][0]["rto"]["achieved_secs"].as_f64(),
        rpo(1),
        drill["phases"][1]["rto"]["achieved_secs"].as_f64()
    );
    assert!(
        drill["phases"][0]["rto"]["achieved_secs"]
            .as_f64()
            .is_some()
    );
    assert_eq!(drill["result"], "succeeded");
    // Each phase's run_finished carries what it measured.
    let finished: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "run_finished")
        .collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0]["rpo_secs"].as_f64(), Some(failover_rpo));

    // The promotions were real, and the failback put everything back.
    assert!(!pg.primary.in_recovery(), "{}", pg.primary.log());
    assert!(
        pg.replica.in_recovery(),
        "the old writer follows again:\n{log}"
    );
    assert_eq!(redis.primary.role(), "master");
    assert_eq!(redis.replica.role(), "slave");
    let beats: u64 = pg
        .primary
        .sql("SELECT count(*) FROM drpilot_heartbeat")
        .parse()
        .unwrap();
    assert!(beats > 10, "{beats} heartbeats");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The cache as the seed's stack runs it, a 3-shard cluster: both members of the
/// Global Datastore are bound to one real cluster with replicas (docs/lab.md, "Valkey
/// in cluster mode"), us-east-1's member to the primaries and us-west-2's to their
/// replicas, and the shipped runbooks run as shipped (`cluster = true`). The test cuts
/// one shard's replication when the cache failover starts, and the simulated
/// `FailoverGlobalReplicationGroup` answers 5 s later: the cache's RPO is that shard's
/// loss, the other shards lose nothing, and the failback puts the primaries back.
#[test]
fn a_drill_with_the_cache_on_a_real_cluster_measures_the_cut_shards_loss() {
    if !redis_available() {
        return;
    }
    let c = RedisCluster::start();
    let shards = c.shards();
    let primaries: Vec<u16> = shards.iter().map(|(_, p, _)| *p).collect();
    let replicas: Vec<u16> = shards.iter().map(|(_, _, r)| *r).collect();
    let (cut_slots, cut_primary, _) = shards[2].clone();

    let dir = std::env::temp_dir().join(format!("lab-it-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let failover = quick_copy("region-failover.toml", &dir, Cache::Cluster);
    let failback = quick_copy("failback.toml", &dir, Cache::Cluster);
    let bind = |id: &str, ports: &[u16]| {
        let nodes: Vec<String> = ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
        format!(
            "[replication_groups.{id}.local]\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"{CLUSTER_PROBE_USER}\"\npassword_env = \"{REDIS_PASSWORD_ENV}\"\n\
             nodes = [{}]\n\n",
            ports[0],
            nodes.join(", ")
        )
    };
    let config = dir.join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "{QUICK_TIMING}# The cache failover answers 5 s after the test cut a shard.\n\
             [[fault]]\nkind = \"latency\"\nservice = \"elasticache\"\n\
             operation = \"FailoverGlobalReplicationGroup\"\nlatency = \"5s\"\n\n{}{}",
            bind("acme-sessions-use1", &primaries),
            bind("acme-sessions-usw2", &replicas),
        ),
    )
    .unwrap();

    let (mut cut, mut restored) = (false, false);
    let (status, events, log) = drill(
        &dir,
        &failover,
        &failback,
        &config,
        &[(REDIS_PASSWORD_ENV, c.password.as_str())],
        |v| {
            if !cut && v["event"] == "step_started" && v["step"] == "valkey-promote" {
                c.cut_replication(cut_primary);
                cut = true;
            }
            // Once failed over, the old primary may be replicated from again (the
            // failback makes it a primary).
            if cut && !restored && v["event"] == "run_finished" {
                c.restore_replication(cut_primary);
                restored = true;
            }
        },
    );
    assert!(cut, "the cache failover never started:\n{log}");
    assert_eq!(status.code(), Some(0), "{log}");

    let drill: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reports/drill.json")).unwrap())
            .unwrap();
    assert_eq!(drill["result"], "succeeded");
    let rpo = |phase: usize| drill["phases"][phase]["rpo"]["achieved_secs"].as_f64();
    let failover_rpo = rpo(0).unwrap_or_else(|| panic!("no RPO measured: {drill:#}\n{log}"));
    // The shard stopped replicating 5 s before the failover was accepted, and the
    // takeover came 2 s after that (the simulated failover's duration).
    assert!(
        (5.0..=10.0).contains(&failover_rpo),
        "failover RPO {failover_rpo}s, injected about 7s:\n{log}"
    );
    let rpo_summaries: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_succeeded" && e["step"] == "cache-rpo")
        .filter_map(|e| e["summary"].as_str())
        .collect();
    assert_eq!(rpo_summaries.len(), 2, "{events:#?}");
    let measured = rpo_summaries[0];
    assert!(
        measured.contains(&format!("in shard {cut_slots}, the worst of 3")),
        "{measured}"
    );
    for (slots, _, _) in &shards[..2] {
        assert!(measured.contains(&format!("{slots} 0s")), "{measured}");
    }
    assert_eq!(rpo(1), Some(0.0), "the failback loses nothing:\n{log}");
    eprintln!(
        "lab cluster drill: failover RPO {failover_rpo}s (shard {cut_slots} cut ~7s), \
         failback RPO {:?}s; {measured}",
        rpo(1)
    );

    // The takeovers were real, and the failback made us-east-1's nodes the primaries
    // again, each with its replica following.
    c.wait_primaries(&primaries);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `drpilot heartbeat FILE`: writes through the endpoint of the runbook's heartbeat step,
/// with its credentials, until `--for` is over; says what it does and when writes fail.
#[test]
fn the_heartbeat_command_writes_where_the_step_measures() {
    if !postgres_available() {
        return;
    }
    let pg = crate::local_servers::PgPrimary::start();
    let dir = std::env::temp_dir().join(format!("lab-it-hb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let runbook = dir.join("beats.toml");
    std::fs::write(
        &runbook,
        format!(
            "[runbook]\nname = \"beats\"\nmode = \"planned\"\n\n[[step]]\nid = \"db-rpo\"\n\
             action = \"postgres.heartbeat\"\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"{PG_USER}\"\npassword_env = \"{PASSWORD_ENV}\"\ninterval = \"500ms\"\n",
            pg.server.port
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(["heartbeat"])
        .arg(&runbook)
        .args(["--for", "3s"])
        .env(PASSWORD_ENV, &pg.server.password)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("writing for db-rpo (127.0.0.1:") && err.contains("every 500ms"),
        "{err}"
    );
    assert!(err.contains("heartbeat #1 written"), "{err}");
    assert!(
        !err.contains(&pg.server.password),
        "the password leaked: {err}"
    );
    let rows: u64 = pg
        .server
        .sql("SELECT count(*) FROM drpilot_heartbeat")
        .parse()
        .unwrap();
    assert!((4..=8).contains(&rows), "{rows} heartbeats in 3s at 500ms");
    // Consecutive numbers, each carrying the time of the one before.
    let gaps = pg.server.sql(
        "SELECT count(*) FROM drpilot_heartbeat b JOIN drpilot_heartbeat a \
         ON a.writer = b.writer AND a.seq = b.seq - 1 WHERE b.prev_at_ms <> a.at_ms",
    );
    assert_eq!(gaps, "0");

    // A wrong password: every write fails, said once, and nothing is counted.
    let out = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(["heartbeat"])
        .arg(&runbook)
        .args(["--for", "2s"])
        .env(PASSWORD_ENV, "not-the-password")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(err.matches("write failed").count(), 1, "{err}");
    assert!(!err.contains("not-the-password"), "{err}");

    // A runbook without heartbeat steps has nothing to write: a usage error.
    std::fs::write(
        &runbook,
        "[runbook]\nname = \"beats\"\nmode = \"planned\"\n\n[[step]]\nid = \"w\"\n\
         action = \"wait\"\nduration = \"1s\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drpilot"))
        .args(["heartbeat"])
        .arg(&runbook)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no postgres.heartbeat"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
