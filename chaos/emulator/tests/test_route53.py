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
                {"Action": "UPSERT", "ResourceRecordSet": cname("db-writer.acme.internal.", stack["aurora"]["clusters"]["acme-prod-usw2"]["endpoint"])},
                {"Action": "UPSERT", "ResourceRecordSet": cname("cache.acme.internal.", stack["valkey"]["members"]["acme-sessions-usw2"]["primary_endpoint"])},
            ],
        },
    )["ChangeInfo"]
    assert info["Status"] == "PENDING" and info["Comment"] == "cutover"
    assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "PENDING"
    emu.wait(lambda: r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC")
    records = {
        r["Name"]: r["ResourceRecords"][0]["Value"]
        for r in r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
        if r["Type"] == "CNAME"
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
        r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": cname("db-writer.acme.internal.", "wrong.example", 30)}]})
    assert code(ei) == ("InvalidChangeBatch", 400)
    assert "do not match" in ei.value.response["Error"]["Message"]
    current = stack["aurora"]["clusters"]["acme-prod-use1"]["endpoint"]
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": cname("db-writer.acme.internal.", current, 30)}]})
    names = [r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]]
    assert "db-writer.acme.internal." not in names


def test_batches_are_all_or_nothing(emu, stack):
    r53 = emu.client("route53")
    zid = zone_id(stack, "acme.internal.")
    before = r53.list_resource_record_sets(HostedZoneId=zid)["ResourceRecordSets"]
    with pytest.raises(ClientError) as ei:
        r53.change_resource_record_sets(
            HostedZoneId=zid,
            ChangeBatch={"Changes": [
                {"Action": "UPSERT", "ResourceRecordSet": cname("db-writer.acme.internal.", "changed.example")},
                {"Action": "CREATE", "ResourceRecordSet": cname("cache.acme.internal.", "dup.example")},
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
