"""One-service outages: a blackhole with `services` takes down only those services of a
Region (by the SigV4 signing name), and the extensions ask about their own service.

Every test sets the blackhole first and acts after, so nothing depends on how two
requests interleave on a loaded machine."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

SRC, DST = "acme-prod-assets-use1", "acme-prod-assets-usw2"
GID = "ldgnf-acme-sessions"
DROPPED = (ConnectionClosedError, EndpointConnectionError)


def blackhole(emu, region, expect=200, **spec):
    return emu.control("POST", "/_drpilot/blackholes", {"region": region, **spec}, expect=expect)


def blackholes(emu):
    return {b["region"]: b for b in emu.control("GET", "/_drpilot/blackholes")["blackholes"]}


def gc_of(emu, region="us-west-2", gid="acme-prod"):
    return emu.client("rds", region).describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]


def error(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def head_status(s3, bucket, key):
    return s3.head_object(Bucket=bucket, Key=key).get("ReplicationStatus")


def answered(url, timeout):
    """True when the server answers with any HTTP status, False when it does not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
        return True
    except urllib.error.HTTPError:
        return True
    except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException):
        return False


def test_s3_only_hold_blackhole_holds_s3_and_rds_answers(emu):
    entry = blackhole(emu, "us-east-1", mode="hold", hold_seconds=2, services=["s3"])
    assert entry == {"region": "us-east-1", "mode": "hold", "services": ["s3"], "dropped": 0, "hold_seconds": 2.0}
    s3 = emu.client("s3", "us-east-1", read_timeout=0.5, connect_timeout=1)
    t = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        s3.list_buckets()
    assert time.monotonic() - t < 3
    # The same Region's RDS answers, and so does S3 in another Region.
    assert emu.client("rds", "us-east-1", read_timeout=5).describe_global_clusters()["GlobalClusters"] == []
    emu.client("s3", "us-west-2", read_timeout=5).list_buckets()
    # A presigned SigV4 URL carries its scope in the query string: held as well.
    url = emu.client("s3", "us-east-1", signature_version="s3v4").generate_presigned_url("list_buckets", ExpiresIn=300)
    assert "X-Amz-Credential" in url and "%2Fus-east-1%2Fs3%2F" in url
    t = time.monotonic()
    assert answered(url, timeout=0.5) is False
    assert time.monotonic() - t < 3
    assert answered(emu.client("s3", "us-west-2", signature_version="s3v4").generate_presigned_url("list_buckets", ExpiresIn=300), timeout=5)
    # Only the two S3 requests scoped to us-east-1 were dropped.
    assert blackholes(emu)["us-east-1"]["dropped"] == 2
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    emu.client("s3", "us-east-1").list_buckets()


def test_cloudwatch_is_the_monitoring_signing_name(emu):
    entry = blackhole(emu, "us-west-2", mode="reset", services=["cloudwatch"])
    assert entry["services"] == ["monitoring"]
    with pytest.raises(DROPPED):
        emu.client("cloudwatch", "us-west-2").list_metrics()
    emu.client("cloudwatch", "us-east-1").list_metrics()
    emu.client("rds", "us-west-2").describe_db_clusters()
    emu.client("s3", "us-west-2").list_buckets()
    assert blackholes(emu)["us-west-2"]["dropped"] == 1


def test_rds_only_outage_refuses_switchover_and_s3_replication_completes(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    src = emu.client("s3", "us-east-1")
    dst = emu.client("s3", "us-west-2")

    # RDS down in the secondary's Region: the switchover, sent to the primary's Region
    # as AWS requires, is refused as for a whole-Region outage.
    blackhole(emu, "us-west-2", mode="reset", services=["rds"])
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(ei)[:2] == ("InvalidGlobalClusterStateFault", 400)

    # RDS down in us-east-1 (the primary's Region). A switchover request for us-east-1
    # gets no answer at all; sent to us-west-2 (with the call-Region check off) it is
    # refused exactly as while the whole of us-east-1 is down.
    emu.control("DELETE", "/_drpilot/blackholes/us-west-2")
    emu.config({"rds": {"enforce_call_region": False}})
    blackhole(emu, "us-east-1", mode="reset", services=["rds"])
    with pytest.raises(DROPPED):
        emu.client("rds", "us-east-1").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    rds_usw2 = emu.client("rds", "us-west-2")
    with pytest.raises(ClientError) as partial:
        rds_usw2.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(partial)[:2] == ("InvalidGlobalClusterStateFault", 400)

    # S3 is up in both Regions: replication from us-east-1 to us-west-2 completes.
    src.put_object(Bucket=SRC, Key="rds-outage/1", Body=b"still replicating")
    emu.wait(lambda: head_status(src, SRC, "rds-outage/1") == "COMPLETED")
    obj = dst.get_object(Bucket=DST, Key="rds-outage/1")
    assert obj["Body"].read() == b"still replicating" and obj["ReplicationStatus"] == "REPLICA"

    # The whole Region down: the same refusal.
    emu.control("DELETE", "/_drpilot/blackholes")
    blackhole(emu, "us-east-1", mode="reset")
    with pytest.raises(ClientError) as whole:
        rds_usw2.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(whole) == error(partial)
    assert gc_of(emu)["Status"] == "available"


def test_s3_only_outage_holds_replication_but_not_rds(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    emu.speed(100)
    src = emu.client("s3", "us-east-1")
    # S3 down in the destination's Region, before the write: the version stays PENDING.
    blackhole(emu, "us-west-2", mode="reset", services=["s3"])
    src.put_object(Bucket=SRC, Key="s3-outage/1", Body=b"1")
    time.sleep(0.2)  # 20 emulated seconds, twenty times the delay
    assert head_status(src, SRC, "s3-outage/1") == "PENDING"
    # RDS in us-west-2 is up: a switchover is accepted.
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    gc = emu.client("rds", "us-east-1").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)[
        "GlobalCluster"
    ]
    assert gc["Status"] == "switching-over"
    # Replacing the entry with an RDS-only one brings S3 back: replication completes.
    blackhole(emu, "us-west-2", mode="reset", services=["rds"])
    assert list(blackholes(emu)) == ["us-west-2"] and blackholes(emu)["us-west-2"]["services"] == ["rds"]
    emu.wait(lambda: head_status(src, SRC, "s3-outage/1") == "COMPLETED")


def test_unplanned_failover_rebuild_waits_for_rds_only(emu, stack):
    blackhole(emu, "us-east-1", mode="reset", services=["rds"])
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    emu.client("rds", "us-west-2").failover_global_cluster(
        GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True
    )
    done = emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)
    old = next(m for m in done["GlobalClusterMembers"] if not m["IsWriter"])
    assert old["SynchronizationStatus"] == "pending-resync"
    assert emu.control("GET", "/_drpilot/rds")["pending_rebuilds"][0]["cluster_id"] == "acme-prod-use1"
    # Now only S3 is down in us-east-1 (the entry is replaced): RDS is back, the old
    # primary is rebuilt.
    blackhole(emu, "us-east-1", mode="reset", services=["s3"])
    emu.wait(lambda: all(m.get("SynchronizationStatus") == "connected" for m in gc_of(emu)["GlobalClusterMembers"]))
    assert emu.control("GET", "/_drpilot/rds")["pending_rebuilds"] == []


def test_valkey_failover_keys_on_elasticache(emu, stack):
    emu.speed(100)
    ec = emu.client("elasticache", "us-west-2")
    blackhole(emu, "us-east-1", mode="reset", services=["elasticache"])
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
        )
    assert error(ei)[:2] == ("InvalidGlobalReplicationGroupState", 400)
    # RDS and S3 down in us-east-1, ElastiCache up: the failover goes ahead.
    blackhole(emu, "us-east-1", mode="reset", services=["rds", "s3"])
    g = ec.failover_global_replication_group(
        GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
    )["GlobalReplicationGroup"]
    assert g["Status"] == "modifying"


@pytest.mark.parametrize(
    "services,needle",
    [
        ([], "non-empty list"),
        ("s3", "non-empty list"),
        ({"s3": True}, "non-empty list"),
        (["s3", "bogus"], "'bogus'"),
        (["*"], "'*'"),
        ([1], "1"),
        (["ec2"], "'ec2'"),
    ],
)
def test_bad_services_is_400(emu, services, needle):
    blackhole(emu, "eu-west-1", mode="reset", services=["rds"])
    err = blackhole(emu, "eu-west-1", expect=400, mode="reset", services=services)["error"]
    assert "services" in err and needle in err, err
    # Nothing changed: the Region's previous entry stands.
    assert blackholes(emu)["eu-west-1"]["services"] == ["rds"]


def test_other_bad_blackhole_input_is_400(emu):
    blackhole(emu, "us-east-1", expect=400, mode="drop", services=["s3"])
    blackhole(emu, "us-east-1", expect=400, hold_seconds=-1, services=["s3"])
    emu.control("POST", "/_drpilot/blackholes", {"services": ["s3"]}, expect=400)
    assert blackholes(emu) == {}


def test_get_shows_services_and_dropped_counts(emu):
    assert blackhole(emu, "us-east-1", mode="reset", services=["s3", "S3", "route53"])["services"] == ["s3", "route53"]
    assert blackhole(emu, "us-west-2", mode="reset")["services"] is None
    assert blackhole(emu, "eu-west-1", mode="reset", services=None)["services"] is None
    with pytest.raises(DROPPED):
        emu.client("s3", "us-east-1").list_buckets()
    with pytest.raises(DROPPED):
        emu.client("route53", "us-east-1").list_hosted_zones()
    emu.client("rds", "us-east-1").describe_db_clusters()
    with pytest.raises(DROPPED):
        emu.client("rds", "us-west-2").describe_db_clusters()
    assert blackholes(emu) == {
        "us-east-1": {"region": "us-east-1", "mode": "reset", "services": ["s3", "route53"], "dropped": 2},
        "us-west-2": {"region": "us-west-2", "mode": "reset", "services": None, "dropped": 1},
        "eu-west-1": {"region": "eu-west-1", "mode": "reset", "services": None, "dropped": 0},
    }
    state = emu.control("GET", "/_drpilot/state")["faults"]["blackholes"]
    assert {b["region"]: (b["services"], b["dropped"]) for b in state} == {
        "us-east-1": (["s3", "route53"], 2),
        "us-west-2": (None, 1),
        "eu-west-1": (None, 0),
    }
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    emu.client("s3", "us-east-1").list_buckets()
    assert set(blackholes(emu)) == {"us-west-2", "eu-west-1"}
    emu.control("DELETE", "/_drpilot/blackholes")
    assert blackholes(emu) == {}
