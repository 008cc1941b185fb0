"""Route 53 ARC routing control: the us-west-2 control plane and the five-Region
cluster data plane, driven with boto3 the way AWS documents them."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def config(emu):
    return emu.client("route53-recovery-control-config", "us-west-2")


def cluster(emu, stack, region="us-west-2", **kw):
    """The data plane client for one of the seeded cluster's Regional endpoints."""
    ep = next(e for e in stack["arc"]["cluster"]["endpoints"] if e["region"] == region)
    client = emu.client("route53-recovery-cluster", region, **kw)
    assert ep["endpoint"] == emu.url == client.meta.endpoint_url
    return client


def arn(stack, name):
    return stack["arc"]["routing_controls"][name]["arn"]


def states(dp, stack):
    return {n: dp.get_routing_control_state(RoutingControlArn=arn(stack, n))["RoutingControlState"] for n in ("cell-use1", "cell-usw2")}


def entry(stack, name, state):
    return {"RoutingControlArn": arn(stack, name), "RoutingControlState": state}


def test_cluster_has_five_endpoints_and_a_default_control_panel(emu):
    emu.config({"arc": {"cluster_create_seconds": 60}})
    emu.speed(100)
    cc = config(emu)
    cl = cc.create_cluster(ClusterName="dr-test", ClientToken="tok-1")["Cluster"]
    assert re.fullmatch(rf"arn:aws:route53-recovery-control::{emu.account}:cluster/[0-9a-f-]{{36}}", cl["ClusterArn"])
    assert cl["Status"] == "PENDING" and cl["Name"] == "dr-test" and cl["Owner"] == emu.account
    assert cl["ClusterEndpoints"] == [{"Endpoint": emu.url, "Region": r} for r in REGIONS]
    # ClientToken makes CreateCluster idempotent.
    assert cc.create_cluster(ClusterName="dr-test", ClientToken="tok-1")["Cluster"]["ClusterArn"] == cl["ClusterArn"]
    panels = cc.list_control_panels(ClusterArn=cl["ClusterArn"])["ControlPanels"]
    assert [(p["Name"], p["DefaultControlPanel"], p["RoutingControlCount"]) for p in panels] == [("DefaultControlPanel", True, 0)]
    emu.wait(lambda: cc.describe_cluster(ClusterArn=cl["ClusterArn"])["Cluster"]["Status"] == "DEPLOYED")
    assert cc.describe_control_panel(ControlPanelArn=panels[0]["ControlPanelArn"])["ControlPanel"]["Status"] == "DEPLOYED"
    assert [c["ClusterArn"] for c in cc.list_clusters()["Clusters"]] == [cl["ClusterArn"]]
    # A routing control without a control panel goes to the default one.
    rc = cc.create_routing_control(ClusterArn=cl["ClusterArn"], RoutingControlName="rc")["RoutingControl"]
    assert rc["ControlPanelArn"] == panels[0]["ControlPanelArn"]
    with pytest.raises(ClientError) as ei:
        cc.describe_cluster(ClusterArn=cl["ClusterArn"] + "0")
    assert code(ei) == ("ResourceNotFoundException", 404)


def test_control_plane_answers_in_us_west_2_only(emu):
    with pytest.raises(ClientError) as ei:
        emu.client("route53-recovery-control-config", "us-east-1").list_clusters()
    assert code(ei) == ("InvalidSignatureException", 403)
    assert "scoped to a valid region" in ei.value.response["Error"]["Message"]
    config(emu).list_clusters()
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-west-2", "mode": "reset"})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        config(emu).list_clusters()


def test_routing_controls_and_safety_rules(emu, stack):
    cc = config(emu)
    panel = stack["arc"]["control_panel"]["arn"]
    cluster_arn = stack["arc"]["cluster"]["arn"]
    assert re.fullmatch(rf"arn:aws:route53-recovery-control::{emu.account}:controlpanel/[0-9a-f]{{32}}", panel)
    assert re.fullmatch(re.escape(panel) + r"/routingcontrol/[0-9a-f]{16}", arn(stack, "cell-use1"))
    described = cc.describe_control_panel(ControlPanelArn=panel)["ControlPanel"]
    assert described["Name"] == "acme-prod" and described["RoutingControlCount"] == 2 and described["DefaultControlPanel"] is False
    listed = cc.list_routing_controls(ControlPanelArn=panel)["RoutingControls"]
    assert {(r["Name"], r["Status"]) for r in listed} == {("cell-use1", "DEPLOYED"), ("cell-usw2", "DEPLOYED")}
    rules = cc.list_safety_rules(ControlPanelArn=panel)["SafetyRules"]
    assert len(rules) == 1
    rule = rules[0]["ASSERTION"]
    assert rule["SafetyRuleArn"] == stack["arc"]["safety_rules"]["at-least-one-cell-on"]["arn"]
    assert rule["RuleConfig"] == {"Type": "ATLEAST", "Threshold": 1, "Inverted": False}
    assert rule["WaitPeriodMs"] == 5000 and rule["Status"] == "DEPLOYED"
    assert sorted(rule["AssertedControls"]) == sorted([arn(stack, "cell-use1"), arn(stack, "cell-usw2")])
    # A new routing control is Off, and on the cluster only once DEPLOYED.
    emu.config({"arc": {"create_seconds": 60}})
    emu.speed(100)
    rc = cc.create_routing_control(ClusterArn=cluster_arn, ControlPanelArn=panel, RoutingControlName="cell-euw1")["RoutingControl"]
    assert rc["Status"] == "PENDING"
    dp = cluster(emu, stack)
    with pytest.raises(ClientError) as ei:
        dp.get_routing_control_state(RoutingControlArn=rc["RoutingControlArn"])
    assert code(ei) == ("ResourceNotFoundException", 404)
    assert ei.value.response["resourceId"] == rc["RoutingControlArn"]
    emu.wait(lambda: cc.describe_routing_control(RoutingControlArn=rc["RoutingControlArn"])["RoutingControl"]["Status"] == "DEPLOYED")
    got = dp.get_routing_control_state(RoutingControlArn=rc["RoutingControlArn"])
    assert (got["RoutingControlState"], got["RoutingControlName"]) == ("Off", "cell-euw1")
    # Names are unique within a control panel.
    with pytest.raises(ClientError) as ei:
        cc.create_routing_control(ClusterArn=cluster_arn, ControlPanelArn=panel, RoutingControlName="cell-euw1")
    assert code(ei) == ("ConflictException", 409)
    with pytest.raises(ClientError) as ei:
        cc.create_safety_rule(
            AssertionRule={
                "AssertedControls": [rc["RoutingControlArn"]],
                "ControlPanelArn": panel + "0",
                "Name": "x",
                "RuleConfig": {"Type": "ATLEAST", "Threshold": 1, "Inverted": False},
                "WaitPeriodMs": 5000,
            }
        )
    assert code(ei) == ("ValidationException", 400)
    # A routing control a safety rule uses can't be deleted; an unused one can.
    with pytest.raises(ClientError) as ei:
        cc.delete_routing_control(RoutingControlArn=arn(stack, "cell-use1"))
    assert code(ei) == ("ConflictException", 409)
    emu.config({"arc": {"delete_seconds": 60}})
    cc.delete_routing_control(RoutingControlArn=rc["RoutingControlArn"])
    assert cc.describe_routing_control(RoutingControlArn=rc["RoutingControlArn"])["RoutingControl"]["Status"] == "PENDING_DELETION"

    def gone():
        try:
            cc.describe_routing_control(RoutingControlArn=rc["RoutingControlArn"])
        except ClientError as e:
            return e.response["Error"]["Code"] == "ResourceNotFoundException"
        return False

    emu.wait(gone)


def test_updates_are_atomic_and_guarded_by_safety_rules(emu, stack):
    emu.speed(1)  # the rule's wait period is 5 s
    dp = cluster(emu, stack)
    assert states(dp, stack) == {"cell-use1": "On", "cell-usw2": "Off"}
    rule = stack["arc"]["safety_rules"]["at-least-one-cell-on"]["arn"]
    # Both Off: refused by the assertion rule; nothing changes.
    with pytest.raises(ClientError) as ei:
        dp.update_routing_control_state(RoutingControlArn=arn(stack, "cell-use1"), RoutingControlState="Off")
    assert code(ei) == ("ConflictException", 409)
    assert ei.value.response["resourceId"] == rule
    # One unknown routing control fails the whole batch.
    with pytest.raises(ClientError) as ei:
        dp.update_routing_control_states(
            UpdateRoutingControlStateEntries=[entry(stack, "cell-usw2", "On"), {"RoutingControlArn": arn(stack, "cell-use1")[:-1] + "x", "RoutingControlState": "Off"}]
        )
    assert code(ei) == ("ResourceNotFoundException", 404)
    assert states(dp, stack) == {"cell-use1": "On", "cell-usw2": "Off"}
    # The swap in one transaction satisfies the rule.
    dp.update_routing_control_states(UpdateRoutingControlStateEntries=[entry(stack, "cell-use1", "Off"), entry(stack, "cell-usw2", "On")])
    assert states(dp, stack) == {"cell-use1": "Off", "cell-usw2": "On"}
    # The rule's wait period (5000 emulated ms) refuses the next change of its controls.
    with pytest.raises(ClientError) as ei:
        dp.update_routing_control_state(RoutingControlArn=arn(stack, "cell-use1"), RoutingControlState="On")
    assert code(ei) == ("ConflictException", 409)
    assert "wait period" in ei.value.response["Error"]["Message"]
    emu.speed(1000)
    emu.wait(lambda: emu.control("GET", "/_drpilot/arc")["safety_rules"][rule]["wait_until"] < emu.control("GET", "/_drpilot/clock")["now"])
    # Break glass: overriding the rule lets both go Off.
    dp.update_routing_control_states(
        UpdateRoutingControlStateEntries=[entry(stack, "cell-usw2", "Off")], SafetyRulesToOverride=[rule]
    )
    assert states(dp, stack) == {"cell-use1": "Off", "cell-usw2": "Off"}
    listed = dp.list_routing_controls(ControlPanelArn=stack["arc"]["control_panel"]["arn"])["RoutingControls"]
    assert {(r["RoutingControlName"], r["RoutingControlState"], r["ControlPanelName"]) for r in listed} == {
        ("cell-use1", "Off", "acme-prod"),
        ("cell-usw2", "Off", "acme-prod"),
    }
    history = emu.control("GET", "/_drpilot/arc")["history"]
    assert history[-1]["overridden"] == [rule] and history[-1]["region"] == "us-west-2"


def test_gating_rule_needs_its_gating_control_on(emu, stack):
    cc = config(emu)
    panel = stack["arc"]["control_panel"]["arn"]
    gate = cc.create_routing_control(ClusterArn=stack["arc"]["cluster"]["arn"], ControlPanelArn=panel, RoutingControlName="automation-allowed")[
        "RoutingControl"
    ]["RoutingControlArn"]
    rule = cc.create_safety_rule(
        GatingRule={
            "ControlPanelArn": panel,
            "GatingControls": [gate],
            "TargetControls": [arn(stack, "cell-usw2")],
            "Name": "gate",
            "RuleConfig": {"Type": "OR", "Threshold": 1, "Inverted": False},
            "WaitPeriodMs": 0,
        }
    )["GatingRule"]
    emu.wait(lambda: cc.describe_safety_rule(SafetyRuleArn=rule["SafetyRuleArn"])["GatingRule"]["Status"] == "DEPLOYED")
    dp = cluster(emu, stack, "eu-west-1")
    with pytest.raises(ClientError) as ei:
        dp.update_routing_control_state(RoutingControlArn=arn(stack, "cell-usw2"), RoutingControlState="On")
    assert code(ei) == ("ConflictException", 409)
    dp.update_routing_control_state(RoutingControlArn=gate, RoutingControlState="On")
    dp.update_routing_control_state(RoutingControlArn=arn(stack, "cell-usw2"), RoutingControlState="On")
    assert states(dp, stack)["cell-usw2"] == "On"


def test_data_plane_regions_and_a_blackholed_endpoint(emu, stack):
    # Each of the cluster's five Regional endpoints answers; other Regions don't exist.
    for region in REGIONS:
        assert states(cluster(emu, stack, region), stack)["cell-use1"] == "On"
    with pytest.raises(ClientError) as ei:
        emu.client("route53-recovery-cluster", "eu-central-1").list_routing_controls()
    assert code(ei) == ("InvalidSignatureException", 403)
    # us-east-1 goes dark: its endpoint fails, the us-west-2 one takes the update.
    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset"})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        cluster(emu, stack, "us-east-1").update_routing_control_states(
            UpdateRoutingControlStateEntries=[entry(stack, "cell-use1", "Off"), entry(stack, "cell-usw2", "On")]
        )
    dp = cluster(emu, stack, "us-west-2")
    assert states(dp, stack) == {"cell-use1": "On", "cell-usw2": "Off"}  # the dropped request did nothing
    dp.update_routing_control_states(UpdateRoutingControlStateEntries=[entry(stack, "cell-use1", "Off"), entry(stack, "cell-usw2", "On")])
    assert states(dp, stack) == {"cell-use1": "Off", "cell-usw2": "On"}
    assert emu.control("GET", "/_drpilot/blackholes")["blackholes"][0]["dropped"] == 1


@pytest.mark.parametrize(
    "service,region,call,kind,status,expected",
    [
        ("route53-recovery-cluster", "us-west-2", lambda c: c.list_routing_controls(), {"kind": "throttle"}, 429, "ThrottlingException"),
        ("route53-recovery-cluster", "us-west-2", lambda c: c.list_routing_controls(), {"kind": "error", "status": 503}, 503, "EndpointTemporarilyUnavailableException"),
        ("route53-recovery-cluster", "us-west-2", lambda c: c.list_routing_controls(), {"kind": "error", "status": 500}, 500, "InternalServerException"),
        ("route53-recovery-control-config", "us-west-2", lambda c: c.list_clusters(), {"kind": "throttle"}, 429, "ThrottlingException"),
        ("route53-recovery-control-config", "us-west-2", lambda c: c.list_clusters(), {"kind": "error", "status": 500}, 500, "InternalServerException"),
    ],
)
def test_fault_rules_use_the_services_error_shapes(emu, service, region, call, kind, status, expected):
    rule = emu.control("POST", "/_drpilot/faults", {**kind, "service": service, "region": region, "count": 1})
    with pytest.raises(ClientError) as ei:
        call(emu.client(service, region))
    assert code(ei) == (expected, status)
    assert emu.control("GET", "/_drpilot/faults")["rules"][0] == {**rule, "fired": 1}
    if status != 500:
        # The SDK's standard retry mode retries throttling and 503: the next call
        # succeeds on its second attempt.
        emu.control("POST", "/_drpilot/faults", {**kind, "service": service, "count": 1})
        assert call(emu.client(service, region, retries=3))["ResponseMetadata"]["RetryAttempts"] == 1


def test_control_plane_updates_tags_and_deletes(emu):
    emu.config({"arc": {"cluster_create_seconds": 0, "create_seconds": 0, "delete_seconds": 30}})
    emu.speed(100)
    cc = config(emu)
    cl = cc.create_cluster(ClusterName="c1", Tags={"team": "dr"})["Cluster"]["ClusterArn"]
    panel = cc.create_control_panel(ClusterArn=cl, ControlPanelName="p1")["ControlPanel"]["ControlPanelArn"]
    a = cc.create_routing_control(ClusterArn=cl, ControlPanelArn=panel, RoutingControlName="a")["RoutingControl"]["RoutingControlArn"]
    b = cc.create_routing_control(ClusterArn=cl, ControlPanelArn=panel, RoutingControlName="b")["RoutingControl"]["RoutingControlArn"]
    rule = cc.create_safety_rule(
        AssertionRule={
            "AssertedControls": [a, b],
            "ControlPanelArn": panel,
            "Name": "r1",
            "RuleConfig": {"Type": "AND", "Threshold": 0, "Inverted": True},
            "WaitPeriodMs": 5000,
        }
    )["AssertionRule"]["SafetyRuleArn"]
    assert cc.list_tags_for_resource(ResourceArn=cl)["Tags"] == {"team": "dr"}
    cc.tag_resource(ResourceArn=rule, Tags={"k": "v"})
    cc.untag_resource(ResourceArn=cl, TagKeys=["team"])
    assert (cc.list_tags_for_resource(ResourceArn=cl)["Tags"], cc.list_tags_for_resource(ResourceArn=rule)["Tags"]) == ({}, {"k": "v"})
    assert cc.update_control_panel(ControlPanelArn=panel, ControlPanelName="p2")["ControlPanel"]["Name"] == "p2"
    assert cc.update_routing_control(RoutingControlArn=a, RoutingControlName="a2")["RoutingControl"]["Name"] == "a2"
    updated = cc.update_safety_rule(AssertionRuleUpdate={"SafetyRuleArn": rule, "Name": "r2", "WaitPeriodMs": 0})["AssertionRule"]
    assert (updated["Name"], updated["WaitPeriodMs"]) == ("r2", 0)
    with pytest.raises(ClientError) as ei:
        cc.get_resource_policy(ResourceArn=cl)
    assert code(ei) == ("ResourceNotFoundException", 404)
    # Deleting what is still in use is a conflict; the default control panel goes only with its cluster.
    for call in (lambda: cc.delete_control_panel(ControlPanelArn=panel), lambda: cc.delete_cluster(ClusterArn=cl)):
        with pytest.raises(ClientError) as ei:
            call()
        assert code(ei) == ("ConflictException", 409)
    default = next(p for p in cc.list_control_panels(ClusterArn=cl)["ControlPanels"] if p["DefaultControlPanel"])
    with pytest.raises(ClientError) as ei:
        cc.delete_control_panel(ControlPanelArn=default["ControlPanelArn"])
    assert code(ei) == ("ValidationException", 400)
    cc.delete_safety_rule(SafetyRuleArn=rule)
    assert cc.describe_safety_rule(SafetyRuleArn=rule)["AssertionRule"]["Status"] == "PENDING_DELETION"
    emu.config({"arc": {"delete_seconds": 0}})
    emu.wait(lambda: cc.list_safety_rules(ControlPanelArn=panel)["SafetyRules"] == [])
    cc.delete_routing_control(RoutingControlArn=a)
    cc.delete_routing_control(RoutingControlArn=b)
    emu.wait(lambda: cc.list_routing_controls(ControlPanelArn=panel)["RoutingControls"] == [])
    cc.delete_control_panel(ControlPanelArn=panel)
    emu.wait(lambda: [p["ControlPanelArn"] for p in cc.list_control_panels()["ControlPanels"]] == [default["ControlPanelArn"]])
    cc.delete_cluster(ClusterArn=cl)
    emu.wait(lambda: cc.list_clusters()["Clusters"] == [] and cc.list_control_panels()["ControlPanels"] == [])
