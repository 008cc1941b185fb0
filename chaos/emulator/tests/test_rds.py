"""Aurora global database extensions, driven with boto3 the way AWS documents them."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError


def gc_of(emu, region="us-west-2", gid="acme-prod"):
    return emu.client("rds", region).describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]


def writer_region(gc):
    return next(m["DBClusterArn"].split(":")[3] for m in gc["GlobalClusterMembers"] if m["IsWriter"])


def error(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"].get("Type")


def test_describe_global_clusters_identifier_filter(emu, stack):
    rds = emu.client("rds", "us-west-2")
    rds.create_global_cluster(GlobalClusterIdentifier="other-db", Engine="aurora-postgresql")
    assert len(rds.describe_global_clusters()["GlobalClusters"]) == 2
    gcs = rds.describe_global_clusters(GlobalClusterIdentifier="ACME-PROD")["GlobalClusters"]
    assert [g["GlobalClusterIdentifier"] for g in gcs] == ["acme-prod"]
    members = {m["DBClusterArn"]: m for m in gcs[0]["GlobalClusterMembers"]}
    assert members[stack["aurora"]["clusters"]["acme-prod-use1"]["arn"]]["IsWriter"] is True
    secondary = members[stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]]
    assert secondary["IsWriter"] is False and secondary["SynchronizationStatus"] == "connected"
    assert "FailoverState" not in gcs[0]
    by_region = rds.describe_global_clusters(Filters=[{"Name": "region", "Values": ["us-west-2"]}])["GlobalClusters"]
    assert [g["GlobalClusterIdentifier"] for g in by_region] == ["acme-prod"]
    with pytest.raises(ClientError) as ei:
        rds.describe_global_clusters(GlobalClusterIdentifier="nope")
    assert error(ei)[:2] == ("GlobalClusterNotFoundFault", 404)


def test_unplanned_failover_goes_through_failing_over(emu, stack):
    emu.config({"rds": {"pending_seconds": 20, "failover_seconds": 60}})
    emu.speed(100)  # pending 0.2 s, failing-over 0.6 s
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    source = stack["aurora"]["clusters"]["acme-prod-use1"]["arn"]
    rds = emu.client("rds", "us-west-2")
    gc = rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)[
        "GlobalCluster"
    ]
    assert gc["Status"] == "failing-over"
    assert gc["FailoverState"] == {
        "Status": "pending",
        "FromDbClusterArn": source,
        "ToDbClusterArn": target,
        "IsDataLossAllowed": True,
    }
    assert writer_region(gc) == "us-east-1"
    emu.wait(lambda: gc_of(emu).get("FailoverState", {}).get("Status") == "failing-over")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]
    assert cluster["Status"] == "failing-over"
    assert writer_region(gc_of(emu)) == "us-east-1"  # the writer flag moves only at the end
    # A second request while one is in progress is refused.
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    assert error(ei)[:2] == ("InvalidGlobalClusterStateFault", 400)
    done = emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)
    assert "FailoverState" not in done
    assert writer_region(done) == "us-west-2"
    assert rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]["Status"] == "available"
    members = rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]["DBClusterMembers"]
    assert [m["IsClusterWriter"] for m in members] == [True]
    # The old primary keeps its lost writes in an automated snapshot.
    snaps = emu.client("rds", "us-east-1").describe_db_cluster_snapshots(
        DBClusterIdentifier="acme-prod-use1", SnapshotType="automated"
    )["DBClusterSnapshots"]
    names = [s["DBClusterSnapshotIdentifier"] for s in snaps]
    assert any(n.startswith("rds:unplanned-global-failover-acme-prod-use1-") for n in names), names


def test_failover_with_data_loss_works_while_old_primary_region_is_blackholed(emu, stack):
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    rds = emu.client("rds", "us-west-2")
    rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    done = emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)
    assert writer_region(done) == "us-west-2"
    old = next(m for m in done["GlobalClusterMembers"] if not m["IsWriter"])
    assert old["SynchronizationStatus"] == "pending-resync"
    state = emu.control("GET", "/_drpilot/rds")
    assert state["pending_rebuilds"][0]["cluster_id"] == "acme-prod-use1"
    # The old primary's Region comes back: it is rebuilt as a secondary after a snapshot.
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    rebuilt = emu.wait(
        lambda: (g := gc_of(emu)) and all(m.get("SynchronizationStatus") == "connected" for m in g["GlobalClusterMembers"]) and g
    )
    assert writer_region(rebuilt) == "us-west-2"
    snaps = emu.client("rds", "us-east-1").describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
    assert any(s["DBClusterSnapshotIdentifier"].startswith("rds:unplanned-global-failover-acme-prod-use1-") for s in snaps)


def test_failover_with_data_loss_must_go_to_the_target_region(emu, stack):
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").failover_global_cluster(
            GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True
        )
    assert error(ei)[:2] == ("InvalidParameterValue", 400)


def test_switchover_is_sent_to_primary_region_and_needs_all_members_healthy(emu, stack):
    emu.config({"rds": {"switchover_seconds": 40}})
    emu.speed(100)
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-west-2").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(ei)[:2] == ("InvalidParameterValue", 400)
    # An impaired member region makes a switchover impossible.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset"})
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(ei)[:2] == ("InvalidGlobalClusterStateFault", 400)
    emu.control("DELETE", "/_drpilot/blackholes")
    rds = emu.client("rds", "us-east-1")
    gc = rds.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)["GlobalCluster"]
    assert gc["Status"] == "switching-over"
    assert gc["FailoverState"]["IsDataLossAllowed"] is False
    emu.wait(lambda: gc_of(emu).get("FailoverState", {}).get("Status") == "switching-over")
    statuses = {c["DBClusterIdentifier"]: c["Status"] for c in rds.describe_db_clusters()["DBClusters"]}
    assert statuses["acme-prod-use1"] == "switching-over"
    done = emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)
    assert writer_region(done) == "us-west-2"
    assert all(m["SynchronizationStatus"] == "connected" for m in done["GlobalClusterMembers"])
    # No unplanned-failover snapshot after a switchover.
    snaps = rds.describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
    assert not any("unplanned-global-failover" in s["DBClusterSnapshotIdentifier"] for s in snaps)
    # And back: now the primary is in us-west-2, so that is where the call goes.
    back = stack["aurora"]["clusters"]["acme-prod-use1"]["arn"]
    emu.client("rds", "us-west-2").switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=back)
    assert writer_region(emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)) == "us-east-1"


def test_failover_global_cluster_without_allow_data_loss_is_a_switchover(emu, stack):
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    rds = emu.client("rds", "us-east-1")
    gc = rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)["GlobalCluster"]
    assert gc["Status"] == "switching-over" and gc["FailoverState"]["IsDataLossAllowed"] is False
    emu.wait(lambda: gc_of(emu)["Status"] == "available")
    # Switchover=True and AllowDataLoss=True together are rejected.
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-west-2").failover_global_cluster(
            GlobalClusterIdentifier="acme-prod",
            TargetDbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-use1"]["arn"],
            AllowDataLoss=True,
            Switchover=True,
        )
    assert error(ei)[:2] == ("InvalidParameterCombination", 400)
    # Switchover=True alone: a switchover, sent to the (new) primary's Region.
    gc = emu.client("rds", "us-west-2").failover_global_cluster(
        GlobalClusterIdentifier="acme-prod",
        TargetDbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-use1"]["arn"],
        Switchover=True,
    )["GlobalCluster"]
    assert gc["Status"] == "switching-over"


def test_failover_errors_follow_the_model(emu, stack):
    rds = emu.client("rds", "us-west-2")
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    primary = stack["aurora"]["clusters"]["acme-prod-use1"]["arn"]
    cases = [
        (dict(GlobalClusterIdentifier="nope", TargetDbClusterIdentifier=target), "GlobalClusterNotFoundFault", 404),
        (
            dict(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target.replace("acme-prod-usw2", "ghost")),
            "DBClusterNotFoundFault",
            404,
        ),
    ]
    for kwargs, code, status in cases:
        with pytest.raises(ClientError) as ei:
            rds.failover_global_cluster(AllowDataLoss=True, **kwargs)
        assert error(ei) == (code, status, "Sender")
    # Promoting the current primary.
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=primary, AllowDataLoss=True)
    assert error(ei)[:2] == ("InvalidDBClusterStateFault", 400)
    # A target that is not available.
    emu.control("POST", f"/_drpilot/rds/clusters/{target}/status", {"status": "modifying"})
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    assert error(ei)[:2] == ("InvalidDBClusterStateFault", 400)
    emu.control("POST", f"/_drpilot/rds/clusters/{target}/status", {"status": "available"})
    # A target without an instance.
    rds.delete_db_instance(DBInstanceIdentifier="acme-prod-usw2-a")
    with pytest.raises(ClientError) as ei:
        rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    assert error(ei)[:2] == ("InvalidDBClusterStateFault", 400)


def test_cancelled_failover_restores_previous_state(emu, stack):
    emu.config({"rds": {"pending_seconds": 100, "cancel_seconds": 10}})
    emu.speed(100)
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    emu.client("rds", "us-west-2").failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True)
    emu.control("POST", "/_drpilot/rds/global-clusters/acme-prod/cancel")
    assert gc_of(emu)["FailoverState"]["Status"] == "cancelling"
    done = emu.wait(lambda: (g := gc_of(emu))["Status"] == "available" and g)
    assert writer_region(done) == "us-east-1"
    assert emu.client("rds", "us-west-2").describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]["Status"] == "available"


def test_remove_from_global_cluster_in_any_region(emu, stack):
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    rds = emu.client("rds", "us-west-2")
    arn = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    gc = rds.remove_from_global_cluster(GlobalClusterIdentifier="acme-prod", DbClusterIdentifier=arn)["GlobalCluster"]
    assert arn not in [m["DBClusterArn"] for m in gc["GlobalClusterMembers"]]
    cluster = rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]
    assert cluster["Status"] == "promoting"
    cluster = emu.wait(
        lambda: (c := rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0])["Status"] == "available" and c
    )
    assert [m["IsClusterWriter"] for m in cluster["DBClusterMembers"]] == [True]
    assert "GlobalClusterIdentifier" not in cluster or not cluster["GlobalClusterIdentifier"]
    with pytest.raises(ClientError) as ei:
        rds.remove_from_global_cluster(GlobalClusterIdentifier="acme-prod", DbClusterIdentifier=arn)
    assert error(ei)[:2] == ("DBClusterNotFoundFault", 404)


def test_remove_primary_with_secondaries_is_refused(emu, stack):
    with pytest.raises(ClientError) as ei:
        emu.client("rds", "us-east-1").remove_from_global_cluster(
            GlobalClusterIdentifier="acme-prod", DbClusterIdentifier=stack["aurora"]["clusters"]["acme-prod-use1"]["arn"]
        )
    assert error(ei)[:2] == ("InvalidGlobalClusterStateFault", 400)


def test_lag_reads_like_cloudwatch_aurora_global_db_rpo_lag(emu, stack):
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": "acme-prod-usw2", "lag_ms": 1234})
    cw = emu.client("cloudwatch", "us-west-2")
    now = datetime.datetime.now(datetime.timezone.utc)
    query = {
        "Id": "lag",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/RDS",
                "MetricName": "AuroraGlobalDBRPOLag",
                "Dimensions": [{"Name": "DBClusterIdentifier", "Value": "acme-prod-usw2"}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
    }
    res = cw.get_metric_data(MetricDataQueries=[query], StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1))
    result = res["MetricDataResults"][0]
    assert result["Id"] == "lag" and result["StatusCode"] == "Complete"
    assert result["Values"] and result["Values"][0] == 1234.0
    # Only the secondary's Region publishes it, and only for a secondary.
    other = emu.client("cloudwatch", "us-east-1").get_metric_data(
        MetricDataQueries=[query], StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1)
    )
    assert other["MetricDataResults"][0]["Values"] == []
    assert emu.control("GET", "/_drpilot/rds/lag")["lag_ms"] == {stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]: 1234.0}


def test_copy_db_cluster_snapshot_checks_the_target_identifier_as_aws_does(emu, stack):
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    emu.client("rds", "us-west-2").failover_global_cluster(
        GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True
    )
    emu.wait(lambda: gc_of(emu)["Status"] == "available")
    rds = emu.client("rds", "us-east-1")
    snaps = rds.describe_db_cluster_snapshots(DBClusterIdentifier="acme-prod-use1", SnapshotType="automated")
    source = next(
        s["DBClusterSnapshotIdentifier"]
        for s in snaps["DBClusterSnapshots"]
        if s["DBClusterSnapshotIdentifier"].startswith("rds:unplanned-global-failover-")
    )
    for bad in ["k" * 64, "9-lost", "lost_writes", "lost-", "lost--writes"]:
        with pytest.raises(ClientError) as ei:
            rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=source, TargetDBClusterSnapshotIdentifier=bad)
        assert error(ei)[:2] == ("InvalidParameterValue", 400), bad
    # 63 characters are fine; the identifier is stored in lowercase.
    ok = "Keep-" + "x" * 58
    copy = rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=source, TargetDBClusterSnapshotIdentifier=ok)
    assert copy["DBClusterSnapshot"]["DBClusterSnapshotIdentifier"] == ok.lower()
    manual = rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in manual] == [ok.lower()]


def test_a_switchover_needs_the_same_major_and_minor_version_but_not_patch(emu, stack):
    target = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    west = emu.client("rds", "us-west-2")
    base = west.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]["EngineVersion"]
    major, minor = base.split(".")[:2]
    rds = emu.client("rds", "us-east-1")
    west.modify_db_cluster(DBClusterIdentifier="acme-prod-usw2", EngineVersion=f"{major}.{int(minor) + 1}", ApplyImmediately=True)
    with pytest.raises(ClientError) as ei:
        rds.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert error(ei)[:2] == ("InvalidGlobalClusterStateFault", 400)
    assert "same major and minor engine version" in str(ei.value)
    # Another patch level of the same minor version is fine.
    west.modify_db_cluster(DBClusterIdentifier="acme-prod-usw2", EngineVersion=f"{major}.{minor}.9", ApplyImmediately=True)
    gc = rds.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target)
    assert gc["GlobalCluster"]["Status"] == "switching-over"


def test_the_global_writer_endpoint_is_stable_and_follows_a_failover(emu, stack):
    gc = gc_of(emu)
    endpoint = gc["Endpoint"]
    assert endpoint.startswith("acme-prod.global-") and endpoint.endswith(".global.rds.amazonaws.com"), endpoint
    assert gc_of(emu, "us-east-1")["Endpoint"] == endpoint
    clusters = stack["aurora"]["clusters"]
    where = lambda: emu.control("GET", "/_drpilot/state")["rds"]["global_endpoints"]["acme-prod"]  # noqa: E731
    assert where() == {"endpoint": endpoint, "points_to": clusters["acme-prod-use1"]["endpoint"]}
    emu.speed(1000)
    emu.client("rds", "us-west-2").failover_global_cluster(
        GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=clusters["acme-prod-usw2"]["arn"], AllowDataLoss=True
    )
    emu.wait(lambda: writer_region(gc_of(emu)) == "us-west-2" and "FailoverState" not in gc_of(emu))
    assert gc_of(emu)["Endpoint"] == endpoint
    assert where()["points_to"] == clusters["acme-prod-usw2"]["endpoint"]


def cluster_of(emu, region, ident):
    return emu.client("rds", region).describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]


def test_the_seeded_clusters_are_serverless_v2_in_their_global_database(emu, stack):
    clusters = stack["aurora"]["clusters"]
    west = cluster_of(emu, "us-west-2", "acme-prod-usw2")
    assert west["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8.0}
    assert west["GlobalClusterIdentifier"] == "acme-prod"
    assert cluster_of(emu, "us-east-1", "acme-prod-use1")["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 2.0,
        "MaxCapacity": 64.0,
    }
    rds = emu.client("rds", "us-west-2")
    # The db-cluster-id filter takes the cluster's ARN (moto only matched identifiers).
    for value in (clusters["acme-prod-usw2"]["arn"], "acme-prod-usw2"):
        instances = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [value]}])["DBInstances"]
        assert [(i["DBInstanceIdentifier"], i["DBInstanceClass"]) for i in instances] == [("acme-prod-usw2-a", "db.serverless")]
    # A cluster of another Region matches nothing here.
    other = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [clusters["acme-prod-use1"]["arn"]]}])
    assert other["DBInstances"] == []


def test_a_capacity_range_is_modifying_for_a_moment_then_available(emu, stack):
    emu.config({"rds": {"modify_seconds": 60}})
    emu.speed(100)  # 0.6 s
    arn = stack["aurora"]["clusters"]["acme-prod-usw2"]["arn"]
    rds = emu.client("rds", "us-west-2")
    c = rds.modify_db_cluster(
        DBClusterIdentifier=arn,
        ServerlessV2ScalingConfiguration={"MinCapacity": 2, "MaxCapacity": 64},
        ApplyImmediately=True,
    )["DBCluster"]
    assert (c["Status"], c["ServerlessV2ScalingConfiguration"]) == ("modifying", {"MinCapacity": 2.0, "MaxCapacity": 64.0})
    now = cluster_of(emu, "us-west-2", arn)
    assert (now["Status"], now["ServerlessV2ScalingConfiguration"]["MaxCapacity"]) == ("modifying", 64.0)
    # AWS refuses a modification while the cluster is not available.
    with pytest.raises(ClientError) as ei:
        rds.modify_db_cluster(DBClusterIdentifier=arn, ServerlessV2ScalingConfiguration={"MinCapacity": 1, "MaxCapacity": 32})
    assert error(ei)[:2] == ("InvalidDBClusterStateFault", 400)
    emu.wait(lambda: cluster_of(emu, "us-west-2", arn)["Status"] == "available")
    assert cluster_of(emu, "us-west-2", arn)["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 2.0, "MaxCapacity": 64.0}
    state = emu.control("GET", "/_drpilot/state")["rds"]
    assert [(c["cluster"], c["from"], c["to"]) for c in state["capacity_changes"]] == [
        (arn, {"MinCapacity": 0.5, "MaxCapacity": 8.0}, {"MinCapacity": 2.0, "MaxCapacity": 64.0})
    ]
    assert state["serverless"][arn]["scaling"] == {"MinCapacity": 2.0, "MaxCapacity": 64.0}
    assert state["serverless"][arn]["instance_classes"] == ["db.serverless"]
    # The same range again changes nothing: no `modifying`.
    again = rds.modify_db_cluster(DBClusterIdentifier=arn, ServerlessV2ScalingConfiguration={"MinCapacity": 2, "MaxCapacity": 64})
    assert again["DBCluster"]["Status"] == "available"


def test_a_capacity_range_aws_refuses_changes_nothing(emu, stack):
    clusters = stack["aurora"]["clusters"]
    arn = clusters["acme-prod-usw2"]["arn"]
    rds = emu.client("rds", "us-west-2")
    for config, code in [
        ({"MinCapacity": 0.3, "MaxCapacity": 8}, "InvalidParameterValue"),
        ({"MinCapacity": 1, "MaxCapacity": 300}, "InvalidParameterValue"),
        ({"MinCapacity": 0, "MaxCapacity": 0.5}, "InvalidParameterValue"),
        ({"MinCapacity": 16, "MaxCapacity": 8}, "InvalidParameterCombination"),
        # Auto-pause is not for a member of a global database.
        ({"MinCapacity": 0, "MaxCapacity": 8}, "InvalidParameterCombination"),
    ]:
        with pytest.raises(ClientError) as ei:
            rds.modify_db_cluster(DBClusterIdentifier=arn, ServerlessV2ScalingConfiguration=config, ApplyImmediately=True)
        assert error(ei)[:2] == (code, 400), config
    # Unknown, or in another Region than the request's: not found (moto: HTTP 500).
    for ident in ["nope", clusters["acme-prod-use1"]["arn"]]:
        with pytest.raises(ClientError) as ei:
            rds.modify_db_cluster(DBClusterIdentifier=ident, ServerlessV2ScalingConfiguration={"MinCapacity": 1, "MaxCapacity": 8})
        assert error(ei)[:2] == ("DBClusterNotFoundFault", 404), ident
    c = cluster_of(emu, "us-west-2", arn)
    assert (c["Status"], c["ServerlessV2ScalingConfiguration"]) == ("available", {"MinCapacity": 0.5, "MaxCapacity": 8.0})
    assert emu.control("GET", "/_drpilot/state")["rds"]["capacity_changes"] == []
    # A cluster outside a global database may auto-pause.
    solo = rds.create_db_cluster(
        DBClusterIdentifier="solo",
        Engine="aurora-postgresql",
        MasterUsername="a",
        MasterUserPassword="password123",
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 4},
    )["DBCluster"]
    emu.wait(lambda: cluster_of(emu, "us-west-2", "solo")["Status"] == "available")
    out = rds.modify_db_cluster(DBClusterIdentifier=solo["DBClusterArn"], ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 4})
    assert out["DBCluster"]["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0.0
