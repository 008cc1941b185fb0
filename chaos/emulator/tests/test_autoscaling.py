"""Amazon EC2 Auto Scaling groups over emulated time (ext/autoscaling.py): instances
Pending then InService after the warm-up, Terminating then gone after the drain; the
size validation of UpdateAutoScalingGroup."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT


def code(ei: Any) -> tuple[str, int, str]:
    err = ei.value.response["Error"]
    return err["Code"], ei.value.response["ResponseMetadata"]["HTTPStatusCode"], err["Message"]


@pytest.fixture
def asg(emu: Any) -> Any:
    """Group `g` (min 1, desired 2, max 5) of m7g.large; warm-up 10 s, drain 20 s
    (emulated) at 20x: 0.5 s and 1 s."""
    emu.speed(20)
    emu.config({"autoscaling": {"warmup_seconds": 10, "drain_seconds": 20}})
    ec2 = emu.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    lt = ec2.create_launch_template(LaunchTemplateName="lt", LaunchTemplateData={"ImageId": image, "InstanceType": "m7g.large"})
    client = emu.client("autoscaling")
    client.create_auto_scaling_group(
        AutoScalingGroupName="g",
        MinSize=1,
        MaxSize=5,
        DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplate"]["LaunchTemplateId"]},
        AvailabilityZones=["us-east-1a", "us-east-1b"],
    )
    return client


def group(client: Any, name: str = "g") -> dict:
    return client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def states(client: Any) -> list[str]:
    return sorted(i["LifecycleState"] for i in group(client)["Instances"])


def test_new_instances_are_pending_then_in_service(emu: Any, asg: Any) -> None:
    g = group(asg)
    assert g["AutoScalingGroupARN"].startswith(f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:")
    assert g["AutoScalingGroupARN"].endswith(":autoScalingGroupName/g")
    assert [(i["LifecycleState"], i["HealthStatus"], i["InstanceType"]) for i in g["Instances"]] == [
        ("Pending", "Healthy", "m7g.large")
    ] * 2
    emu.wait(lambda: states(asg) == ["InService", "InService"], timeout=5)


def test_scale_out_and_in_over_emulated_time(emu: Any, asg: Any) -> None:
    emu.wait(lambda: states(asg) == ["InService"] * 2, timeout=5)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=4)
    g = group(asg)
    assert g["DesiredCapacity"] == 4 and states(asg) == ["InService", "InService", "Pending", "Pending"]
    emu.wait(lambda: states(asg) == ["InService"] * 4, timeout=5)
    # Scale in: Terminating for the drain time, then gone.
    asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=1)
    assert states(asg) == ["InService", "Terminating", "Terminating", "Terminating"]
    state = next(x for x in emu.control("GET", "/_drpilot/state")["autoscaling"]["groups"] if x["name"] == "g")
    assert (state["min"], state["desired"], state["max"]) == (1, 1, 5)
    assert state["counts"] == {"InService": 1, "Terminating": 3}
    emu.wait(lambda: states(asg) == ["InService"], timeout=5)
    # A scale-out while instances terminate launches new ones; the leaving ones don't count.
    asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=2)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=1)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=2)
    # (2: one launched; 1: that Pending one terminates first; 2: another launched.)
    assert states(asg) == ["InService", "Pending", "Terminating"]
    emu.wait(lambda: states(asg) == ["InService", "InService"], timeout=5)


def test_update_validates_sizes_as_aws_does(emu: Any, asg: Any) -> None:
    with pytest.raises(ClientError) as ei:
        asg.update_auto_scaling_group(AutoScalingGroupName="g", DesiredCapacity=9)
    assert code(ei) == ("ValidationError", 400, "Desired capacity:9 must be between the specified min size:1 and max size:5")
    with pytest.raises(ClientError) as ei:
        asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=3, DesiredCapacity=2)
    assert code(ei)[2] == "Desired capacity:2 must be between the specified min size:3 and max size:5"
    with pytest.raises(ClientError) as ei:
        asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=6)
    assert code(ei) == ("ValidationError", 400, "Max bound, 5, must be greater than or equal to min bound, 6")
    g = group(asg)
    assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (1, 2, 5)
    # Without DesiredCapacity, a larger MinSize raises the desired capacity to it.
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=3)
    g = group(asg)
    assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (3, 3, 5)
    # ...and a smaller MaxSize lowers it (instances being terminated don't count).
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=1, MaxSize=4, DesiredCapacity=1)
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MaxSize=2)
    g = group(asg)
    assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (1, 1, 2)
    # Min, desired and max together, all changed.
    asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=4, MaxSize=12, DesiredCapacity=8)
    g = group(asg)
    assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (4, 8, 12)
    with pytest.raises(ClientError) as ei:
        asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=13)
    assert code(ei) == ("ValidationError", 400, "New SetDesiredCapacity value 13 is above max value 12 for the AutoScalingGroup.")


def test_describe_of_an_unknown_group_is_an_empty_list(emu: Any, asg: Any) -> None:
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nope"])["AutoScalingGroups"] == []
    assert emu.client("autoscaling", "us-west-2").describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"] == []


def test_seeded_groups_are_in_service(emu: Any, stack: dict) -> None:
    want = {"acme-prod-ecs-use1": ("us-east-1", 3, 6, 12), "acme-prod-ecs-usw2": ("us-west-2", 1, 2, 12)}
    for name, (region, lo, desired, hi) in want.items():
        g = group(emu.client("autoscaling", region), name)
        assert (g["MinSize"], g["DesiredCapacity"], g["MaxSize"]) == (lo, desired, hi)
        assert [(i["LifecycleState"], i["HealthStatus"], i["InstanceType"]) for i in g["Instances"]] == [
            ("InService", "Healthy", "m7g.large")
        ] * desired
        assert g["LaunchTemplate"]["LaunchTemplateName"] == f"{name}-lt"
        assert stack["autoscaling"]["groups"][name]["arn"] == g["AutoScalingGroupARN"]
    state = {x["name"]: x for x in emu.control("GET", "/_drpilot/state")["autoscaling"]["groups"]}
    assert {n: (s["region"], s["min"], s["desired"], s["max"], s["counts"]) for n, s in state.items()} == {
        n: (r, lo, d, hi, {"InService": d}) for n, (r, lo, d, hi) in want.items()
    }


def test_describe_account_limits_answers_with_the_regions_counts(asg: Any) -> None:
    """drpilot probes Auto Scaling with it: moto alone never answers the request."""
    limits = asg.describe_account_limits()
    assert limits["MaxNumberOfAutoScalingGroups"] == 500
    assert limits["MaxNumberOfLaunchConfigurations"] == 200
    assert limits["NumberOfAutoScalingGroups"] == 1
    assert limits["NumberOfLaunchConfigurations"] == 0
