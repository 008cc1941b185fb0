//! Valkey cluster mode against a real cluster (`local_servers::RedisCluster`: three
//! shards with a replica each): `valkey.check` routes its canary to every shard's
//! primary, `valkey.heartbeat` and the heartbeat writer write each shard's heartbeats
//! behind a hash tag in its slots, and a shard whose replication was cut shows its
//! loss in that shard's measurement only.
//!
//! Issue 19 found `valkey.check` with `canary = true` failing 2 runs in 6 against a
//! 3-shard cluster with `MOVED`: one connection, no redirection. The canary keys land
//! in random slots, so a single run proves little: the check runs 20 times here.

use std::time::Duration;

use drpilot::actions::heartbeats::beat;
use drpilot::clock::Clock;
use drpilot::cloud::{ClusterMode, DataPlane, Endpoint, HeartbeatStore, HeartbeatTarget, Tls};
use drpilot::heartbeat::{Heartbeat, Writer};

use crate::dataplane::{Bed, plane, within};
use crate::local_servers::{
    CLUSTER_PROBE_USER, PASSWORD_ENV, RedisCluster, RedisPair, redis_available,
};

/// A `valkey.check` step at `port`, logging in as the probe user.
fn check_step(id: &str, port: u16, expect: &str, extra: &str) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"valkey.check\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nusername = \"{CLUSTER_PROBE_USER}\"\npassword_env = \"{PASSWORD_ENV}\"\n\
         expect = \"{expect}\"\n{extra}\n"
    )
}

/// A `valkey.heartbeat` step at `port`, logging in as the probe user.
fn beat_step(id: &str, port: u16) -> String {
    format!(
        "[[step]]\nid = \"{id}\"\naction = \"valkey.heartbeat\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nusername = \"{CLUSTER_PROBE_USER}\"\npassword_env = \"{PASSWORD_ENV}\"\n\
         interval = \"200ms\"\nwait = \"15s\"\n"
    )
}

/// Where `drpilot heartbeat` writes for [`beat_step`] (cluster mode detected).
fn beat_target(port: u16) -> HeartbeatTarget {
    HeartbeatTarget {
        endpoint: Endpoint {
            host: "127.0.0.1".into(),
            port,
            user: Some(CLUSTER_PROBE_USER.into()),
            password_env: Some(PASSWORD_ENV.into()),
            tls: Tls::Off,
        },
        store: HeartbeatStore::Valkey {
            key: "drpilot:heartbeat".into(),
            cluster: ClusterMode::Detect,
        },
    }
}

/// The shards' slots, in order, as the fixture lists them.
fn slots_of(c: &RedisCluster) -> Vec<String> {
    c.shards().into_iter().map(|(s, _, _)| s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_passes_the_canary_and_per_shard_heartbeats_every_time() {
    if !redis_available() {
        return;
    }
    let c = RedisCluster::start();
    let shards = c.shards();
    let seed = shards[0].1;
    // A replica as the seed: the topology leads to the primaries all the same.
    let replica_seed = shards[1].2;
    let bed = Bed::new(
        &[
            check_step("cache", seed, "primary", "canary = true"),
            check_step("via-replica", replica_seed, "primary", "canary = true"),
            check_step("forced", seed, "primary", "canary = true\ncluster = true"),
            check_step("one-node", seed, "primary", "cluster = false"),
            check_step("replicas", seed, "replica", ""),
            beat_step("beat", seed),
        ]
        .concat(),
        plane(&c.password),
    );
    let data = plane(&c.password);
    let target = beat_target(seed);
    let clock = Clock::real();
    let mut w = Writer::new();
    let listed = {
        let l: Vec<String> = shards
            .iter()
            .map(|(s, p, _)| format!("{s} at 127.0.0.1:{p} master"))
            .collect();
        l.join(", ")
    };
    within(async {
        for run in 1..=20 {
            for step in ["cache", "via-replica", "forced"] {
                let (passed, seen) = bed.observe(step).await;
                assert!(passed, "run {run}, {step}: {seen}");
                assert_eq!(
                    seen,
                    format!(
                        "127.0.0.1: cluster of 3 shards ({listed}), canary key ok in every shard"
                    ),
                    "run {run}, {step}"
                );
            }
            let written = beat(&mut w, &data, &target, &clock)
                .await
                .unwrap_or_else(|e| panic!("run {run}: heartbeats: {e}"));
            assert_eq!(written.len(), 3, "one per shard: {written:?}");
            assert!(written.iter().all(|b| b.seq == run), "{written:?}");
        }
        // Probed as one node it answers for itself (no canary: its key would belong to
        // another shard most of the time).
        assert_eq!(
            bed.observe("one-node").await,
            (true, "127.0.0.1 role master".into())
        );
        // Every shard's primary is a primary: none is the replica asked for.
        let (passed, seen) = bed.observe("replicas").await;
        assert!(!passed);
        for (slots, port, _) in &shards {
            assert!(
                seen.contains(&format!(
                    "shard {slots}: its primary 127.0.0.1:{port} has role master, expected replica"
                )),
                "{seen}"
            );
        }
        // The heartbeats flow in every shard, and nothing was lost.
        let (passed, seen) = bed.observe("beat").await;
        assert!(passed, "{seen}");
        assert!(seen.contains("in all 3 shards"), "{seen}");
        let (out, _) = tokio::join!(bed.measure("beat"), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            beat(&mut w, &data, &target, &clock).await.expect("written")
        });
        assert_eq!(out.rpo_secs, Some(0.0), "{}", out.observed);
        assert_eq!(
            out.observed,
            "RPO 0s: no heartbeat lost at 127.0.0.1 in any of its 3 shards (resolution 200ms)"
        );
        let m = out.measured.expect("measured");
        assert_eq!(m.worst_shard, None, "no shard lost anything");
        let measured: Vec<(&str, u64)> = m
            .shards
            .iter()
            .map(|s| (s.slots.as_str(), s.lost_heartbeats))
            .collect();
        let expected: Vec<(&str, u64)> = shards.iter().map(|(s, _, _)| (s.as_str(), 0)).collect();
        assert_eq!(measured, expected);
    })
    .await;
    // Each shard's primary holds its own canaries and its own heartbeats (21 each),
    // under the key its hash tag put there.
    for (slots, port, _) in &shards {
        let node = c.node(*port);
        // (Canaries expire after 60 s: some may be gone on a slow machine.)
        let canaries = node.cli(&["KEYS", "*drpilot:canary:*"]);
        assert!(
            canaries.lines().count() >= 1 && canaries.lines().all(|k| k.starts_with("{dp-")),
            "shard {slots}: {canaries}"
        );
        let key = node.cli(&["KEYS", "*drpilot:heartbeat"]);
        assert!(key.starts_with("{dp-"), "shard {slots}: {key}");
        assert_eq!(node.cli(&["ZCARD", &key]), "21", "shard {slots}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_replication_was_cut_shows_its_loss_and_the_others_do_not() {
    if !redis_available() {
        return;
    }
    let c = RedisCluster::start();
    let shards = c.shards();
    let (cut_slots, cut_primary, cut_replica) = shards[2].clone();
    let seed = shards[0].1;
    let bed = Bed::new(&beat_step("beat", seed), plane(&c.password));
    let data = plane(&c.password);
    let target = beat_target(seed);
    let clock = Clock::real();
    let mut w = Writer::new();
    // Rounds of heartbeats, one per shard each.
    let mut rounds: Vec<Vec<Heartbeat>> = Vec::new();
    within(async {
        for _ in 0..3 {
            rounds.push(beat(&mut w, &data, &target, &clock).await.expect("written"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    c.wait_replicated();
    // The third shard's replica stops receiving; its primary goes on acknowledging
    // five more rounds, which only it holds.
    c.cut_replication(cut_primary);
    within(async {
        for _ in 0..5 {
            rounds.push(beat(&mut w, &data, &target, &clock).await.expect("written"));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    // The replica takes over its shard without them (as after losing the primary).
    c.take_over(cut_replica);
    assert_ne!(c.shards()[2].1, cut_primary);
    let out = within(async {
        let (out, ()) = tokio::join!(bed.measure("beat"), async {
            // The next round reaches the new primary (through a MOVED when the seed's
            // topology still names the old one).
            tokio::time::sleep(Duration::from_millis(500)).await;
            let next = beat(&mut w, &data, &target, &clock).await.expect("written");
            assert_eq!(next.iter().map(|b| b.seq).collect::<Vec<_>>(), [9, 9, 9]);
        });
        out
    })
    .await;
    // Shard 3 lost rounds 4..=8: the window runs from round 3 (the last survivor) to
    // round 8 (the last lost), as the writer wrote them.
    let at = |round: usize| rounds[round - 1][2].at_ms;
    let window_ms = at(8) - at(3);
    let ms = |secs: f64| (secs * 1000.0).round() as i64;
    assert_eq!(out.rpo_secs.map(ms), Some(window_ms), "{}", out.observed);
    assert!(window_ms >= 1_200, "{window_ms}");
    let m = out.measured.expect("measured");
    assert_eq!(m.worst_shard.as_deref(), Some(cut_slots.as_str()));
    assert_eq!(m.lost_heartbeats, 5);
    let per: Vec<(String, u64, i64)> = m
        .shards
        .iter()
        .map(|s| (s.slots.clone(), s.lost_heartbeats, ms(s.rpo_secs)))
        .collect();
    let slots = slots_of(&c);
    assert_eq!(
        per,
        [
            (slots[0].clone(), 0, 0),
            (slots[1].clone(), 0, 0),
            (cut_slots.clone(), 5, window_ms),
        ]
    );
    assert!(
        out.observed.starts_with(&format!(
            "RPO {}s in shard {cut_slots}, the worst of 3: 5 acknowledged heartbeats missing \
             at 127.0.0.1 (per shard: {} 0s, {} 0s, {cut_slots} ",
            format_secs(window_ms),
            slots[0],
            slots[1]
        )),
        "{}",
        out.observed
    );
    // The new primary of shard 3 holds rounds 1-3 and 9; the others all nine.
    for (slots, port, _) in c.shards() {
        let node = c.node(port);
        let key = node.cli(&["KEYS", "*drpilot:heartbeat"]);
        let expected = if slots == cut_slots { "4" } else { "9" };
        assert_eq!(node.cli(&["ZCARD", &key]), expected, "shard {slots}");
    }
}

/// Milliseconds as the step's summary writes them (seconds to the tenth, rounded up;
/// no `.0`).
fn format_secs(ms: i64) -> String {
    let tenths = (ms + 99) / 100;
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_true_on_a_server_without_cluster_support_is_an_error_not_a_retry() {
    if !redis_available() {
        return;
    }
    let rs = RedisPair::start();
    let step = format!(
        "[[step]]\nid = \"forced\"\naction = \"valkey.check\"\nhost = \"127.0.0.1\"\n\
         port = {}\npassword_env = \"{PASSWORD_ENV}\"\nexpect = \"primary\"\ncluster = true\n",
        rs.primary.port
    );
    let bed = Bed::new(&step, plane(&rs.password));
    let e = within(bed.check("forced")).await.unwrap_err();
    assert_eq!(
        e.kind,
        drpilot::actions::ActionErrorKind::Permanent,
        "{e:?}"
    );
    assert!(e.message.contains("cluster support disabled"), "{e}");
    assert!(e.message.contains("cluster = true"), "{e}");
    assert!(!format!("{e:?}").contains(&rs.password));
    // Detected, it is one node, as before.
    let data = plane(&rs.password);
    let o = data
        .valkey(
            &Endpoint {
                host: "127.0.0.1".into(),
                port: rs.primary.port,
                user: None,
                password_env: Some(PASSWORD_ENV.into()),
                tls: Tls::Off,
            },
            ClusterMode::Detect,
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        (o.role.as_str(), o.canary_ok, o.cluster),
        ("master", Some(true), None)
    );
}

/// A write that starts at the wrong node follows MOVED; one to a slot being migrated
/// follows ASK (ASKING, then the command, at the importing node) and lands there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_and_ask_are_followed() {
    use drpilot::cloud::HeartbeatShard;
    use drpilot::cloud::cluster::key_slot;
    if !redis_available() {
        return;
    }
    let c = RedisCluster::start();
    let shards = c.shards();
    let data = plane(&c.password);
    let target = beat_target(shards[0].1);
    let mut listed = within(data.heartbeat_shards(&target)).await.unwrap();
    assert_eq!(listed.len(), 3);
    let id_of = |port: u16| {
        c.topology(c.node(port))
            .into_iter()
            .find(|n| n.port == port)
            .map(|n| n.id)
            .expect("the node lists itself")
    };
    let beat_at = |seq: u64| Heartbeat {
        writer: "it".into(),
        seq,
        at_ms: Clock::real().now().as_millisecond(),
        prev_at_ms: None,
    };
    // MOVED: the first shard's heartbeat sent to the second shard's primary.
    let mut stale: HeartbeatShard = listed.remove(0);
    stale.primary = Some(format!("127.0.0.1:{}", shards[1].1));
    within(data.heartbeat_write(&target, &stale, &beat_at(1), Duration::from_secs(3600)))
        .await
        .expect("followed MOVED");
    let key = stale.key("drpilot:heartbeat");
    assert_eq!(c.node(shards[0].1).cli(&["ZCARD", &key]), "1");

    // ASK: the second shard's tag slot migrates to the third shard's primary; its
    // heartbeat key does not exist yet, so the owner sends the write on.
    let moving = listed.remove(0);
    let slot = key_slot(moving.tag.as_deref().unwrap().as_bytes()).to_string();
    let (from, to) = (shards[1].1, shards[2].1);
    assert_eq!(
        c.node(to)
            .cli(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &id_of(from)]),
        "OK"
    );
    assert_eq!(
        c.node(from)
            .cli(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &id_of(to)]),
        "OK"
    );
    within(data.heartbeat_write(&target, &moving, &beat_at(1), Duration::from_secs(3600)))
        .await
        .expect("followed ASK");
    assert_eq!(c.node(to).cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot]), "1");
    assert_eq!(
        c.node(from).cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        "0"
    );
}
