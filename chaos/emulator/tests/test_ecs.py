"""Amazon ECS services over emulated time (ext/ecs.py): tasks start and stop after the
configured times, the PRIMARY deployment's counts and rolloutState, the steady-state
event, the errors of UpdateService and DescribeServices."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT


def code(ei: Any) -> tuple[str, int]:
    return ei.value.response["Error"]["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def cluster(emu: Any) -> Any:
    """A cluster with one task definition; tasks take 10 s to start, 20 s to drain
    (emulated), the clock at 20x: 0.5 s and 1 s."""
    emu.speed(20)
    emu.config({"ecs": {"task_start_seconds": 10, "task_drain_seconds": 20}})
    ecs = emu.client("ecs")
    ecs.create_cluster(clusterName="acme-prod")
    td = ecs.register_task_definition(
        family="acme-app", containerDefinitions=[{"name": "app", "image": "busybox", "memory": 512}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.td = td  # type: ignore[attr-defined]
    return ecs


def describe(ecs: Any, name: str = "worker") -> dict:
    return ecs.describe_services(cluster="acme-prod", services=[name])["services"][0]


def primary(service: dict) -> dict:
    [d] = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
    return d


def steady_events(service: dict) -> list[str]:
    return [e["message"] for e in service["events"] if e["message"].endswith("has reached a steady state.")]


def test_create_service_starts_tasks_over_time_then_reaches_steady_state(emu: Any, cluster: Any) -> None:
    created = cluster.create_service(
        cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=3, launchType="EC2"
    )["service"]
    assert created["serviceArn"] == f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/acme-prod/worker"
    assert (created["desiredCount"], created["runningCount"], created["pendingCount"]) == (3, 0, 3)
    d = primary(created)
    assert (d["desiredCount"], d["runningCount"], d["pendingCount"], d["rolloutState"]) == (3, 0, 3, "IN_PROGRESS")
    assert not steady_events(created)
    # Still pending a moment later (10 emulated seconds = 0.5 s).
    s = describe(cluster)
    assert s["pendingCount"] == 3 and s["runningCount"] == 0
    s = emu.wait(lambda: (lambda x: x if x["runningCount"] == 3 else None)(describe(cluster)), timeout=5)
    assert s["pendingCount"] == 0
    d = primary(s)
    assert (d["runningCount"], d["pendingCount"], d["rolloutState"]) == (3, 0, "COMPLETED")
    assert d["rolloutStateReason"] == f"ECS deployment {d['id']} completed."
    assert s["events"][0]["message"] == "(service worker) has reached a steady state."
    assert s["events"][1]["message"].startswith("(service worker) has started 3 tasks: (task ")
    c = cluster.describe_clusters(clusters=["acme-prod"])["clusters"][0]
    assert (c["runningTasksCount"], c["pendingTasksCount"], c["activeServicesCount"]) == (3, 0, 1)
    state = emu.control("GET", "/_drpilot/state")["ecs"]["services"]
    assert state == [
        {
            "region": "us-east-1",
            "cluster": "acme-prod",
            "service": "worker",
            "arn": s["serviceArn"],
            "status": "ACTIVE",
            "desired": 3,
            "running": 3,
            "pending": 0,
            "rollout": "COMPLETED",
        }
    ]


def test_update_service_scales_out_then_in_over_emulated_time(emu: Any, cluster: Any) -> None:
    cluster.create_service(cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=1)
    emu.wait(lambda: describe(cluster)["runningCount"] == 1, timeout=5)
    emu.wait(lambda: steady_events(describe(cluster)), timeout=5)
    deployment_id = primary(describe(cluster))["id"]
    # Scale out: moto answered runningCount = desiredCount at once.
    updated = cluster.update_service(cluster="acme-prod", service="worker", desiredCount=4)["service"]
    assert (updated["desiredCount"], updated["runningCount"], updated["pendingCount"]) == (4, 1, 3)
    d = primary(updated)
    assert (d["desiredCount"], d["runningCount"], d["pendingCount"]) == (4, 1, 3)
    # "This parameter doesn't trigger a new service deployment" (desiredCount): the
    # same deployment, its rollout done.
    assert d["id"] == deployment_id and d["rolloutState"] == "COMPLETED"
    s = emu.wait(lambda: (lambda x: x if x["runningCount"] == 4 else None)(describe(cluster)), timeout=5)
    assert s["pendingCount"] == 0 and len(steady_events(s)) == 2
    # Scale in: the stopped tasks drain (still running) for 20 s, then stop.
    updated = cluster.update_service(cluster="acme-prod", service="worker", desiredCount=1)["service"]
    assert (updated["desiredCount"], updated["runningCount"], updated["pendingCount"]) == (1, 4, 0)
    assert updated["events"][0]["message"].startswith("(service worker) has stopped 3 running tasks: (task ")
    assert describe(cluster)["runningCount"] == 4
    s = emu.wait(lambda: (lambda x: x if x["runningCount"] == 1 else None)(describe(cluster)), timeout=5)
    assert primary(s)["runningCount"] == 1 and len(steady_events(s)) == 3
    assert cluster.describe_clusters(clusters=["acme-prod"])["clusters"][0]["runningTasksCount"] == 1


def test_scale_in_stops_pending_tasks_first_and_at_once(emu: Any, cluster: Any) -> None:
    cluster.create_service(cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=5)
    updated = cluster.update_service(cluster="acme-prod", service="worker", desiredCount=2)["service"]
    assert (updated["runningCount"], updated["pendingCount"]) == (0, 2)
    emu.wait(lambda: describe(cluster)["runningCount"] == 2, timeout=5)


def test_a_new_deployment_is_in_progress_until_it_settles(emu: Any, cluster: Any) -> None:
    cluster.create_service(cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=2)
    emu.wait(lambda: primary(describe(cluster))["rolloutState"] == "COMPLETED", timeout=5)
    d = primary(cluster.update_service(cluster="acme-prod", service="worker", forceNewDeployment=True)["service"])
    assert d["rolloutState"] == "IN_PROGRESS"
    emu.wait(lambda: primary(describe(cluster))["rolloutState"] == "COMPLETED", timeout=5)


def test_errors_follow_the_api_reference(emu: Any, cluster: Any) -> None:
    cluster.create_service(cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=1)
    # DescribeServices: an unknown service is a failure (HTTP 200), an unknown cluster an error.
    out = cluster.describe_services(cluster="acme-prod", services=["worker", "nope"])
    assert [s["serviceName"] for s in out["services"]] == ["worker"]
    assert out["failures"] == [{"arn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/acme-prod/nope", "reason": "MISSING"}]
    with pytest.raises(ClientError) as ei:
        cluster.describe_services(cluster="nowhere", services=["worker"])
    assert code(ei) == ("ClusterNotFoundException", 400)
    assert ei.value.response["Error"]["Message"] == "Cluster not found."
    with pytest.raises(ClientError) as ei:
        cluster.update_service(cluster="acme-prod", service="nope", desiredCount=1)
    assert code(ei) == ("ServiceNotFoundException", 400)
    assert ei.value.response["Error"]["Message"] == "Service not found."
    with pytest.raises(ClientError) as ei:
        cluster.update_service(cluster="nowhere", service="worker", desiredCount=1)
    assert code(ei) == ("ClusterNotFoundException", 400)
    with pytest.raises(ClientError) as ei:
        cluster.update_service(cluster="acme-prod", service="worker", desiredCount=-1)
    assert code(ei) == ("InvalidParameterException", 400)
    assert describe(cluster)["desiredCount"] == 1
    with pytest.raises(ClientError) as ei:
        cluster.create_service(cluster="acme-prod", serviceName="worker", taskDefinition=cluster.td, desiredCount=1)
    assert code(ei) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as ei:
        cluster.create_service(cluster="acme-prod", serviceName="other", taskDefinition=cluster.td, desiredCount=-2)
    assert code(ei) == ("InvalidParameterException", 400)
    # A deleted service is INACTIVE: UpdateService refuses it.
    cluster.update_service(cluster="acme-prod", service="worker", desiredCount=0)
    cluster.delete_service(cluster="acme-prod", service="worker")
    assert describe(cluster)["status"] == "INACTIVE"
    with pytest.raises(ClientError) as ei:
        cluster.update_service(cluster="acme-prod", service="worker", desiredCount=1)
    assert code(ei) == ("ServiceNotActiveException", 400)
    assert ei.value.response["Error"]["Message"] == "Service was not ACTIVE."


def test_a_blackholed_region_takes_ecs_down(emu: Any, cluster: Any) -> None:
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    emu.control("POST", "/_drpilot/blackholes", {"region": "us-east-1", "mode": "reset", "services": ["ecs"]})
    with pytest.raises((ConnectionClosedError, EndpointConnectionError, ReadTimeoutError)):
        cluster.describe_clusters(clusters=["acme-prod"])
    # Another Region's ECS answers.
    assert emu.client("ecs", "us-west-2").list_clusters()["clusterArns"] == []
    emu.control("DELETE", "/_drpilot/blackholes")
    emu.control("POST", "/_drpilot/faults", {"kind": "throttle", "service": "ecs", "count": 1})
    with pytest.raises(ClientError) as ei:
        cluster.describe_clusters(clusters=["acme-prod"])
    assert code(ei) == ("ThrottlingException", 400)
    assert cluster.describe_clusters(clusters=["acme-prod"])["clusters"][0]["clusterName"] == "acme-prod"


def test_seeded_services_are_settled(emu: Any, stack: dict) -> None:
    want = {("us-east-1", "worker"): 6, ("us-east-1", "api"): 4, ("us-west-2", "worker"): 1, ("us-west-2", "api"): 2}
    for (region, name), desired in want.items():
        assert stack["ecs"][region]["acme-prod"][name]["arn"] == f"arn:aws:ecs:{region}:{ACCOUNT}:service/acme-prod/{name}"
        s = emu.client("ecs", region).describe_services(cluster="acme-prod", services=[name])["services"][0]
        assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (desired, desired, 0)
        assert primary(s)["rolloutState"] == "COMPLETED"
        assert s["events"][0]["message"] == f"(service {name}) has reached a steady state."
    state = {(x["region"], x["service"]): x for x in emu.control("GET", "/_drpilot/state")["ecs"]["services"]}
    assert {k: (v["desired"], v["running"], v["pending"], v["rollout"]) for k, v in state.items()} == {
        k: (d, d, 0, "COMPLETED") for k, d in want.items()
    }
