"""S3 cross-region replication that really copies objects."""

from __future__ import annotations

import datetime

SRC, DST = "acme-prod-assets-use1", "acme-prod-assets-usw2"


def head_status(s3, bucket, key, version=None):
    kwargs = {"Bucket": bucket, "Key": key}
    if version:
        kwargs["VersionId"] = version
    return s3.head_object(**kwargs).get("ReplicationStatus")


def test_new_object_replicates_after_delay(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 60}})
    emu.speed(100)
    src = emu.client("s3", "us-east-1")
    dst = emu.client("s3", "us-west-2")
    put = src.put_object(Bucket=SRC, Key="canary/1.txt", Body=b"hello", ContentType="text/plain", Metadata={"owner": "drpilot"})
    version = put["VersionId"]
    assert head_status(src, SRC, "canary/1.txt") == "PENDING"
    assert src.get_object(Bucket=SRC, Key="canary/1.txt")["ReplicationStatus"] == "PENDING"
    assert dst.list_objects_v2(Bucket=DST).get("KeyCount", 0) == 0
    emu.wait(lambda: head_status(src, SRC, "canary/1.txt") == "COMPLETED")
    obj = dst.get_object(Bucket=DST, Key="canary/1.txt")
    assert obj["Body"].read() == b"hello"
    assert obj["ReplicationStatus"] == "REPLICA"
    assert obj["VersionId"] == version  # replication keeps the version id
    assert obj["ContentType"] == "text/plain" and obj["Metadata"] == {"owner": "drpilot"}
    assert head_status(src, SRC, "canary/1.txt", version) == "COMPLETED"


def test_pause_builds_a_backlog_visible_in_control_and_cloudwatch(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    emu.control("POST", "/_drpilot/s3/replication", {"paused": True})
    src = emu.client("s3", "us-east-1")
    for i in range(3):
        src.put_object(Bucket=SRC, Key=f"obj/{i}", Body=b"x" * (10 + i))
    state = emu.control("GET", "/_drpilot/s3/replication")
    assert state["paused"] is True
    assert [b for b in state["backlog"] if b["source"] == SRC] == [
        {"source": SRC, "destination": DST, "rule_id": "crr-use1-to-usw2", "operations": 3, "bytes": 33}
    ]
    now = datetime.datetime.now(datetime.timezone.utc)
    cw = emu.client("cloudwatch", "us-east-1")
    dims = [
        {"Name": "SourceBucket", "Value": SRC},
        {"Name": "DestinationBucket", "Value": DST},
        {"Name": "RuleId", "Value": "crr-use1-to-usw2"},
    ]
    queries = [
        {"Id": "ops", "MetricStat": {"Metric": {"Namespace": "AWS/S3", "MetricName": "OperationsPendingReplication", "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
        {"Id": "bytes", "MetricStat": {"Metric": {"Namespace": "AWS/S3", "MetricName": "BytesPendingReplication", "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
    ]
    res = cw.get_metric_data(MetricDataQueries=queries, StartTime=now - datetime.timedelta(minutes=2), EndTime=now + datetime.timedelta(minutes=1))
    by_id = {r["Id"]: r["Values"] for r in res["MetricDataResults"]}
    assert by_id["ops"][0] == 3.0 and by_id["bytes"][0] == 33.0
    assert head_status(src, SRC, "obj/0") == "PENDING"
    emu.control("POST", "/_drpilot/s3/replication", {"paused": False})
    emu.wait(lambda: emu.control("GET", "/_drpilot/s3/replication")["backlog"] == [])
    assert head_status(src, SRC, "obj/2") == "COMPLETED"
    assert emu.client("s3", "us-west-2").get_object(Bucket=DST, Key="obj/2")["Body"].read() == b"x" * 12


def test_replication_waits_while_a_region_is_blackholed(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    src = emu.client("s3", "us-east-1")
    # The destination's region goes dark first: at clock speed 200 the 1 s delay is
    # 5 ms of real time, less than a loaded machine may take between two requests.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset"})
    src.put_object(Bucket=SRC, Key="during-outage", Body=b"1")
    import time

    # 20 emulated seconds, twenty times the delay: still waiting for us-west-2.
    time.sleep(0.1)
    assert head_status(src, SRC, "during-outage") == "PENDING"
    emu.control("DELETE", "/_drpilot/blackholes/us-west-2")
    emu.wait(lambda: head_status(src, SRC, "during-outage") == "COMPLETED")


def test_only_matching_enabled_rules_replicate(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    src = emu.client("s3", "us-east-1")
    src.put_bucket_replication(
        Bucket=SRC,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::111122223333:role/acme-s3-crr",
            "Rules": [
                {"ID": "logs", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{DST}"}},
                {"ID": "off", "Priority": 2, "Status": "Disabled", "Filter": {"Prefix": "tmp/"}, "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{DST}"}},
            ],
        },
    )
    src.put_object(Bucket=SRC, Key="logs/a", Body=b"a")
    src.put_object(Bucket=SRC, Key="tmp/b", Body=b"b")
    src.put_object(Bucket=SRC, Key="c", Body=b"c")
    emu.wait(lambda: head_status(src, SRC, "logs/a") == "COMPLETED")
    assert head_status(src, SRC, "tmp/b") is None and head_status(src, SRC, "c") is None
    keys = [o["Key"] for o in emu.client("s3", "us-west-2").list_objects_v2(Bucket=DST).get("Contents", [])]
    assert keys == ["logs/a"]


def test_destination_without_versioning_fails(emu, stack):
    emu.config({"s3": {"replication_delay_seconds": 1}})
    src = emu.client("s3", "us-east-1")
    dst = emu.client("s3", "us-west-2")
    dst.create_bucket(Bucket="plain-usw2", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    src.put_bucket_replication(
        Bucket=SRC,
        ReplicationConfiguration={
            "Role": "arn:aws:iam::111122223333:role/acme-s3-crr",
            "Rules": [{"ID": "r", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""}, "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": "arn:aws:s3:::plain-usw2"}}],
        },
    )
    src.put_object(Bucket=SRC, Key="k", Body=b"k")
    emu.wait(lambda: head_status(src, SRC, "k") == "FAILED")
