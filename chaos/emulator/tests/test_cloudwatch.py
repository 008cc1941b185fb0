"""CloudWatch: the GetMetricData slice, over JSON (boto3's default) and RPC v2 CBOR."""

from __future__ import annotations

import datetime

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
