"""CloudWatch: the GetMetricData slice, over JSON (boto3's default) and RPC v2 CBOR."""

from __future__ import annotations

import datetime
import time

import botocore.model
import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def cbor(monkeypatch):
    """Make botocore pick smithy-rpc-v2-cbor for CloudWatch, as newer SDKs do."""
    order = ("smithy-rpc-v2-cbor",) + tuple(p for p in botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS if p != "smithy-rpc-v2-cbor")
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order)


def lag_query(metric="AuroraGlobalDBRPOLag", stat="Maximum", period=60, cluster="acme-prod-usw2", qid="lag"):
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": "AWS/RDS", "MetricName": metric, "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cluster}]},
            "Period": period,
            "Stat": stat,
        },
    }


def window(minutes=5):
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(minutes=minutes), now + datetime.timedelta(minutes=1)


def test_cbor_protocol_is_bridged(emu, stack, cbor):
    cw = emu.client("cloudwatch", "us-west-2")
    assert cw.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    seen = []
    cw.meta.events.register("before-send.*", lambda request, **kw: seen.append(dict(request.headers)))
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 750})
    start, end = window()
    res = cw.get_metric_data(MetricDataQueries=[lag_query()], StartTime=start, EndTime=end)
    assert seen[0].get("smithy-protocol") in (b"rpc-v2-cbor", "rpc-v2-cbor")
    values = res["MetricDataResults"][0]["Values"]
    assert values[0] == 750.0
    ts = res["MetricDataResults"][0]["Timestamps"][0]
    assert isinstance(ts, datetime.datetime) and ts.second == 0
    # Operations we don't extend reach moto through the bridge too.
    cw.put_metric_data(Namespace="Acme/App", MetricData=[{"MetricName": "Canary", "Value": 1.0, "Unit": "Count"}])
    metrics = cw.list_metrics(Namespace="Acme/App")["Metrics"]
    assert [m["MetricName"] for m in metrics] == ["Canary"]
    # Faults keep their shape over CBOR.
    emu.control("POST", "/_drpilot/faults", {"kind": "throttle", "service": "cloudwatch", "count": 1})
    with pytest.raises(ClientError) as ei:
        emu.client("cloudwatch", "us-west-2", retries=1).list_metrics()
    assert ei.value.response["Error"]["Code"] == "Throttling"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_lag_history_and_statistics(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    emu.config({"rds": {"default_lag_ms": 50}})  # in effect until the first change
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 100})
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 300})
    start, end = window()
    res = cw.get_metric_data(
        MetricDataQueries=[
            lag_query(stat="Maximum", qid="max"),
            lag_query(stat="Minimum", qid="min"),
            lag_query(metric="AuroraGlobalDBReplicationLag", stat="Average", qid="avg"),
            {"Id": "other", "MetricStat": {"Metric": {"Namespace": "Acme/App", "MetricName": "Nothing"}, "Period": 60, "Stat": "Sum"}},
        ],
        StartTime=start,
        EndTime=end,
    )
    by_id = {r["Id"]: r["Values"] for r in res["MetricDataResults"]}
    assert by_id["max"][0] == 300.0
    assert by_id["min"][0] == 50.0
    assert 50.0 <= by_id["avg"][0] <= 300.0
    assert by_id["other"] == []
    # The primary publishes no RPO lag.
    res = emu.client("cloudwatch", "us-east-1").get_metric_data(
        MetricDataQueries=[lag_query(cluster="acme-prod-use1")], StartTime=start, EndTime=end
    )
    assert res["MetricDataResults"][0]["Values"] == []


def test_default_lag_is_configurable(emu, stack):
    emu.config({"rds": {"default_lag_ms": 42}})
    start, end = window()
    res = emu.client("cloudwatch", "us-west-2").get_metric_data(MetricDataQueries=[lag_query()], StartTime=start, EndTime=end)
    assert res["MetricDataResults"][0]["Values"][0] == 42.0


def newest(cw, query, minutes=15):
    """(timestamp as epoch seconds, value) of the newest datapoint, or None."""
    now = datetime.datetime.now(datetime.timezone.utc)
    res = cw.get_metric_data(MetricDataQueries=[query], StartTime=now - datetime.timedelta(minutes=minutes), EndTime=now)
    result = res["MetricDataResults"][0]
    if not result["Values"]:
        return None
    return result["Timestamps"][0].timestamp(), result["Values"][0]


def test_a_secondary_publishes_no_lag_while_its_primarys_region_is_dark(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 2000})
    before = time.time()
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    after = time.time()
    # Ten minutes into the outage: the datapoints from before it are still there, with
    # their value, and nothing newer came (for either metric).
    emu.config({"cloudwatch": {"time_skip_seconds": 600}})
    for metric in ("AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"):
        found = newest(cw, lag_query(metric=metric))
        assert found is not None, metric
        at, value = found
        assert value == 2000.0, metric
        assert at <= after - 600, (metric, after - 600 - at)
        assert at > before - 600 - 60, (metric, before - 600 - at)
    # The Region comes back: the metric goes on from then.
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    emu.config({"cloudwatch": {"time_skip_seconds": 0}})
    at, value = newest(cw, lag_query())
    assert value == 2000.0
    assert at >= time.time() - 60


def test_the_lag_of_a_secondary_whose_own_rds_is_down_stops_too(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset", "services": ["rds"]})
    after = time.time()
    emu.config({"cloudwatch": {"time_skip_seconds": 300}})
    at, _ = newest(cw, lag_query())
    assert at <= after - 300


def test_other_outages_leave_the_lag_metrics_alone(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    # S3 and CloudWatch down in the primary's Region: RDS and its replication are up.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset", "services": ["s3", "monitoring"]})
    emu.config({"cloudwatch": {"time_skip_seconds": 300}})
    at, value = newest(cw, lag_query())
    assert value == 500.0
    assert at >= time.time() - 60


def test_the_time_skip_ages_what_was_recorded_and_nothing_else(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 900})
    emu.config({"cloudwatch": {"time_skip_seconds": 300}})
    # No outage: the lag went on for those 300 s, so there are datapoints up to now,
    # and the series reaches back 300 s before the cluster was created.
    now = datetime.datetime.now(datetime.timezone.utc)
    res = cw.get_metric_data(MetricDataQueries=[lag_query()], StartTime=now - datetime.timedelta(minutes=15), EndTime=now)
    stamps = [t.timestamp() for t in res["MetricDataResults"][0]["Timestamps"]]
    assert stamps[0] >= time.time() - 60
    assert len(stamps) >= 5, stamps
    assert res["MetricDataResults"][0]["Values"][0] == 900.0
    # Reset puts it back to 0.
    emu.control("POST", "/_drpilot/reset")
    assert emu.control("GET", "/_drpilot/config")["cloudwatch"]["time_skip_seconds"] == 0


def test_a_cluster_publishes_the_lag_metrics_it_is_set_to(emu, stack):
    cw = emu.client("cloudwatch", "us-west-2")
    arn = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    both = ["AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"]
    assert emu.control("GET", "/_drpilot/rds/clusters/acme-prod-usw2/metrics") == {"cluster": arn, "metrics": both}
    # An Aurora MySQL version without RPO lag: only AuroraGlobalDBReplicationLag.
    got = emu.control("POST", f"/_drpilot/rds/clusters/{arn}/metrics", {"metrics": ["AuroraGlobalDBReplicationLag"]})
    assert got == {"cluster": arn, "metrics": ["AuroraGlobalDBReplicationLag"]}
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 1500})
    start, end = window()
    res = cw.get_metric_data(
        MetricDataQueries=[lag_query(qid="rpo"), lag_query(metric="AuroraGlobalDBReplicationLag", qid="replication")],
        StartTime=start,
        EndTime=end,
    )
    by_id = {r["Id"]: r["Values"] for r in res["MetricDataResults"]}
    assert by_id == {"rpo": [], "replication": [1500.0]}
    assert emu.control("GET", "/_drpilot/rds")["lag_metrics"] == {arn: ["AuroraGlobalDBReplicationLag"]}
    # Only RPO lag, then back to both with null.
    emu.control("POST", "/_drpilot/rds/clusters/acme-prod-usw2/metrics", {"metrics": ["AuroraGlobalDBRPOLag"]})
    assert newest(cw, lag_query(metric="AuroraGlobalDBReplicationLag")) is None
    assert newest(cw, lag_query())[1] == 1500.0
    emu.control("POST", "/_drpilot/rds/clusters/acme-prod-usw2/metrics", {"metrics": None})
    assert emu.control("GET", "/_drpilot/rds")["lag_metrics"] == {}
    assert newest(cw, lag_query(metric="AuroraGlobalDBReplicationLag"))[1] == 1500.0
    # Bad bodies and unknown clusters.
    for body in ({}, {"metrics": []}, {"metrics": ["CPUUtilization"]}, {"metrics": "AuroraGlobalDBRPOLag"}, None):
        emu.control("POST", "/_drpilot/rds/clusters/acme-prod-usw2/metrics", body, expect=400)
    emu.control("POST", "/_drpilot/rds/clusters/nope/metrics", {"metrics": None}, expect=404)
    emu.control("GET", "/_drpilot/rds/clusters/nope/metrics", expect=404)
    # A full reset forgets the choice.
    emu.control("POST", f"/_drpilot/rds/clusters/{arn}/metrics", {"metrics": ["AuroraGlobalDBReplicationLag"]})
    emu.control("POST", "/_drpilot/reset")
    assert emu.control("GET", "/_drpilot/rds")["lag_metrics"] == {}


def test_aggregate_covers_only_the_published_time():
    from drpilot_emulator.ext.cloudwatch import aggregate

    t0 = (int(time.time()) // 60) * 60 - 600  # ten minutes ago, on a minute
    changes = [(t0 + 30, 100.0), (t0 + 90, 300.0)]
    # Published from t0, dark from t0 + 80 to t0 + 200.
    points = aggregate(changes, 10.0, t0, t0, t0 + 240, 60, "Maximum", [(t0 + 80, t0 + 200)])
    assert points == [(float(t0 + 180), 300.0), (float(t0 + 60), 100.0), (float(t0), 100.0)]
    points = aggregate(changes, 10.0, t0, t0, t0 + 240, 60, "Average", [(t0 + 80, t0 + 200)])
    # [t0+60, t0+80) at 100; [t0+200, t0+240) at 300; [t0, t0+30) 10 and [t0+30, t0+60) 100.
    assert points == [(float(t0 + 180), 300.0), (float(t0 + 60), 100.0), (float(t0), 55.0)]
    # A gap that never ends: nothing after it starts.
    assert aggregate(changes, 10.0, t0, t0, t0 + 600, 60, "Maximum", [(t0 + 60, float("inf"))]) == [(float(t0), 100.0)]


def status_query(hid, stat="Minimum", qid="status", extra_dims=()):
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/Route53",
                "MetricName": "HealthCheckStatus",
                "Dimensions": [{"Name": "HealthCheckId", "Value": hid}, *extra_dims],
            },
            "Period": 60,
            "Stat": stat,
        },
    }


def set_endpoint(emu, hid, healthy):
    emu.control("POST", f"/_drpilot/route53/health-checks/{hid}", {"healthy": healthy})


def test_health_check_status_is_published_in_us_east_1_only(emu, stack):
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]
    at, value = newest(emu.client("cloudwatch", "us-east-1"), status_query(hid))
    assert value == 1.0
    assert at >= time.time() - 60 and at % 60 == 0
    # Another Region has no datapoints for it; nor has an unknown health check, or a
    # query with other dimensions.
    for region in ("us-west-2", "eu-west-1"):
        assert newest(emu.client("cloudwatch", region), status_query(hid)) is None, region
    cw = emu.client("cloudwatch", "us-east-1")
    assert newest(cw, status_query("0d9c5a3e-1111-4222-8333-444455556666")) is None
    assert newest(cw, status_query(hid, extra_dims=[{"Name": "Region", "Value": "us-east-1"}])) is None
    # One datapoint per minute, each stamped with the start of its minute.
    emu.config({"cloudwatch": {"time_skip_seconds": 300}})
    now = datetime.datetime.now(datetime.timezone.utc)
    res = cw.get_metric_data(MetricDataQueries=[status_query(hid)], StartTime=now - datetime.timedelta(minutes=15), EndTime=now)
    stamps = [t.timestamp() for t in res["MetricDataResults"][0]["Timestamps"]]
    assert len(stamps) >= 5, stamps
    assert all(a - b == 60 for a, b in zip(stamps, stamps[1:])), stamps
    assert set(res["MetricDataResults"][0]["Values"]) == {1.0}


def test_health_check_status_follows_the_reported_status(emu, stack):
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]
    # The first reads need both changes in the same minute.
    while time.time() % 60 > 50:
        time.sleep(0.5)
    cw = emu.client("cloudwatch", "us-east-1")
    r53 = emu.client("route53")
    set_endpoint(emu, hid, False)
    assert newest(cw, status_query(hid))[1] == 0.0
    # Healthy again: the minute's Minimum stays 0 (it was unhealthy in it), its Maximum is 1.
    set_endpoint(emu, hid, True)
    assert newest(cw, status_query(hid))[1] == 0.0
    assert newest(cw, status_query(hid, stat="Maximum"))[1] == 1.0
    # Two minutes later with nothing changing, a whole healthy minute: 1.
    emu.config({"cloudwatch": {"time_skip_seconds": 120}})
    assert newest(cw, status_query(hid))[1] == 1.0
    # Inverted and Disabled, as GetHealthCheckStatus reports them (a disabled check is
    # healthy; disabled and inverted, unhealthy). Each change read two minutes on, a
    # whole minute of the new status (Minimum and Maximum agree).
    for kwargs, want in (
        ({"Inverted": True}, 0.0),
        ({"Inverted": False, "Disabled": True}, 1.0),
        ({"Inverted": True}, 0.0),
        ({"Inverted": False, "Disabled": False}, 1.0),
    ):
        r53.update_health_check(HealthCheckId=hid, **kwargs)
        for stat in ("Minimum", "Maximum"):
            assert newest(cw, status_query(hid, stat=stat))[1] == want, (kwargs, stat)
    # Deleted: what was published stays, and nothing more comes.
    emu.config({"cloudwatch": {"time_skip_seconds": 0}})
    r53.delete_health_check(HealthCheckId=hid)
    deleted = time.time()
    assert newest(cw, status_query(hid, stat="Maximum"))[1] == 1.0
    emu.config({"cloudwatch": {"time_skip_seconds": 300}})
    at, _ = newest(cw, status_query(hid))
    assert at <= deleted - 300


def test_a_health_check_status_change_shows_after_the_checkers_delay(emu, stack):
    emu.config({"route53": {"health_check_delay_seconds": 60}})  # 0.3 s at speed 200
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]
    cw = emu.client("cloudwatch", "us-east-1")
    set_endpoint(emu, hid, False)
    assert newest(cw, status_query(hid))[1] == 1.0, "not reported yet"
    emu.wait(lambda: newest(cw, status_query(hid))[1] == 0.0)


def test_a_recovery_control_health_check_publishes_its_routing_control(emu, stack):
    cw = emu.client("cloudwatch", "us-east-1")
    state = emu.control("GET", "/_drpilot/route53")["health_checks"]
    for name in ("rc-use1", "rc-usw2"):
        hid = stack["route53"]["health_checks"][name]["id"]
        want = 1.0 if state[hid]["reported_healthy"] else 0.0
        assert newest(cw, status_query(hid, stat="Maximum"))[1] == want, name


def test_health_check_status_is_not_published_while_us_east_1_is_dark(emu, stack):
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]
    cw = emu.client("cloudwatch", "us-east-1")
    # us-east-1 down as a whole: the endpoint fails and recovers meanwhile, and nothing
    # of that is ever published (the reads in the outage are dropped themselves).
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    set_endpoint(emu, hid, False)
    time.sleep(0.05)
    set_endpoint(emu, hid, True)
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    assert newest(cw, status_query(hid))[1] == 1.0
    # A one-service outage there (Route 53's control plane) leaves it alone.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset", "services": ["route53"]})
    set_endpoint(emu, hid, False)
    assert newest(cw, status_query(hid))[1] == 0.0


def test_serverless_database_capacity_is_published_for_serverless_clusters_in_their_region(emu, stack):
    query = lambda cluster: lag_query(metric="ServerlessDatabaseCapacity", cluster=cluster, qid="acu")  # noqa: E731
    start, end = window()

    def newest(region, cluster):
        res = emu.client("cloudwatch", region).get_metric_data(MetricDataQueries=[query(cluster)], StartTime=start, EndTime=end)
        values = res["MetricDataResults"][0]["Values"]
        return values[0] if values else None

    # Until something is set, a cluster runs at its MinCapacity.
    assert newest("us-east-1", "acme-prod-use1") == 2.0
    emu.control("POST", "/_drpilot/rds/capacity", {"cluster": "acme-prod-use1", "acu": 24.5})
    assert newest("us-east-1", "acme-prod-use1") == 24.5
    # In its own Region only.
    assert newest("us-west-2", "acme-prod-use1") is None
    # A provisioned cluster publishes none.
    rds = emu.client("rds", "us-west-2")
    rds.create_db_cluster(DBClusterIdentifier="boxed", Engine="aurora-postgresql", MasterUsername="a", MasterUserPassword="password123")
    rds.create_db_instance(DBInstanceIdentifier="boxed-a", DBClusterIdentifier="boxed", Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    assert newest("us-west-2", "boxed") is None
    # Nothing is published while RDS in the Region is down, and what was published ages.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset", "services": ["rds"]})
    emu.config({"cloudwatch": {"time_skip_seconds": 600}})
    start, end = window(minutes=15)
    res = emu.client("cloudwatch", "us-east-1").get_metric_data(
        MetricDataQueries=[query("acme-prod-use1")], StartTime=start, EndTime=end
    )
    stamps = res["MetricDataResults"][0]["Timestamps"]
    assert stamps, "the datapoints from before the outage stay"
    newest_at = max(stamps)
    assert datetime.datetime.now(datetime.timezone.utc) - newest_at > datetime.timedelta(minutes=9), newest_at
    emu.control("POST", "/_drpilot/rds/capacity", {"cluster": "acme-prod-use1", "acu": -1}, expect=400)
