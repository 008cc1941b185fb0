"""`start` and `seed` as the project calls them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

from conftest import ACCOUNT, EMULATOR_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_prints_one_url_line_and_stops_on_sigterm():
    port = free_port()
    proc = subprocess.Popen(
        [str(EMULATOR_DIR / "start"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT},
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line == f"http://127.0.0.1:{port}\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_drpilot/health", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": True, "account_id": ACCOUNT}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the URL line
    # The port is free again.
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_seed_cli_prints_generated_ids(emu):
    t = time.monotonic()
    out = subprocess.run(
        [str(EMULATOR_DIR / "seed"), str(EMULATOR_DIR / "topologies" / "prod.toml"), "--endpoint", emu.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    ids = json.loads(out.stdout)
    assert ids["account_id"] == ACCOUNT
    assert ids["aurora"]["global_cluster"]["arn"] == f"arn:aws:rds::{ACCOUNT}:global-cluster:acme-prod"
    assert ids["aurora"]["clusters"]["acme-prod-use1"]["arn"] == f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:acme-prod-use1"
    assert ids["aurora"]["clusters"]["acme-prod-usw2"]["arn"] == f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:acme-prod-usw2"
    assert ids["valkey"]["global_datastore"]["id"] == "ldgnf-acme-sessions"
    assert set(ids["valkey"]["members"]) == {"acme-sessions-use1", "acme-sessions-usw2"}
    # Cluster mode: 3 shards, the configuration endpoint, on both members alike.
    for rg_id, short in (("acme-sessions-use1", "use1"), ("acme-sessions-usw2", "usw2")):
        member = ids["valkey"]["members"][rg_id]
        assert (member["cluster_enabled"], member["shards"], member["node_type"]) == (True, 3, "cache.r7g.large")
        assert member["configuration_endpoint"].startswith(f"clustercfg.{rg_id}.")
        assert member["configuration_endpoint"].endswith(f".{short}.cache.amazonaws.com")
        assert member["primary_endpoint"] is None
    # ECS: ecs.REGION.CLUSTER.SERVICE.arn, settled; the Auto Scaling groups, InService.
    for region, counts in (("us-east-1", {"worker": 6, "api": 4}), ("us-west-2", {"worker": 1, "api": 2})):
        cluster = ids["ecs"][region]["acme-prod"]
        assert cluster["cluster_arn"] == f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/acme-prod"
        assert cluster["task_definition_arn"] == f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/acme-app:1"
        for name, desired in counts.items():
            assert cluster[name] == {
                "arn": f"arn:aws:ecs:{region}:{ACCOUNT}:service/acme-prod/{name}",
                "desired": desired,
                "running": desired,
                "pending": 0,
            }
    groups = ids["autoscaling"]["groups"]
    for name, region, sizes in (("acme-prod-ecs-use1", "us-east-1", (3, 6, 12)), ("acme-prod-ecs-usw2", "us-west-2", (1, 2, 12))):
        g = groups[name]
        assert (g["region"], g["min"], g["desired"], g["max"], g["instance_type"]) == (region, *sizes, "m7g.large")
        assert g["arn"].startswith(f"arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:")
        assert g["arn"].endswith(f":autoScalingGroupName/{name}")
        assert len(g["instances"]) == sizes[1] and g["launch_template"]["name"] == f"{name}-lt"
    assert set(ids["s3"]["buckets"]) == {"acme-prod-assets-use1", "acme-prod-assets-usw2"}
    zones = ids["route53"]["zones"]
    assert zones["acme.example."]["private"] is False and zones["acme.internal."]["private"] is True
    hc = ids["route53"]["health_checks"]["api-primary"]["id"]
    primary = next(r for r in zones["acme.example."]["records"] if r.get("Failover") == "PRIMARY")
    assert primary["HealthCheckId"] == hc
    # ARC: cluster, control panel, routing controls, safety rule, and the health checks
    # that steer the private zone's failover pairs.
    arc = ids["arc"]
    prefix = f"arn:aws:route53-recovery-control::{ACCOUNT}:"
    assert arc["cluster"]["arn"].startswith(prefix + "cluster/")
    assert [e["region"] for e in arc["cluster"]["endpoints"]] == ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]
    assert {e["endpoint"] for e in arc["cluster"]["endpoints"]} == {emu.url}
    panel = arc["control_panel"]["arn"]
    assert panel.startswith(prefix + "controlpanel/")
    assert {n: (rc["arn"].startswith(panel + "/routingcontrol/"), rc["state"]) for n, rc in arc["routing_controls"].items()} == {
        "cell-use1": (True, "On"),
        "cell-usw2": (True, "Off"),
    }
    assert arc["safety_rules"]["at-least-one-cell-on"]["arn"].startswith(panel + "/safetyrule/")
    dp = emu.client("route53-recovery-cluster", "ap-southeast-2")
    assert dp.get_routing_control_state(RoutingControlArn=arc["routing_controls"]["cell-use1"]["arn"])["RoutingControlState"] == "On"
    hcs = ids["route53"]["health_checks"]
    r53 = emu.client("route53")
    for name, cell in (("rc-use1", "cell-use1"), ("rc-usw2", "cell-usw2")):
        config = r53.get_health_check(HealthCheckId=hcs[name]["id"])["HealthCheck"]["HealthCheckConfig"]
        assert config["RoutingControlArn"] == arc["routing_controls"][cell]["arn"]
    expected = {
        "db-writer.acme.internal.": ("acme-prod-use1", "acme-prod-usw2"),
        "cache.acme.internal.": ("acme-sessions-use1", "acme-sessions-usw2"),
    }
    for name, (a, b) in expected.items():
        pair = {r["Failover"]: r for r in zones["acme.internal."]["records"] if r["Name"] == name}
        values = {role: (r["SetIdentifier"], r["HealthCheckId"], r["ResourceRecords"][0]["Value"]) for role, r in pair.items()}
        if name.startswith("db-writer"):
            ends = (ids["aurora"]["clusters"][a]["endpoint"], ids["aurora"]["clusters"][b]["endpoint"])
        else:
            ends = (ids["valkey"]["members"][a]["configuration_endpoint"], ids["valkey"]["members"][b]["configuration_endpoint"])
        assert values == {
            "PRIMARY": ("use1", hcs["rc-use1"]["id"], ends[0]),
            "SECONDARY": ("usw2", hcs["rc-usw2"]["id"], ends[1]),
        }
    listed = r53.list_resource_record_sets(HostedZoneId=zones["acme.example."]["id"])["ResourceRecordSets"]
    assert sorted(r.get("Failover") for r in listed if r["Name"] == "api.acme.example.") == ["PRIMARY", "SECONDARY"]
    assert time.monotonic() - t < 60


def test_seed_cli_rejects_a_bad_topology(emu, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[aurora]\nglobal_cluster = "x"\n[[aurora.clusters]]\nid = "a"\nregion = "us-east-1"\nrole = "secondary"\n')
    out = subprocess.run(
        [str(EMULATOR_DIR / "seed"), str(bad), "--endpoint", emu.url], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "exactly one cluster" in out.stderr and out.stdout == ""


def test_seed_twice_reports_the_aws_error(emu, stack):
    out = subprocess.run(
        [str(EMULATOR_DIR / "seed"), str(EMULATOR_DIR / "topologies" / "prod.toml"), "--endpoint", emu.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and out.stdout == ""
    assert "DBClusterAlreadyExists" in out.stderr
