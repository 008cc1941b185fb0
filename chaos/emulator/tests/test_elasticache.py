"""ElastiCache (Valkey) global datastores."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

GID = "ldgnf-acme-sessions"


def grg(emu, region="us-west-2", show=True):
    return emu.client("elasticache", region).describe_global_replication_groups(
        GlobalReplicationGroupId=GID, ShowMemberInfo=show
    )["GlobalReplicationGroups"][0]


def roles(g):
    return {m["ReplicationGroupId"]: (m["Role"], m["ReplicationGroupRegion"], m["Status"]) for m in g["Members"]}


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_seeded_global_datastore_uses_region_prefix(emu, stack):
    assert stack["valkey"]["global_datastore"]["id"] == GID
    g = grg(emu)
    assert g["Status"] == "available"
    assert g["Engine"] == "valkey" and g["CacheNodeType"] == "cache.r7g.large"
    assert g["ARN"] == f"arn:aws:elasticache::{emu.account}:globalreplicationgroup:{GID}"
    assert roles(g) == {
        "acme-sessions-use1": ("PRIMARY", "us-east-1", "associated"),
        "acme-sessions-usw2": ("SECONDARY", "us-west-2", "associated"),
    }
    assert "Members" not in grg(emu, show=False)
    rg = emu.client("elasticache", "us-west-2").describe_replication_groups(ReplicationGroupId="acme-sessions-usw2")[
        "ReplicationGroups"
    ][0]
    assert rg["GlobalReplicationGroupInfo"] == {"GlobalReplicationGroupId": GID, "GlobalReplicationGroupMemberRole": "SECONDARY"}
    assert ".usw2.cache.amazonaws.com" in rg["NodeGroups"][0]["PrimaryEndpoint"]["Address"]


def test_create_global_replication_group_prefixes_per_region(emu):
    ec = emu.client("elasticache", "us-west-2")
    ec.create_replication_group(ReplicationGroupId="rg1", ReplicationGroupDescription="x", Engine="valkey", CacheNodeType="cache.r7g.large")
    g = ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="demo", PrimaryReplicationGroupId="rg1")[
        "GlobalReplicationGroup"
    ]
    assert g["GlobalReplicationGroupId"] == "sgaui-demo"
    assert g["Status"] == "creating"
    with pytest.raises(ClientError) as ei:
        ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="demo2", PrimaryReplicationGroupId="rg1")
    assert code(ei) == ("InvalidReplicationGroupState", 400)
    with pytest.raises(ClientError) as ei:
        ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="demo3", PrimaryReplicationGroupId="missing")
    assert code(ei) == ("ReplicationGroupNotFoundFault", 404)
    ec.create_replication_group(ReplicationGroupId="rg2", ReplicationGroupDescription="x", Engine="valkey")
    with pytest.raises(ClientError) as ei:
        ec.create_global_replication_group(GlobalReplicationGroupIdSuffix="demo", PrimaryReplicationGroupId="rg2")
    assert code(ei) == ("GlobalReplicationGroupAlreadyExistsFault", 400)
    with pytest.raises(ClientError) as ei:
        ec.describe_global_replication_groups(GlobalReplicationGroupId="nope")
    assert code(ei) == ("GlobalReplicationGroupNotFoundFault", 404)


def test_failover_switches_roles_after_modifying(emu, stack):
    emu.config({"elasticache": {"failover_seconds": 60}})
    emu.speed(100)
    ec = emu.client("elasticache", "us-west-2")
    g = ec.failover_global_replication_group(
        GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
    )["GlobalReplicationGroup"]
    assert g["Status"] == "modifying"
    assert roles(g)["acme-sessions-use1"][0] == "PRIMARY"
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
        )
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    g = emu.wait(lambda: (x := grg(emu))["Status"] == "available" and x)
    assert roles(g) == {
        "acme-sessions-usw2": ("PRIMARY", "us-west-2", "associated"),
        "acme-sessions-use1": ("SECONDARY", "us-east-1", "associated"),
    }
    rg = ec.describe_replication_groups(ReplicationGroupId="acme-sessions-usw2")["ReplicationGroups"][0]
    assert rg["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "PRIMARY"


def test_failover_errors(emu, stack):
    ec = emu.client("elasticache", "us-west-2")
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=GID, PrimaryRegion="us-east-1", PrimaryReplicationGroupId="acme-sessions-use1"
        )
    assert code(ei) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=GID, PrimaryRegion="eu-west-1", PrimaryReplicationGroupId="acme-sessions-usw2"
        )
    assert code(ei) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId="ldgnf-nope", PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
        )
    assert code(ei) == ("GlobalReplicationGroupNotFoundFault", 404)


def test_primary_region_down_refuses_failover_and_disassociate_works(emu, stack):
    emu.config({"elasticache": {"disassociate_seconds": 30}})
    emu.speed(100)
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    ec = emu.client("elasticache", "us-west-2")
    with pytest.raises(ClientError) as ei:
        ec.failover_global_replication_group(
            GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
        )
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    with pytest.raises(ClientError) as ei:
        ec.disassociate_global_replication_group(
            GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-use1", ReplicationGroupRegion="us-east-1"
        )
    assert code(ei) == ("InvalidParameterValue", 400)  # the primary can't be disassociated
    g = ec.disassociate_global_replication_group(
        GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-usw2", ReplicationGroupRegion="us-west-2"
    )["GlobalReplicationGroup"]
    assert g["Status"] == "modifying"
    assert roles(g)["acme-sessions-usw2"][2] == "disassociating"
    g = emu.wait(lambda: (x := grg(emu))["Status"] == "available" and x)
    assert list(roles(g)) == ["acme-sessions-use1"]
    rg = ec.describe_replication_groups(ReplicationGroupId="acme-sessions-usw2")["ReplicationGroups"][0]
    assert rg["Status"] == "available"
    assert not rg.get("GlobalReplicationGroupInfo", {}).get("GlobalReplicationGroupId")


def test_secondary_needs_its_own_region(emu, stack):
    emu.config({"elasticache": {"associate_seconds": 60}})
    emu.speed(100)
    ec = emu.client("elasticache", "us-west-2")
    with pytest.raises(ClientError) as ei:
        ec.create_replication_group(
            ReplicationGroupId="another-usw2", ReplicationGroupDescription="x", GlobalReplicationGroupId=GID
        )
    assert code(ei) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as ei:
        ec.create_replication_group(
            ReplicationGroupId="another", ReplicationGroupDescription="x", GlobalReplicationGroupId="ldgnf-nope"
        )
    assert code(ei) == ("GlobalReplicationGroupNotFoundFault", 404)
    ec3 = emu.client("elasticache", "eu-west-1")
    ec3.create_replication_group(ReplicationGroupId="acme-sessions-euw1", ReplicationGroupDescription="x", GlobalReplicationGroupId=GID)
    g = grg(emu)
    assert g["Status"] == "modifying" and roles(g)["acme-sessions-euw1"] == ("SECONDARY", "eu-west-1", "associating")
    g = emu.wait(lambda: (x := grg(emu))["Status"] == "available" and x)
    assert roles(g)["acme-sessions-euw1"] == ("SECONDARY", "eu-west-1", "associated")


def test_delete_global_replication_group_keeps_the_primary(emu, stack):
    ec = emu.client("elasticache", "us-east-1")
    with pytest.raises(ClientError) as ei:
        ec.delete_global_replication_group(GlobalReplicationGroupId=GID, RetainPrimaryReplicationGroup=True)
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)  # a secondary remains
    ec.disassociate_global_replication_group(
        GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-usw2", ReplicationGroupRegion="us-west-2"
    )
    emu.wait(lambda: list(roles(grg(emu))) == ["acme-sessions-use1"] and grg(emu)["Status"] == "available")
    g = ec.delete_global_replication_group(GlobalReplicationGroupId=GID, RetainPrimaryReplicationGroup=True)["GlobalReplicationGroup"]
    assert g["Status"] == "deleting"
    assert ec.describe_global_replication_groups()["GlobalReplicationGroups"] == []
    assert ec.describe_replication_groups(ReplicationGroupId="acme-sessions-use1")["ReplicationGroups"][0]["Status"] == "available"
