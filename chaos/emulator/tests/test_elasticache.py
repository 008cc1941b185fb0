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
    assert ".usw2.cache.amazonaws.com" in rg["ConfigurationEndpoint"]["Address"]


SLOTS = ["0-5461", "5462-10922", "10923-16383"]


def test_seeded_members_are_three_shard_cluster_mode_groups_alike(emu, stack):
    """Both members: cluster mode enabled, 3 shards with AWS's even slot split, a
    configuration endpoint in their own Region, the datastore's node type."""
    for rg_id, region, short in (("acme-sessions-use1", "us-east-1", "use1"), ("acme-sessions-usw2", "us-west-2", "usw2")):
        rg = emu.client("elasticache", region).describe_replication_groups(ReplicationGroupId=rg_id)["ReplicationGroups"][0]
        assert rg["ClusterEnabled"] is True and rg["ClusterMode"] == "enabled"
        assert rg["CacheNodeType"] == "cache.r7g.large"
        assert [ng["Slots"] for ng in rg["NodeGroups"]] == SLOTS
        assert [ng["NodeGroupId"] for ng in rg["NodeGroups"]] == ["0001", "0002", "0003"]
        assert all(len(ng["NodeGroupMembers"]) == 2 for ng in rg["NodeGroups"])
        assert {m["PreferredAvailabilityZone"][:-1] for ng in rg["NodeGroups"] for m in ng["NodeGroupMembers"]} == {region}
        cfg = rg["ConfigurationEndpoint"]
        assert cfg["Address"].startswith(f"clustercfg.{rg_id}.") and cfg["Address"].endswith(f".{short}.cache.amazonaws.com")
        assert cfg["Port"] == 6379
        assert stack["valkey"]["members"][rg_id]["configuration_endpoint"] == cfg["Address"]
    g = grg(emu)
    assert g["ClusterEnabled"] is True
    assert g["GlobalNodeGroups"] == [{"GlobalNodeGroupId": f"{GID}-000{i + 1}", "Slots": s} for i, s in enumerate(SLOTS)]


def test_more_than_one_shard_is_cluster_mode_with_an_even_slot_split(emu):
    """moto: ClusterEnabled false without ClusterMode, and 5,461 slots a shard whatever
    the count. NumNodeGroups > 1 is cluster mode enabled (API reference)."""
    ec = emu.client("elasticache", "eu-west-1")
    rg = ec.create_replication_group(
        ReplicationGroupId="two", ReplicationGroupDescription="x", Engine="valkey", CacheNodeType="cache.r7g.large", NumNodeGroups=2
    )["ReplicationGroup"]
    assert rg["ClusterEnabled"] is True
    assert [ng["Slots"] for ng in rg["NodeGroups"]] == ["0-8191", "8192-16383"]
    assert rg["ConfigurationEndpoint"]["Address"].endswith(".euw1.cache.amazonaws.com")
    four = ec.create_replication_group(
        ReplicationGroupId="four", ReplicationGroupDescription="x", Engine="valkey", CacheNodeType="cache.r7g.large",
        NumNodeGroups=4, ClusterMode="enabled",
    )["ReplicationGroup"]
    assert [ng["Slots"] for ng in four["NodeGroups"]] == ["0-4095", "4096-8191", "8192-12287", "12288-16383"]
    one = ec.create_replication_group(
        ReplicationGroupId="one", ReplicationGroupDescription="x", Engine="valkey", CacheNodeType="cache.r7g.large"
    )["ReplicationGroup"]
    assert one["ClusterEnabled"] is False and "ConfigurationEndpoint" not in one


def test_a_secondary_takes_the_datastores_shape_and_must_match_it(emu, stack):
    ec = emu.client("elasticache", "eu-west-1")
    for bad in ({"CacheNodeType": "cache.t4g.micro"}, {"NumNodeGroups": 2}, {"ClusterMode": "disabled"}):
        with pytest.raises(ClientError) as ei:
            ec.create_replication_group(
                ReplicationGroupId="euw1", ReplicationGroupDescription="x", GlobalReplicationGroupId=GID, **bad
            )
        assert code(ei) == ("InvalidParameterCombination", 400)
    rg = ec.create_replication_group(
        ReplicationGroupId="euw1", ReplicationGroupDescription="x", GlobalReplicationGroupId=GID
    )["ReplicationGroup"]
    assert rg["ClusterEnabled"] is True and rg["CacheNodeType"] == "cache.r7g.large"
    assert [ng["Slots"] for ng in rg["NodeGroups"]] == SLOTS
    assert rg["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "SECONDARY"


def test_failover_and_disassociate_keep_working_in_cluster_mode(emu, stack):
    ec = emu.client("elasticache", "us-west-2")
    ec.failover_global_replication_group(
        GlobalReplicationGroupId=GID, PrimaryRegion="us-west-2", PrimaryReplicationGroupId="acme-sessions-usw2"
    )
    emu.wait(lambda: grg(emu)["Status"] == "available")
    assert roles(grg(emu))["acme-sessions-usw2"][0] == "PRIMARY"
    ec.disassociate_global_replication_group(
        GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-use1", ReplicationGroupRegion="us-east-1"
    )
    emu.wait(lambda: grg(emu)["Status"] == "available")
    assert set(roles(grg(emu))) == {"acme-sessions-usw2"}
    rg = emu.client("elasticache", "us-east-1").describe_replication_groups(ReplicationGroupId="acme-sessions-use1")["ReplicationGroups"][0]
    assert rg["ClusterEnabled"] is True and len(rg["NodeGroups"]) == 3
    assert not (rg.get("GlobalReplicationGroupInfo") or {}).get("GlobalReplicationGroupId")


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
    # The API reference's reading, the default (said explicitly here).
    emu.config({"elasticache": {"disassociate_seconds": 30, "failover_with_unreachable_members": "refuse"}})
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


def failover(ec, rg="acme-sessions-usw2", region="us-west-2"):
    return ec.failover_global_replication_group(
        GlobalReplicationGroupId=GID, PrimaryRegion=region, PrimaryReplicationGroupId=rg
    )["GlobalReplicationGroup"]


def add_euw1(emu):
    """A third member, `associating` (the datastore `modifying`) for elasticache.associate_seconds."""
    emu.client("elasticache", "eu-west-1").create_replication_group(
        ReplicationGroupId="acme-sessions-euw1", ReplicationGroupDescription="x", GlobalReplicationGroupId=GID
    )
    assert grg(emu)["Status"] == "modifying"


def test_failover_reading_is_a_validated_config_switch_defaulting_to_refuse(emu):
    cfg = emu.control("GET", "/_drpilot/config")
    assert cfg["elasticache"]["failover_with_unreachable_members"] == "refuse"
    for bad in ["Allow", "yes", True, 1, None]:
        emu.control("POST", "/_drpilot/config", {"elasticache": {"failover_with_unreachable_members": bad}}, expect=400)
    emu.config({"elasticache": {"failover_with_unreachable_members": "allow"}})
    assert emu.control("GET", "/_drpilot/config")["elasticache"]["failover_with_unreachable_members"] == "allow"
    emu.control("POST", "/_drpilot/reset", {"moto": False})
    assert emu.control("GET", "/_drpilot/config")["elasticache"]["failover_with_unreachable_members"] == "refuse"


def test_refuse_reading_refuses_failover_while_another_modification_runs(emu, stack):
    emu.config({"elasticache": {"associate_seconds": 60, "failover_with_unreachable_members": "refuse"}})
    emu.speed(100)
    add_euw1(emu)
    ec = emu.client("elasticache", "us-west-2")
    with pytest.raises(ClientError) as ei:
        failover(ec)
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    emu.wait(lambda: grg(emu)["Status"] == "available")
    assert roles(failover(ec))["acme-sessions-usw2"][0] == "SECONDARY"  # accepted once available


@pytest.mark.parametrize("services", [None, ["elasticache"]])
def test_allow_reading_promotes_with_the_primary_region_down(emu, stack, services):
    emu.config({"elasticache": {"failover_seconds": 60, "failover_with_unreachable_members": "allow"}})
    emu.speed(100)
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset", "services": services})
    ec = emu.client("elasticache", "us-west-2")
    g = failover(ec)
    assert g["Status"] == "modifying"
    assert roles(g)["acme-sessions-use1"][0] == "PRIMARY"  # roles switch when it completes
    g = emu.wait(lambda: (x := grg(emu))["Status"] == "available" and x)
    # "The secondary region will become primary, and all other clusters will become
    # secondary": the unreachable old primary stays a member, as a secondary.
    assert roles(g) == {
        "acme-sessions-usw2": ("PRIMARY", "us-west-2", "associated"),
        "acme-sessions-use1": ("SECONDARY", "us-east-1", "associated"),
    }
    rg = ec.describe_replication_groups(ReplicationGroupId="acme-sessions-usw2")["ReplicationGroups"][0]
    assert rg["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "PRIMARY"
    state = emu.control("GET", "/_drpilot/elasticache")
    assert state["history"][-1] == {
        "global_replication_group": GID,
        "kind": "failover",
        "from": "acme-sessions-use1",
        "to": "acme-sessions-usw2",
    }
    # Once us-east-1 answers again, the old primary is a secondary there too.
    emu.control("DELETE", "/_drpilot/blackholes")
    rg = emu.client("elasticache", "us-east-1").describe_replication_groups(ReplicationGroupId="acme-sessions-use1")[
        "ReplicationGroups"
    ][0]
    assert rg["GlobalReplicationGroupInfo"]["GlobalReplicationGroupMemberRole"] == "SECONDARY"
    assert rg["Status"] == "available"


def test_allow_reading_promotes_while_another_modification_runs(emu, stack):
    emu.config(
        {
            "elasticache": {
                "associate_seconds": 600,
                "failover_seconds": 60,
                "disassociate_seconds": 30,
                "failover_with_unreachable_members": "allow",
            }
        }
    )
    emu.speed(100)
    add_euw1(emu)
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    ec = emu.client("elasticache", "us-west-2")
    # The member still associating cannot be promoted; the other secondary can.
    with pytest.raises(ClientError) as ei:
        failover(emu.client("elasticache", "eu-west-1"), "acme-sessions-euw1", "eu-west-1")
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    g = failover(ec)
    assert g["Status"] == "modifying"
    # Promotions may run in parallel (the same target again here); anything else still
    # needs the datastore available.
    failover(ec)
    with pytest.raises(ClientError) as ei:
        ec.disassociate_global_replication_group(
            GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-usw2", ReplicationGroupRegion="us-west-2"
        )
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    # The promotions complete while the association still runs: the datastore stays
    # modifying until that one ends too.
    g = emu.wait(lambda: (x := grg(emu))["Members"][0]["ReplicationGroupId"] == "acme-sessions-usw2" and x)
    assert g["Status"] == "modifying"
    assert roles(g)["acme-sessions-usw2"] == ("PRIMARY", "us-west-2", "associated")
    assert roles(g)["acme-sessions-use1"] == ("SECONDARY", "us-east-1", "associated")
    assert roles(g)["acme-sessions-euw1"] == ("SECONDARY", "eu-west-1", "associating")
    g = emu.wait(lambda: (x := grg(emu))["Status"] == "available" and x)
    assert roles(g)["acme-sessions-euw1"] == ("SECONDARY", "eu-west-1", "associated")
    assert roles(g)["acme-sessions-usw2"][0] == "PRIMARY"
    assert [h["kind"] for h in emu.control("GET", "/_drpilot/elasticache")["history"]] == ["failover", "failover"]


def test_allow_reading_still_refuses_what_cannot_be_promoted(emu, stack):
    emu.config({"elasticache": {"disassociate_seconds": 600, "failover_with_unreachable_members": "allow"}})
    emu.speed(100)
    ec = emu.client("elasticache", "us-west-2")
    # The primary already is the primary.
    with pytest.raises(ClientError) as ei:
        failover(emu.client("elasticache", "us-east-1"), "acme-sessions-use1", "us-east-1")
    assert code(ei) == ("InvalidParameterValue", 400)
    # A member whose Region's ElastiCache is down cannot become the primary.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset", "services": ["elasticache"]})
    with pytest.raises(ClientError) as ei:
        failover(emu.client("elasticache", "us-east-1"))
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    emu.control("DELETE", "/_drpilot/blackholes")
    # A member leaving the datastore cannot become its primary.
    ec.disassociate_global_replication_group(
        GlobalReplicationGroupId=GID, ReplicationGroupId="acme-sessions-usw2", ReplicationGroupRegion="us-west-2"
    )
    with pytest.raises(ClientError) as ei:
        failover(ec)
    assert code(ei) == ("InvalidGlobalReplicationGroupState", 400)
    assert roles(grg(emu))["acme-sessions-usw2"] == ("SECONDARY", "us-west-2", "disassociating")
