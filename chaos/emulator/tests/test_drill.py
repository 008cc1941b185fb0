"""A whole unplanned regional failover and its failback, with us-east-1 blackholed,
driven through the AWS APIs only - what drpilot's runbooks do."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError


def test_region_failover_and_failback(emu, stack):
    use1 = stack["aurora"]["clusters"]["acme-prod-use1"]
    usw2 = stack["aurora"]["clusters"]["acme-prod-usw2"]
    gid = stack["valkey"]["global_datastore"]["id"]
    emu.control("POST", "/_drpilot/rds/lag", {"cluster": usw2["arn"], "lag_ms": 2500})
    # Objects written before the outage; some are still in the backlog when it starts.
    emu.config({"s3": {"replication_delay_seconds": 3600}})
    emu.client("s3", "us-east-1").put_object(Bucket="acme-prod-assets-use1", Key="late", Body=b"x")

    # us-east-1 goes dark.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        emu.client("rds", "us-east-1").describe_db_clusters()

    # Readiness, from us-west-2.
    rds = emu.client("rds", "us-west-2")
    assert rds.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")["DBClusters"][0]["Status"] == "available"
    now = datetime.datetime.now(datetime.timezone.utc)
    lag = emu.client("cloudwatch", "us-west-2").get_metric_data(
        MetricDataQueries=[{"Id": "rpo", "MetricStat": {"Metric": {"Namespace": "AWS/RDS", "MetricName": "AuroraGlobalDBRPOLag", "Dimensions": [{"Name": "DBClusterIdentifier", "Value": "acme-prod-usw2"}]}, "Period": 60, "Stat": "Maximum"}}],
        StartTime=now - datetime.timedelta(minutes=5),
        EndTime=now,
    )["MetricDataResults"][0]["Values"]
    assert lag[0] == 2500.0
    # The S3 data at risk: the backlog stays put while the source Region is down.
    assert emu.control("GET", "/_drpilot/s3/replication")["backlog"][0]["operations"] == 1

    # Aurora: a failover with data loss, sent to the target's Region.
    rds.failover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=usw2["arn"], AllowDataLoss=True)
    # Valkey: the failover is refused (its primary is unreachable) -> disassociate.
    ec = emu.client("elasticache", "us-west-2")
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(GlobalReplicationGroupId=gid, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2")
    assert ei.value.response["Error"]["Code"] == "InvalidGlobalReplicationGroupState"
    ec.disassociate_global_replication_group(GlobalReplicationGroupId=gid, ReplicationGroupId="acme-sessions-usw2", ReplicationGroupRegion="us-west-2")

    def writer_in(region):
        g = rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"][0]
        return g["Status"] == "available" and any(m["IsWriter"] and f":{region}:" in m["DBClusterArn"] for m in g["GlobalClusterMembers"])

    emu.wait(lambda: writer_in("us-west-2"))
    emu.wait(lambda: ec.describe_global_replication_groups(GlobalReplicationGroupId=gid)["GlobalReplicationGroups"][0]["Status"] == "available")
    history = emu.control("GET", "/_drpilot/rds")["history"]
    assert history[-1]["kind"] == "failover" and history[-1]["data_loss_window_ms"] == 2500.0

    # DNS: the ARC routing controls move traffic to us-west-2. The cluster's us-east-1
    # endpoint is dark; the next one in the list answers.
    zid = stack["route53"]["zones"]["acme.internal."]["id"]
    cells = stack["arc"]["routing_controls"]
    swap = [
        {"RoutingControlArn": cells["cell-use1"]["arn"], "RoutingControlState": "Off"},
        {"RoutingControlArn": cells["cell-usw2"]["arn"], "RoutingControlState": "On"},
    ]
    for ep in stack["arc"]["cluster"]["endpoints"]:
        try:
            emu.client("route53-recovery-cluster", ep["region"]).update_routing_control_states(UpdateRoutingControlStateEntries=swap)
            break
        except (ConnectionClosedError, EndpointConnectionError):
            assert ep["region"] == "us-east-1"
    answer = emu.control("GET", f"/_drpilot/route53/answer?zone_id={zid}&name=db-writer.acme.internal.&type=CNAME")
    assert answer["values"] == [usw2["endpoint"]] and answer["record"]["set_identifier"] == "usw2"
    answer = emu.control("GET", f"/_drpilot/route53/answer?zone_id={zid}&name=cache.acme.internal.&type=CNAME")
    assert answer["values"] == [stack["valkey"]["members"]["acme-sessions-usw2"]["configuration_endpoint"]]

    # Route 53's control plane is in us-east-1: unreachable too.
    r53 = emu.client("route53", read_timeout=2)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        r53.list_hosted_zones()

    # us-east-1 recovers.
    emu.control("DELETE", "/_drpilot/blackholes/us-east-1")
    snaps = emu.wait(
        lambda: [
            s["DBClusterSnapshotIdentifier"]
            for s in emu.client("rds", "us-east-1").describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
            if s["DBClusterSnapshotIdentifier"].startswith("rds:unplanned-global-failover-acme-prod-use1-")
        ]
    )
    assert len(snaps) == 1
    # The API's failover: flip its endpoint health check.
    hc = stack["route53"]["health_checks"]["api-primary"]["id"]
    r53.update_health_check(HealthCheckId=hc, Inverted=True)
    obs = r53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
    assert all(o["StatusReport"]["Status"].startswith("Failure") for o in obs)

    # Failback: the old primary rejoined as a secondary; a switchover, sent to the
    # current primary's Region (us-west-2), moves the writer home with no data loss.
    g = rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"][0]
    assert all(m["SynchronizationStatus"] == "connected" for m in g["GlobalClusterMembers"])
    rds.switchover_global_cluster(GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=use1["arn"])
    emu.wait(lambda: writer_in("us-east-1"))
    assert emu.control("GET", "/_drpilot/rds")["history"][-1]["kind"] == "switchover"
    back = [dict(e, RoutingControlState="On" if e["RoutingControlState"] == "Off" else "Off") for e in swap]
    emu.client("route53-recovery-cluster", "us-east-1").update_routing_control_states(UpdateRoutingControlStateEntries=back)
    answer = emu.control("GET", f"/_drpilot/route53/answer?zone_id={zid}&name=db-writer.acme.internal.&type=CNAME")
    assert answer["values"] == [use1["endpoint"]]
