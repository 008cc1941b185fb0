"""The fault layer: AWS's throttling shapes, 5xx, latency, blackholes, seeding, reset."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError


def raw(emu, method, path, service, region, body=b"", headers=None):
    """A request with a SigV4-shaped Authorization header (the emulator reads its scope)."""
    req = urllib.request.Request(emu.url + path, data=body if method != "GET" else None, method=method)
    req.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0",
    )
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def throttle(emu, **spec):
    return emu.control("POST", "/_drpilot/faults", {"kind": "throttle", **spec})


def test_query_protocol_throttling_shape(emu):
    throttle(emu, service="rds")
    status, _, body = raw(
        emu, "POST", "/", "rds", "us-east-1", b"Action=DescribeDBClusters&Version=2014-10-31",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400
    text = body.decode()
    assert text.startswith('<?xml version="1.0"?>\n<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">')
    assert "<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>" in text
    assert "<RequestId>" in text


@pytest.mark.parametrize(
    "service,region,call,code,status",
    [
        ("rds", "us-west-2", lambda c: c.describe_global_clusters(), "Throttling", 400),
        ("elasticache", "us-east-1", lambda c: c.describe_global_replication_groups(), "Throttling", 400),
        ("cloudwatch", "us-east-1", lambda c: c.list_metrics(), "Throttling", 400),
        ("route53", "us-east-1", lambda c: c.list_hosted_zones(), "Throttling", 400),
        ("s3", "us-east-1", lambda c: c.list_buckets(), "SlowDown", 503),
    ],
)
def test_throttling_is_recognised_and_retried_by_the_sdk(emu, service, region, call, code, status):
    rule = throttle(emu, service=service, count=2)
    with pytest.raises(ClientError) as ei:
        call(emu.client(service, region, retries=1))
    err = ei.value.response
    assert err["Error"]["Code"] == code and err["ResponseMetadata"]["HTTPStatusCode"] == status
    # Standard retry mode treats it as throttling: the next call succeeds on its 2nd attempt.
    resp = call(emu.client(service, region, retries=3))
    assert resp["ResponseMetadata"]["RetryAttempts"] == 1
    rules = emu.control("GET", "/_drpilot/faults")["rules"]
    assert rules[0]["id"] == rule["id"] and rules[0]["fired"] == 2


def test_route53_throttling_code_can_be_throttling_exception(emu):
    throttle(emu, service="route53", code="ThrottlingException")
    with pytest.raises(ClientError) as ei:
        emu.client("route53").list_health_checks()
    assert ei.value.response["Error"]["Code"] == "ThrottlingException"


def test_per_operation_and_per_region_rules(emu, stack):
    throttle(emu, service="rds", operation="FailoverGlobalCluster", region="us-west-2")
    rds = emu.client("rds", "us-west-2")
    rds.describe_global_clusters()  # other operations pass
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(
            GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"], AllowDataLoss=True
        )
    assert ei.value.response["Error"]["Code"] == "Throttling"
    # The throttled request changed nothing.
    assert rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"][0]["Status"] == "available"
    # Same operation in another Region is not throttled (and is refused on its own merits).
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").failover_global_cluster(
            GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"], AllowDataLoss=True
        )
    assert ei.value.response["Error"]["Code"] == "InvalidParameterValue"


@pytest.mark.parametrize(
    "service,call,status,code",
    [
        ("elasticache", lambda c: c.describe_replication_groups(), 503, "ServiceUnavailable"),
        ("rds", lambda c: c.describe_db_clusters(), 500, "InternalFailure"),
        ("s3", lambda c: c.list_buckets(), 500, "InternalError"),
        ("route53", lambda c: c.list_hosted_zones(), 503, "ServiceUnavailable"),
    ],
)
def test_server_errors(emu, service, call, status, code):
    emu.control("POST", "/_drpilot/faults", {"kind": "error", "service": service, "status": status, "count": 1})
    with pytest.raises(ClientError) as ei:
        call(emu.client(service, retries=1))
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert ei.value.response["Error"]["Code"] == code
    call(emu.client(service, retries=1))  # count=1: only once


def test_error_rate_is_seeded_and_reproducible(emu):
    def run(seed):
        emu.control("POST", "/_drpilot/reset", {"moto": False})
        emu.control("POST", "/_drpilot/seed", {"seed": seed})
        emu.control("POST", "/_drpilot/faults", {"kind": "error", "service": "rds", "rate": 0.5, "status": 503})
        rds = emu.client("rds", retries=1)
        pattern = []
        for _ in range(24):
            try:
                rds.describe_db_clusters()
                pattern.append(0)
            except ClientError:
                pattern.append(1)
        return pattern

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert 0 < sum(a) < 24
    assert a != c


def test_latency_is_scaled_by_the_clock(emu):
    emu.control("POST", "/_drpilot/faults", {"kind": "latency", "service": "rds", "latency_ms": 3000})
    emu.speed(10)
    rds = emu.client("rds")
    t = time.monotonic()
    rds.describe_db_clusters()
    elapsed = time.monotonic() - t
    assert 0.25 <= elapsed < 2.0, elapsed
    emu.speed(100)
    t = time.monotonic()
    rds.describe_db_clusters()
    assert time.monotonic() - t < 0.25


def test_blackhole_hold_times_out_the_client(emu):
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "hold"})
    rds = emu.client("rds", "us-east-1", read_timeout=0.5, connect_timeout=1)
    t = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        rds.describe_db_clusters()
    assert time.monotonic() - t < 3
    # Other Regions answer.
    emu.client("rds", "us-west-2").describe_db_clusters()
    # A bounded hold: the server gives up first and closes without an answer.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "hold", "hold_seconds": 0.2})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        emu.client("rds", "us-east-1", read_timeout=5).describe_db_clusters()
    state = emu.control("GET", "/_drpilot/blackholes")["blackholes"]
    assert state[0]["region"] == "us-east-1" and state[0]["dropped"] >= 1
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    emu.client("rds", "us-east-1").describe_db_clusters()


def test_blackhole_reset_drops_the_connection(emu):
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset"})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        emu.client("s3", "us-west-2").list_buckets()
    emu.client("s3", "us-east-1").list_buckets()


def test_moto_api_reset_resets_our_state_too(emu, stack):
    throttle(emu, service="rds")
    emu.control("POST", "/_drpilot/blackholes", {"region": "eu-west-1"})
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 99})
    emu.speed(3)
    req = urllib.request.Request(emu.url + "/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert emu.control("GET", "/_drpilot/faults") == {"rules": [], "blackholes": []}
    assert emu.control("GET", "/_drpilot/clock")["speed"] == 1.0
    assert emu.control("GET", "/_drpilot/rds/lag") == {"lag_ms": {}}
    assert emu.client("rds").describe_db_clusters()["DBClusters"] == []
    assert emu.control("GET", "/_drpilot/elasticache")["global_replication_groups"] == {}
    assert emu.control("GET", "/_drpilot/arc")["clusters"] == {}


def test_control_api_validates_input(emu):
    emu.control("POST", "/_drpilot/faults", {"kind": "nope"}, expect=400)
    emu.control("POST", "/_drpilot/faults", {"kind": "error", "status": 404}, expect=400)
    emu.control("POST", "/_drpilot/clock", {"speed": 0}, expect=400)
    emu.control("POST", "/_drpilot/config", {"rds": {"bogus": 1}}, expect=400)
    emu.control("GET", "/_drpilot/nothing", expect=404)
    emu.control("PUT", "/_drpilot/faults", {}, expect=405)
    emu.control("DELETE", "/_drpilot/faults/12345", expect=404)
    assert emu.control("GET", "/_drpilot/health")["account_id"] == emu.account
    state = emu.control("GET", "/_drpilot/state")
    assert {"rds", "elasticache", "s3", "route53", "arc", "faults", "clock", "config"} <= set(state)


def test_reset_without_moto_keeps_resources(emu, stack):
    throttle(emu, service="s3")
    emu.control("POST", "/_drpilot/reset", {"moto": False})
    assert emu.control("GET", "/_drpilot/faults")["rules"] == []
    gcs = emu.client("rds", "us-west-2").describe_global_clusters()["GlobalClusters"]
    assert [g["GlobalClusterIdentifier"] for g in gcs] == ["acme-prod"]
    assert emu.control("GET", "/_drpilot/elasticache")["global_replication_groups"]


def test_query_protocol_get_metric_data(emu, stack):
    emu.config({"rds": {"default_lag_ms": 0}})
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 321})
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    start = (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    form = (
        "Action=GetMetricData&Version=2010-08-01"
        "&MetricDataQueries.member.1.Id=lag"
        "&MetricDataQueries.member.1.MetricStat.Metric.Namespace=AWS%2FRDS"
        "&MetricDataQueries.member.1.MetricStat.Metric.MetricName=AuroraGlobalDBRPOLag"
        "&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=DBClusterIdentifier"
        "&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Value=acme-prod-usw2"
        "&MetricDataQueries.member.1.MetricStat.Period=60"
        "&MetricDataQueries.member.1.MetricStat.Stat=Maximum"
        f"&StartTime={start}&EndTime={end}"
    )
    status, _, body = raw(emu, "POST", "/", "monitoring", "us-west-2", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    assert b"<GetMetricDataResponse" in body and b"<member>321.0</member>" in body


def test_drop_response_applies_the_failover_but_loses_the_answer(emu, stack):
    emu.config({"rds": {"pending_seconds": 60, "failover_seconds": 600}})
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    rule = emu.control(
        "POST",
        "/_drpilot/faults",
        {"kind": "drop_response", "service": "rds", "operation": "FailoverGlobalCluster", "region": "us-west-2", "mode": "reset", "count": 1},
    )
    assert rule["mode"] == "reset" and rule["fired"] == 0
    rds = emu.client("rds", "us-west-2")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    # The failover was accepted all the same: a re-read shows it in progress...
    gc = rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"][0]
    assert gc["Status"] == "failing-over"
    assert gc["FailoverState"]["ToDbClusterArn"] == target and gc["FailoverState"]["IsDataLossAllowed"] is True
    # ...and sending it again is refused.
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    assert (ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidGlobalClusterStateFault", 400)
    assert emu.control("GET", "/_drpilot/faults")["rules"] == [{**rule, "fired": 1}]
    assert emu.control("GET", "/_drpilot/rds")["operations"]["acme-prod"]["kind"] == "failover"


def test_drop_response_then_an_sdk_retry_meets_the_first_attempt(emu, stack):
    emu.config({"rds": {"pending_seconds": 60, "failover_seconds": 600}})
    emu.control("POST", "/_drpilot/faults", {"kind": "drop_response", "service": "rds", "operation": "FailoverGlobalCluster", "mode": "reset", "count": 1})
    rds = emu.client("rds", "us-west-2", retries=3)
    # The SDK retries the reset connection; its retry is refused because the lost
    # first attempt started the failover.
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(
            GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"], AllowDataLoss=True
        )
    assert ei.value.response["Error"]["Code"] == "InvalidGlobalClusterStateFault"
    assert ei.value.response["ResponseMetadata"]["RetryAttempts"] == 1


def test_drop_response_hold_times_out_the_client(emu):
    emu.control("POST", "/_drpilot/faults", {"kind": "drop_response", "mode": "sideways"}, expect=400)
    rule = emu.control(
        "POST", "/_drpilot/faults", {"kind": "drop_response", "service": "s3", "operation": "CreateBucket", "hold_seconds": 5, "count": 1}
    )
    assert rule["mode"] == "hold"
    with pytest.raises(ReadTimeoutError):
        emu.client("s3", "us-east-1", read_timeout=0.5).create_bucket(Bucket="lost-answer")
    assert "lost-answer" in [b["Name"] for b in emu.client("s3").list_buckets()["Buckets"]]
    assert emu.control("GET", "/_drpilot/faults")["rules"][0]["fired"] == 1
    # A failing rule wins: a throttled request never reaches the service, so its
    # response can't be dropped (and the drop rule doesn't count).
    emu.control("DELETE", "/_drpilot/faults")
    drop = emu.control("POST", "/_drpilot/faults", {"kind": "drop_response", "service": "s3", "mode": "reset"})
    throttle(emu, service="s3", count=1)
    with pytest.raises(ClientError) as ei:
        emu.client("s3").create_bucket(Bucket="never-made")
    assert ei.value.response["Error"]["Code"] == "SlowDown"
    rules = {r["id"]: r for r in emu.control("GET", "/_drpilot/faults")["rules"]}
    assert rules[drop["id"]]["fired"] == 0
