"""Amazon EC2 Auto Scaling groups over emulated time: moto 5.2.5 launches a group's
instances `InService` at once, terminates scaled-in ones at once, and takes any
MinSize / MaxSize / DesiredCapacity.

Served here (botocore model autoscaling 2011-01-01), the rest staying moto's:
- A launched instance is `Pending` (HealthStatus `Healthy`) for
  `autoscaling.warmup_seconds`, then `InService`. A scale-in picks instances not
  protected from scale-in, `Pending` ones first, then the newest; each is `Terminating`
  for `autoscaling.drain_seconds`, then leaves the group (and its EC2 instance is
  terminated). Capacity is counted over `Pending` and `InService` instances, so
  instances on their way out are replaced by new ones, never counted twice.
- UpdateAutoScalingGroup, CreateAutoScalingGroup and SetDesiredCapacity validate the
  sizes (ValidationError, HTTP 400): MaxSize below MinSize "Max bound, MAX, must be
  greater than or equal to min bound, MIN"; a DesiredCapacity outside [MinSize, MaxSize]
  (as they are after the update) "Desired capacity:D must be between the specified min
  size:MIN and max size:MAX"; SetDesiredCapacity "New SetDesiredCapacity value D is
  below min value MIN for the AutoScalingGroup." / "... is above max value MAX ...".
  Without DesiredCapacity, a new MinSize above the group's desired capacity raises it to
  MinSize and a new MaxSize below it lowers it to MaxSize (UpdateAutoScalingGroup's
  documentation).
- DescribeAutoScalingGroups of a name that does not exist leaves it out (an empty list
  for one unknown name; moto's, kept).
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from .base import Extension, aws_error

LIVE = ("Pending", "InService")

_orig_set_desired_capacity = FakeAutoScalingGroup.set_desired_capacity


def _set_desired_capacity(self: FakeAutoScalingGroup, new_capacity: int | None) -> None:
    ext = AutoScalingExtension.instance
    mixed = self.mixed_instances_policy and len(self.mixed_instances_policy.get("LaunchTemplate", {}).get("Overrides", []))
    if ext is None or mixed:
        _orig_set_desired_capacity(self, new_capacity)
        return
    ext.scale(self, new_capacity)


FakeAutoScalingGroup.set_desired_capacity = _set_desired_capacity  # type: ignore[method-assign]


def _sizes_error(min_size: int, max_size: int, desired: int | None) -> Exception | None:
    if max_size < min_size:
        return aws_error("ValidationError", f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}")
    if desired is not None and not min_size <= desired <= max_size:
        return aws_error(
            "ValidationError",
            f"Desired capacity:{desired} must be between the specified min size:{min_size} and max size:{max_size}",
        )
    return None


class DrAutoScalingResponse(AutoScalingResponse):
    ext: "AutoScalingExtension"

    def create_auto_scaling_group(self) -> Any:
        min_size = self._get_int_param("MinSize")
        max_size = self._get_int_param("MaxSize")
        desired = self._get_int_param("DesiredCapacity")
        if min_size is not None and max_size is not None:
            err = _sizes_error(min_size, max_size, desired)
            if err is not None:
                raise err
        return super().create_auto_scaling_group()

    def describe_account_limits(self) -> Any:
        """moto 5.2.5 does not serve DescribeAccountLimits (a request for it never got
        an answer). AWS's documented defaults per Region: 500 Auto Scaling groups, 200
        launch configurations (Amazon EC2 Auto Scaling User Guide, "Auto Scaling service
        quotas"); the counts are the Region's."""
        backend = self.autoscaling_backend
        return ActionResult(
            {
                "MaxNumberOfAutoScalingGroups": 500,
                "MaxNumberOfLaunchConfigurations": 200,
                "NumberOfAutoScalingGroups": len(backend.autoscaling_groups),
                "NumberOfLaunchConfigurations": len(backend.launch_configurations),
            }
        )

    def update_auto_scaling_group(self) -> Any:
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is None:
            return super().update_auto_scaling_group()
        min_size = self._get_int_param("MinSize")
        max_size = self._get_int_param("MaxSize")
        desired = self._get_int_param("DesiredCapacity")
        new_min = group.min_size if min_size is None else min_size
        new_max = group.max_size if max_size is None else max_size
        err = _sizes_error(new_min, new_max, desired)
        if err is not None:
            raise err
        if desired is None:
            # "If you specify a new value for MinSize without specifying a value for
            # DesiredCapacity, and the new MinSize is larger than the current size of
            # the group, this sets the group's DesiredCapacity to the new MinSize
            # value" (and MaxSize likewise). moto compares with its instance count,
            # instances being terminated included; the group's size is its capacity.
            desired = group.desired_capacity or 0
            if min_size is not None and min_size > desired:
                desired = min_size
            if max_size is not None and max_size < desired:
                desired = max_size
        self.autoscaling_backend.update_auto_scaling_group(
            name=name,
            availability_zones=self._get_param("AvailabilityZones", []),
            desired_capacity=desired,
            max_size=max_size,
            min_size=min_size,
            launch_config_name=self._get_param("LaunchConfigurationName"),
            launch_template=self._get_param("LaunchTemplate", {}),
            vpc_zone_identifier=self._get_param("VPCZoneIdentifier"),
            health_check_period=self._get_int_param("HealthCheckGracePeriod"),
            health_check_type=self._get_param("HealthCheckType"),
            new_instances_protected_from_scale_in=self._get_bool_param("NewInstancesProtectedFromScaleIn", None),
            mixed_instances_policy=self._get_param("MixedInstancesPolicy"),
        )
        return EmptyResult()

    def set_desired_capacity(self) -> Any:
        name = self._get_param("AutoScalingGroupName")
        desired = self._get_int_param("DesiredCapacity")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None and desired is not None:
            if desired < (group.min_size or 0):
                raise aws_error(
                    "ValidationError",
                    f"New SetDesiredCapacity value {desired} is below min value {group.min_size} for the AutoScalingGroup.",
                )
            if group.max_size is not None and desired > group.max_size:
                raise aws_error(
                    "ValidationError",
                    f"New SetDesiredCapacity value {desired} is above max value {group.max_size} for the AutoScalingGroup.",
                )
        return super().set_desired_capacity()


class AutoScalingExtension(Extension):
    name = "autoscaling"
    service = "autoscaling"
    ops = frozenset(
        {"CreateAutoScalingGroup", "UpdateAutoScalingGroup", "SetDesiredCapacity", "DescribeAccountLimits"}
    )
    response_class = DrAutoScalingResponse
    instance: "AutoScalingExtension | None" = None

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrAutoScalingResponse.ext = self
        AutoScalingExtension.instance = self
        self.reset()

    def reset(self) -> None:
        self.generation = getattr(self, "generation", 0) + 1

    # ------------------------------------------------------------------ scaling
    def scale(self, group: FakeAutoScalingGroup, new_capacity: int | None) -> None:
        group.desired_capacity = group.min_size if new_capacity is None else new_capacity
        target = group.desired_capacity or 0
        live = [s for s in group.instance_states if s.lifecycle_state in LIVE]
        delta = target - len(live)
        if delta > 0:
            before = set(id(s) for s in group.instance_states)
            group.replace_autoscaling_group_instances(delta, group.get_propagated_tags())
            for state in group.instance_states:
                if id(state) not in before:
                    state.lifecycle_state = "Pending"
                    state.health_status = "Healthy"
                    self.emu.after(float(self.emu.cfg("autoscaling", "warmup_seconds")), self._warmed(group, state))
        elif delta < 0:
            candidates = [s for s in live if not s.protected_from_scale_in]
            pending = [s for s in reversed(candidates) if s.lifecycle_state == "Pending"]
            in_service = [s for s in reversed(candidates) if s.lifecycle_state == "InService"]
            for state in (pending + in_service)[: -delta]:
                state.lifecycle_state = "Terminating"
                self.emu.after(float(self.emu.cfg("autoscaling", "drain_seconds")), self._terminated(group, state))
        backend = group.autoscaling_backend
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
            backend.update_attached_target_groups(group.name)

    def _alive(self, group: FakeAutoScalingGroup, state: Any, generation: int) -> bool:
        return (
            generation == self.generation
            and group.autoscaling_backend.autoscaling_groups.get(group.name) is group
            and state in group.instance_states
        )

    def _warmed(self, group: FakeAutoScalingGroup, state: Any) -> Any:
        generation = self.generation

        def run() -> None:
            if self._alive(group, state, generation) and state.lifecycle_state == "Pending":
                state.lifecycle_state = "InService"

        return run

    def _terminated(self, group: FakeAutoScalingGroup, state: Any) -> Any:
        generation = self.generation

        def run() -> None:
            if self._alive(group, state, generation) and state.lifecycle_state == "Terminating":
                group.instance_states = [s for s in group.instance_states if s is not state]
                try:
                    group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
                except Exception:  # pragma: no cover - the instance is gone already
                    pass

        return run

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/autoscaling", lambda body: self._locked_state())]

    def _locked_state(self) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return self.state()

    def state(self) -> dict[str, Any]:
        groups = []
        for region, backend in autoscaling_backends[self.account_id].items():
            try:
                items = list(backend.autoscaling_groups.values())
            except Exception:
                continue
            for g in items:
                by_state: dict[str, list[str]] = {}
                for s in g.instance_states:
                    by_state.setdefault(s.lifecycle_state, []).append(s.instance.id)
                groups.append(
                    {
                        "region": region,
                        "name": g.name,
                        "arn": g.arn,
                        "min": g.min_size,
                        "desired": g.desired_capacity,
                        "max": g.max_size,
                        "instances": by_state,
                        "counts": {k: len(v) for k, v in by_state.items()},
                    }
                )
        groups.sort(key=lambda x: (x["region"], x["name"]))
        return {"groups": groups}


PATCHED_MODULE = asg_models
