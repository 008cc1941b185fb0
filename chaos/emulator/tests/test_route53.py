"""Route 53: change propagation, health-check status, and what AWS rejects."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError


def zone_id(stack, name):
    return stack["route53"]["zones"][name]["id"]


def code(ei):
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


def cname(name, value, ttl=30, **extra):
    rs = {"Name": name, "Type": "CNAME", "TTL": ttl, "ResourceRecords": [{"Value": value}]}
    rs.update(extra)
    return rs


def primary(stack, name, value):
    """The seeded PRIMARY failover record of NAME, with another value."""
    hc = stack["route53"]["health_checks"]["rc-use1"]["id"]
    return cname(name, value, SetIdentifier="use1", Failover="PRIMARY", HealthCheckId=hc)


def answer(emu, stack, name, rtype="CNAME", zone="acme.internal.", expect=200):
    return emu.control("GET", f"/_drpilot/route53/answer?zone_id={zone_id(stack, zone)}&name={name}&type={rtype}", expect=expect)


def test_change_is_pending_then_insync(emu, stack):
    emu.config({"route53": {"propagation_seconds": 60}})
    emu.speed(100)
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    info = r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={
            "Comment": "cutover",
            "Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": primary(stack, "db-writer.acme.internal.", stack["aurora"]["clusters"]["acme-prod-usw2"]["endpoint"])},
                {"Action": "UPSERT", "ResourceRecordSet": primary(stack, "cache.acme.internal.", stack["valkey"]["members"]["acme-sessions-usw2"]["configuration_endpoint"])},
            ],
        },
    )["ChangeInfo"]
    assert info["Status"] == "PENDING" and info["Comment"] == "cutover"
    assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "PENDING"
    emu.wait(lambda: r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC")
    records = {
        r["Name"]: r["ResourceRecords"][0]["Value"]
        for r in r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
        if r["Type"] == "CNAME" and r.get("Failover") == "PRIMARY"
    }
    assert records["db-writer.acme.internal."] == stack["aurora"]["clusters"]["acme-prod-usw2"]["endpoint"]
    # Each change has its own id.
    other = r53.change_resource_record_sets(
        HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": cname("x.acme.internal.", "y")}]}
    )["ChangeInfo"]
    assert other["Id"] != info["Id"]
    with pytest.raises(ClientError) as ei:
        r53.get_change(Id="/change/CNOSUCHCHANGE")
    assert code(ei) == ("NoSuchChange", 404)


def test_second_secondary_for_a_name_is_rejected(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.example.")
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(
            HostedZoneId=zid,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": cname("api.acme.example.", "api-euw1.acme.example", 60, SetIdentifier="api-euw1", Failover="SECONDARY")}]},
        )
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "SECONDARY" in ei.value.response["Error"]["Message"]


def test_unknown_health_check_is_rejected(emu, stack):
    r53 = emu.client("route53")
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(
            HostedZoneId=zone_id(stack, "acme.example."),
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": cname("api.acme.example.", "api-use1.acme.example", 60, SetIdentifier="api-use1", Failover="PRIMARY", HealthCheckId=str(uuid.uuid4()))}]},
        )
    assert code(ei) == ("NoSuchHealthCheck", 404)


def test_delete_must_match_an_existing_record_exactly(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": cname("nothere.acme.internal.", "x")}]})
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "not found" in ei.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": primary(stack, "db-writer.acme.internal.", "wrong.example")}]})
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "do not match" in ei.value.response["Error"]["Message"]
    current = stack["aurora"]["clusters"]["acme-prod-use1"]["endpoint"]
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": primary(stack, "db-writer.acme.internal.", current)}]})
    left = [r.get("SetIdentifier") for r in r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"] if r["Name"] == "db-writer.acme.internal."]
    assert left == ["usw2"]


def test_batches_are_all_or_nothing(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    before = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(
            HostedZoneId=zid,
            ChangeBatch={"Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": primary(stack, "db-writer.acme.internal.", "changed.example")},
                {"Action": "CREATE", "ResourceRecordSet": primary(stack, "cache.acme.internal.", "dup.example")},
            ]},
        )
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "already exists" in ei.value.response["Error"]["Message"]
    assert r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"] == before
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(
            HostedZoneId=zid,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": "db-writer.acme.internal.", "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]},
        )
    assert code(ei) == ("InvalidChangeBatch", 400)  # conflicts with the CNAME


def test_health_check_status_follows_control_inverted_and_disabled(emu, stack):
    r53 = emu.client("route53")
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]

    def statuses():
        obs = r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"]
        assert len(obs) >= 3
        return {o["StatusReport"]["Status"].split(":")[0] for o in obs}

    assert statuses() == {"Success"}
    emu.control("POST", f"/_drpilot/route53/health-checks/{hid}", {"healthy": False})
    assert statuses() == {"Failure"}
    emu.control("POST", f"/_drpilot/route53/health-checks/{hid}", {"healthy": True})
    r53.update_health_check(HealthCheckId=hid, Inverted=True)
    assert statuses() == {"Failure"}
    r53.update_health_check(HealthCheckId=hid, Inverted=False, Disabled=True)
    emu.control("POST", f"/_drpilot/route53/health-checks/{hid}", {"healthy": False})
    assert statuses() == {"Success"}  # a disabled check is healthy
    r53.update_health_check(HealthCheckId=hid, Inverted=True)
    assert statuses() == {"Failure"}  # disabled and inverted: unhealthy
    with pytest.raises(ClientError) as ei:
        r53.get_health_check_status(HealthCheckId=str(uuid.uuid4()))
    assert code(ei) == ("NoSuchHealthCheck", 404)


def test_health_check_status_change_is_delayed(emu, stack):
    emu.config({"route53": {"health_check_delay_seconds": 60}})
    emu.speed(100)
    r53 = emu.client("route53")
    hid = stack["route53"]["health_checks"]["api-primary"]["id"]
    r53.update_health_check(HealthCheckId=hid, Inverted=True)
    first = r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"][0]["StatusReport"]["Status"]
    assert first.startswith("Success")
    emu.wait(lambda: r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"][0]["StatusReport"]["Status"].startswith("Failure"))


def test_recovery_control_health_checks_follow_their_routing_controls(emu, stack):
    r53 = emu.client("route53")
    use1 = stack["route53"]["health_checks"]["rc-use1"]["id"]
    usw2 = stack["route53"]["health_checks"]["rc-usw2"]["id"]
    rc_use1 = stack["arc"]["routing_controls"]["cell-use1"]["arn"]
    config = r53.get_health_check(HealthCheckId=use1)["HealthCheck"]["HealthCheckConfig"]
    assert config == {"Type": "RECOVERY_CONTROL", "Inverted": False, "Disabled": False, "RoutingControlArn": rc_use1}

    def status(hid):
        obs = r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"]
        return {o["StatusReport"]["Status"].split(":")[0] for o in obs}

    assert (status(use1), status(usw2)) == ({"Success"}, {"Failure"})
    arc_cfg = emu.client("route53-recovery-control-config", "us-west-2")
    assert arc_cfg.list_associated_route53_health_checks(RoutingControlArn=rc_use1)["HealthCheckIds"] == [use1]
    dp = emu.client("route53-recovery-cluster", "us-west-2")
    dp.update_routing_control_states(
        UpdateRoutingControlStateEntries=[
            {"RoutingControlArn": rc_use1, "RoutingControlState": "Off"},
            {"RoutingControlArn": stack["arc"]["routing_controls"]["cell-usw2"]["arn"], "RoutingControlState": "On"},
        ]
    )
    assert (status(use1), status(usw2)) == ({"Failure"}, {"Success"})
    r53.update_health_check(HealthCheckId=use1, Inverted=True)
    assert status(use1) == {"Success"}
    # Its health is the routing control's, not something to set from outside.
    emu.control("POST", f"/_drpilot/route53/health-checks/{use1}", {"healthy": True}, expect=400)
    # What the model's documentation rules out for this type.
    for extra in ({"RequestInterval": 30}, {"FailureThreshold": 3}, {}):
        cfg = {"Type": "RECOVERY_CONTROL", **extra}
        if extra:
            cfg["RoutingControlArn"] = rc_use1
        with pytest.raises(ClientError) as ei:
            r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig=cfg)
        assert code(ei) == ("InvalidInput", 400)
    with pytest.raises(ClientError) as ei:
        r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": "x.example", "RoutingControlArn": rc_use1})
    assert code(ei) == ("InvalidInput", 400)


def test_recovery_control_status_change_is_delayed(emu, stack):
    emu.config({"route53": {"health_check_delay_seconds": 60}})
    emu.speed(100)
    r53 = emu.client("route53")
    hid = stack["route53"]["health_checks"]["rc-usw2"]["id"]
    emu.client("route53-recovery-cluster", "eu-west-1").update_routing_control_state(
        RoutingControlArn=stack["arc"]["routing_controls"]["cell-usw2"]["arn"], RoutingControlState="On"
    )
    first = r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"][0]["StatusReport"]["Status"]
    assert first.startswith("Failure")
    emu.wait(lambda: r53.get_health_check_status(HealthCheckId=hid)["HealthCheckObservations"][0]["StatusReport"]["Status"].startswith("Success"))


def test_dns_answer_follows_failover_routing(emu, stack):
    use1 = stack["aurora"]["clusters"]["acme-prod-use1"]["endpoint"]
    usw2 = stack["aurora"]["clusters"]["acme-prod-usw2"]["endpoint"]
    got = answer(emu, stack, "db-writer.acme.internal.")
    assert got["values"] == [use1]
    assert got["record"]["set_identifier"] == "use1" and got["record"]["failover"] == "PRIMARY" and got["record"]["healthy"] is True
    assert answer(emu, stack, "cache.acme.internal", "cname")["values"] == [stack["valkey"]["members"]["acme-sessions-use1"]["configuration_endpoint"]]
    dp = emu.client("route53-recovery-cluster", "us-west-2")
    rcs = stack["arc"]["routing_controls"]
    rule = stack["arc"]["safety_rules"]["at-least-one-cell-on"]["arn"]

    def flip(use1_state, usw2_state):
        dp.update_routing_control_states(
            UpdateRoutingControlStateEntries=[
                {"RoutingControlArn": rcs["cell-use1"]["arn"], "RoutingControlState": use1_state},
                {"RoutingControlArn": rcs["cell-usw2"]["arn"], "RoutingControlState": usw2_state},
            ],
            SafetyRulesToOverride=[rule],
        )

    flip("Off", "On")
    got = answer(emu, stack, "db-writer.acme.internal.")
    assert got["values"] == [usw2] and got["record"]["failover"] == "SECONDARY"
    # Both unhealthy: Route 53 answers with the primary.
    flip("Off", "Off")
    got = answer(emu, stack, "db-writer.acme.internal.")
    assert got["values"] == [use1] and got["record"]["failover"] == "PRIMARY" and got["record"]["healthy"] is False
    assert {r["set_identifier"]: r["healthy"] for r in got["evaluated"]} == {"use1": False, "usw2": False}
    # The public zone: a secondary without a health check takes over from an unhealthy primary.
    hc = stack["route53"]["health_checks"]["api-primary"]["id"]
    assert answer(emu, stack, "api.acme.example.", zone="acme.example.")["values"] == ["api-use1.acme.example"]
    emu.control("POST", f"/_drpilot/route53/health-checks/{hc}", {"healthy": False})
    assert answer(emu, stack, "api.acme.example.", zone="acme.example.")["values"] == ["api-usw2.acme.example"]
    # Simple records, aliases within the zone, and what is not answered.
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={"Changes": [
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "bastion.acme.internal.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.20.0.5"}, {"Value": "10.20.0.6"}]}},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "jump.acme.internal.", "Type": "A", "AliasTarget": {"HostedZoneId": zid, "DNSName": "bastion.acme.internal.", "EvaluateTargetHealth": False}}},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": "w.acme.internal.", "Type": "A", "TTL": 60, "SetIdentifier": "a", "Weight": 1, "ResourceRecords": [{"Value": "10.20.0.7"}]}},
        ]},
    )
    assert answer(emu, stack, "bastion.acme.internal.", "A")["values"] == ["10.20.0.5", "10.20.0.6"]
    got = answer(emu, stack, "jump.acme.internal.", "A")
    assert got["values"] == ["10.20.0.5", "10.20.0.6"] and got["alias"]["record"]["name"] == "bastion.acme.internal."
    answer(emu, stack, "w.acme.internal.", "A", expect=400)  # weighted routing is not evaluated
    answer(emu, stack, "nothing.acme.internal.", "A", expect=404)
    answer(emu, stack, "bastion.acme.internal.", "TXT", expect=404)
    # Any type at a name that holds a CNAME answers with the CNAME, as DNS does.
    assert answer(emu, stack, "db-writer.acme.internal.", "A")["type"] == "CNAME"
    emu.control("GET", "/_drpilot/route53/answer?zone_id=ZNOSUCHZONE&name=x.&type=A", expect=404)
    emu.control("GET", "/_drpilot/route53/answer?name=x.&type=A", expect=400)


def test_hosted_zone_limit_of_record_sets(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.example.")
    got = r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId=zid)
    # Every record set counts, the SOA and NS Route 53 created included (4: SOA, NS, api x2).
    assert got["Limit"] == {"Type": "MAX_RRSETS_BY_ZONE", "Value": 10000} and got["Count"] == 4
    assert got["Count"] == r53.get_hosted_zone(Id=zid)["HostedZone"]["ResourceRecordSetCount"]
    emu.config({"route53": {"max_rrsets_by_zone": 50}})
    r53.change_resource_record_sets(
        HostedZoneId=zid,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": "www.acme.example.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]}}]},
    )
    got = r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId=f"/hostedzone/{zid}")
    assert got["Limit"] == {"Type": "MAX_RRSETS_BY_ZONE", "Value": 50} and got["Count"] == 5  # a set counts once
    for bad in (0, 2.5, True, "10"):
        emu.control("POST", "/_drpilot/config", {"route53": {"max_rrsets_by_zone": bad}}, expect=400)
    with pytest.raises(ClientError) as ei:
        r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId="ZNOSUCHZONE")
    assert code(ei) == ("NoSuchHostedZone", 404)
    with pytest.raises(ClientError) as ei:
        r53.get_hosted_zone_limit(Type="MAX_HEALTH_CHECKS", HostedZoneId=zid)
    assert code(ei) == ("InvalidInput", 400)


def test_hosted_zone_limit_of_vpcs(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    got = r53.get_hosted_zone_limit(Type="MAX_VPCS_ASSOCIATED_BY_ZONE", HostedZoneId=zid)
    assert got["Limit"] == {"Type": "MAX_VPCS_ASSOCIATED_BY_ZONE", "Value": 300} and got["Count"] == 1
    vpc = emu.client("ec2", "us-west-2").create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    r53.associate_vpc_with_hosted_zone(HostedZoneId=zid, VPC={"VPCRegion": "us-west-2", "VPCId": vpc})
    assert r53.get_hosted_zone_limit(Type="MAX_VPCS_ASSOCIATED_BY_ZONE", HostedZoneId=zid)["Count"] == 2
    # The private zone's record sets: SOA, NS and the two failover pairs.
    assert r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId=zid)["Count"] == 6
    with pytest.raises(ClientError) as ei:
        r53.get_hosted_zone_limit(Type="MAX_VPCS_ASSOCIATED_BY_ZONE", HostedZoneId=zone_id(stack, "acme.example."))
    assert code(ei) == ("HostedZoneNotPrivate", 400)


def test_a_batch_holds_at_most_32000_value_characters_and_an_upsert_counts_twice(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    value = '"' + "x" * 240 + '" "' + "y" * 240 + '"'  # two 240-character strings: 485
    def txt(i, action):
        return {"Action": action, "ResourceRecordSet": {
            "Name": f"t{i}.acme.internal.", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": value}],
        }}
    before = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    # 66 CREATEs: 32,010 characters.
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [txt(i, "CREATE") for i in range(66)]})
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "32000" in ei.value.response["Error"]["Message"]
    assert r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"] == before
    # 33 UPSERTs count as 66: refused too; 33 CREATEs (16,005) are fine.
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [txt(i, "UPSERT") for i in range(33)]})
    assert code(ei) == ("InvalidChangeBatch", 400)
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [txt(i, "CREATE") for i in range(33)]})
    names = {r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zid, MaxItems="300")["ResourceRecordSets"]}
    assert "t32.acme.internal." in names
