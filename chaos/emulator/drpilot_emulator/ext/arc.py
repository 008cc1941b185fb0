"""Route 53 Application Recovery Controller (ARC) routing control: both of its APIs,
which moto 5.2.5 does not know at all (its dispatcher fails on their signing names).

Control plane, `route53-recovery-control-config` (botocore model 2020-11-02, restJson1).
AWS serves it from us-west-2 only: the model's endpoint rules send every Region of the
aws partition to route53-recovery-control-config.us-west-2.amazonaws.com, signed for
us-west-2. Here the request's Region is its SigV4 scope, so a request scoped to another
Region is refused the way that endpoint refuses it (403 InvalidSignatureException,
"Credential should be scoped to a valid region"), and blackholing us-west-2 (whole, or
its `route53-recovery-control-config` service) takes the control plane down.
- CreateCluster: five ClusterEndpoints (us-east-1, us-west-2, eu-west-1,
  ap-northeast-1, ap-southeast-2), each the emulator's base URL as the request reached
  it; also creates the cluster's default control panel (`DefaultControlPanel`,
  DefaultControlPanel true). DescribeCluster, ListClusters, UpdateCluster, DeleteCluster.
- CreateControlPanel, DescribeControlPanel, ListControlPanels, UpdateControlPanel,
  DeleteControlPanel.
- CreateRoutingControl (in the given control panel or the cluster's default one; state
  Off), DescribeRoutingControl, ListRoutingControls, UpdateRoutingControl,
  DeleteRoutingControl, ListAssociatedRoute53HealthChecks.
- CreateSafetyRule (assertion and gating rules), DescribeSafetyRule, ListSafetyRules,
  UpdateSafetyRule, DeleteSafetyRule.
- TagResource, UntagResource, ListTagsForResource; GetResourcePolicy (no resource is
  shared, so always ResourceNotFoundException).
Every resource is PENDING for `arc.cluster_create_seconds` / `arc.create_seconds`, then
DEPLOYED; a deleted one is PENDING_DELETION for `arc.delete_seconds`, then gone (404).
Errors with the model's statuses: ResourceNotFoundException 404, ValidationException
400, ConflictException 409 (duplicate name in a control panel, deleting what is still
in use).

Data plane, `route53-recovery-cluster` (botocore model 2019-12-02, awsJson1.0, target
prefix ToggleCustomerAPI), accepted in the five cluster Regions (the SigV4 scope; other
Regions: 403 InvalidSignatureException): GetRoutingControlState, ListRoutingControls,
UpdateRoutingControlState, UpdateRoutingControlStates. An update is one transaction:
every entry is checked, then the DEPLOYED safety rules of the control panels involved
are evaluated on the resulting states (assertion rules) or on the current states of
their gating controls (gating rules), and the whole request is refused with
ConflictException if one fails, unless its ARN is in SafetyRulesToOverride. After a
rule's controls change state, updates touching them fail with ConflictException for the
rule's WaitPeriodMs (emulated milliseconds; `arc.enforce_wait_period`). Routing
controls that are not DEPLOYED are not on the cluster yet: ResourceNotFoundException.
botocore's JSON model of this service carries no HTTP statuses for its errors; they
are the Smithy model's: ValidationException 400, AccessDeniedException 403,
ResourceNotFoundException 404, ConflictException 409, ServiceLimitExceededException 402,
ThrottlingException 429, InternalServerException 500,
EndpointTemporarilyUnavailableException 503.

Not modelled: resource sharing (RAM policies), NetworkType other than recorded,
ServiceQuotaExceeded/ServiceLimitExceeded limits, cluster endpoints that differ per
cluster (all clusters answer on the emulator's one URL, so the data plane's
ListRoutingControls without ControlPanelArn lists every cluster's routing controls).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Callable
from urllib.parse import urlparse

from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.core.utils import camelcase_to_underscores, get_service_model

from ..sigv4 import scope_from_headers
from .base import AwsError, Extension, aws_error

CONTROL = "route53-recovery-control-config"
CLUSTER = "route53-recovery-cluster"
CONTROL_REGION = "us-west-2"
CLUSTER_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"]
DEFAULT_PANEL_NAME = "DefaultControlPanel"

ARN_PATTERN = re.compile(r"^[A-Za-z0-9:./_-]*$")
NAME_PATTERN = re.compile(r"^\S+$")

# route53-recovery-cluster: the statuses and namespace of the Smithy model.
CLUSTER_ERROR_STATUS = {
    "ValidationException": 400,
    "ServiceLimitExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
    "EndpointTemporarilyUnavailableException": 503,
}
CLUSTER_ERROR_NAMESPACE = "com.amazonaws.route53recoverycluster"


class ArcError(AwsError):
    """An error carrying the members some ARC error shapes add to `message`."""

    def __init__(self, code: str, message: str, **members: Any) -> None:
        super().__init__(code, message)
        self.members = members


def not_found(what: str, arn: str, kind: str) -> ArcError:
    return ArcError("ResourceNotFoundException", f"{what} not found: {arn}", resourceId=arn, resourceType=kind)


def invalid(message: str) -> ArcError:
    return ArcError("ValidationException", message)


def conflict(message: str, arn: str = "", kind: str = "") -> ArcError:
    return ArcError("ConflictException", message, resourceId=arn, resourceType=kind)


def hexid(n: int) -> str:
    return uuid.uuid4().hex[:n]


class ArcExtension(Extension):
    name = "arc"
    service = CONTROL

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        ArcControlResponse.ext = self
        ArcClusterResponse.ext = self
        self.reset()

    @property
    def services(self) -> tuple[str, ...]:
        return (CONTROL, CLUSTER)

    def handler_for(self, ctx: Any) -> Any:
        # moto can't serve these services at all: every request is answered here.
        return ArcControlResponse if ctx.service == CONTROL else ArcClusterResponse

    def reset(self) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.panels: dict[str, dict[str, Any]] = {}
        self.controls: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.history: list[dict[str, Any]] = []

    @property
    def arn_prefix(self) -> str:
        return f"arn:aws:route53-recovery-control::{self.account_id}:"

    # ------------------------------------------------------------------ lifecycle
    def _deploy_later(self, resource: dict[str, Any], seconds_key: str) -> None:
        def deployed() -> None:
            if resource.get("Status") == "PENDING":
                resource["Status"] = "DEPLOYED"

        self.emu.after(float(self.emu.cfg("arc", seconds_key)), deployed)

    def _delete_later(self, resource: dict[str, Any], table: dict[str, dict[str, Any]], arn: str) -> None:
        resource["Status"] = "PENDING_DELETION"

        def gone() -> None:
            if table.get(arn) is resource:
                del table[arn]
                self.tags.pop(arn, None)

        self.emu.after(float(self.emu.cfg("arc", "delete_seconds")), gone)

    def _idempotent(self, op: str, token: str | None, create: Callable[[], str]) -> str:
        if token and (op, token) in self.tokens:
            return self.tokens[(op, token)]
        arn = create()
        if token:
            self.tokens[(op, token)] = arn
        return arn

    @staticmethod
    def _name(value: Any, field: str) -> str:
        if not isinstance(value, str) or not 1 <= len(value) <= 64 or not NAME_PATTERN.match(value):
            raise invalid(f"{field} must be 1 to 64 characters without white space")
        return value

    def _tag(self, arn: str, tags: dict[str, str] | None) -> None:
        if tags:
            self.tags.setdefault(arn, {}).update(tags)

    # ------------------------------------------------------------------ clusters
    def create_cluster(self, name: Any, token: str | None, tags: Any, network_type: str | None, base_url: str) -> dict:
        name = self._name(name, "ClusterName")
        if network_type not in (None, "IPV4", "DUALSTACK"):
            raise invalid("NetworkType must be IPV4 or DUALSTACK")

        def create() -> str:
            arn = f"{self.arn_prefix}cluster/{uuid.uuid4()}"
            cluster = {
                "ClusterArn": arn,
                "ClusterEndpoints": [{"Endpoint": base_url, "Region": r} for r in CLUSTER_REGIONS],
                "Name": name,
                "Status": "PENDING",
                "Owner": self.account_id,
                "NetworkType": network_type or "IPV4",
            }
            self.clusters[arn] = cluster
            self._tag(arn, tags)
            self._deploy_later(cluster, "cluster_create_seconds")
            panel = self._new_panel(arn, DEFAULT_PANEL_NAME, default=True)
            self._deploy_later(panel, "cluster_create_seconds")
            return arn

        return self.clusters[self._idempotent("CreateCluster", token, create)]

    def cluster(self, arn: Any) -> dict[str, Any]:
        cluster = self.clusters.get(arn) if isinstance(arn, str) else None
        if cluster is None:
            raise not_found("Cluster", str(arn), "Cluster")
        return cluster

    def update_cluster(self, arn: Any, network_type: Any) -> dict[str, Any]:
        cluster = self.cluster(arn)
        if network_type not in ("IPV4", "DUALSTACK"):
            raise invalid("NetworkType must be IPV4 or DUALSTACK")
        cluster["NetworkType"] = network_type
        return cluster

    def delete_cluster(self, arn: Any) -> None:
        cluster = self.cluster(arn)
        if cluster["Status"] == "PENDING_DELETION":
            raise conflict(f"Cluster {arn} is already being deleted", arn, "Cluster")
        panels = [p for p in self.panels.values() if p["ClusterArn"] == arn and p["Status"] != "PENDING_DELETION"]
        if any(not p["DefaultControlPanel"] for p in panels) or any(
            c["ControlPanelArn"] == p["ControlPanelArn"] and c["Status"] != "PENDING_DELETION"
            for p in panels
            for c in self.controls.values()
        ):
            raise conflict(f"Cluster {arn} still has control panels or routing controls; delete them first", arn, "Cluster")
        for p in panels:
            self._delete_later(p, self.panels, p["ControlPanelArn"])
        self._delete_later(cluster, self.clusters, arn)

    # ------------------------------------------------------------------ control panels
    def _new_panel(self, cluster_arn: str, name: str, default: bool = False) -> dict[str, Any]:
        arn = f"{self.arn_prefix}controlpanel/{hexid(32)}"
        panel = {
            "ClusterArn": cluster_arn,
            "ControlPanelArn": arn,
            "DefaultControlPanel": default,
            "Name": name,
            "RoutingControlCount": 0,
            "Status": "PENDING",
            "Owner": self.account_id,
        }
        self.panels[arn] = panel
        return panel

    def create_panel(self, cluster_arn: Any, name: Any, token: str | None, tags: Any) -> dict[str, Any]:
        name = self._name(name, "ControlPanelName")
        cluster = self.cluster(cluster_arn)
        if cluster["Status"] == "PENDING_DELETION":
            raise conflict(f"Cluster {cluster_arn} is being deleted", cluster_arn, "Cluster")

        def create() -> str:
            panel = self._new_panel(cluster["ClusterArn"], name)
            self._tag(panel["ControlPanelArn"], tags)
            self._deploy_later(panel, "create_seconds")
            return panel["ControlPanelArn"]

        return self.panel_view(self.panels[self._idempotent("CreateControlPanel", token, create)])

    def panel(self, arn: Any) -> dict[str, Any]:
        panel = self.panels.get(arn) if isinstance(arn, str) else None
        if panel is None:
            raise not_found("Control panel", str(arn), "ControlPanel")
        return panel

    def panel_view(self, panel: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for c in self.controls.values() if c["ControlPanelArn"] == panel["ControlPanelArn"])
        return {**panel, "RoutingControlCount": count}

    def update_panel(self, arn: Any, name: Any) -> dict[str, Any]:
        panel = self.panel(arn)
        panel["Name"] = self._name(name, "ControlPanelName")
        return self.panel_view(panel)

    def delete_panel(self, arn: Any) -> None:
        panel = self.panel(arn)
        if panel["DefaultControlPanel"]:
            raise invalid("The default control panel of a cluster can't be deleted; it is deleted with the cluster")
        if panel["Status"] == "PENDING_DELETION":
            raise conflict(f"Control panel {arn} is already being deleted", arn, "ControlPanel")
        in_use = any(c["ControlPanelArn"] == arn for c in self.controls.values()) or any(
            r["ControlPanelArn"] == arn for r in self.rules.values()
        )
        if in_use:
            raise conflict(
                f"Control panel {arn} still has routing controls or safety rules; delete them first", arn, "ControlPanel"
            )
        self._delete_later(panel, self.panels, arn)

    # ------------------------------------------------------------------ routing controls
    def create_control(self, cluster_arn: Any, panel_arn: Any, name: Any, token: str | None) -> dict[str, Any]:
        name = self._name(name, "RoutingControlName")
        cluster = self.cluster(cluster_arn)
        if panel_arn is None:
            panel = next(p for p in self.panels.values() if p["ClusterArn"] == cluster["ClusterArn"] and p["DefaultControlPanel"])
        else:
            panel = self.panel(panel_arn)
            if panel["ClusterArn"] != cluster["ClusterArn"]:
                raise invalid(f"Control panel {panel_arn} is not in cluster {cluster_arn}")
        if panel["Status"] == "PENDING_DELETION":
            raise conflict(f"Control panel {panel['ControlPanelArn']} is being deleted", panel["ControlPanelArn"], "ControlPanel")

        def create() -> str:
            if any(c["ControlPanelArn"] == panel["ControlPanelArn"] and c["Name"] == name for c in self.controls.values()):
                raise conflict(
                    f"A routing control named {name} already exists in control panel {panel['ControlPanelArn']}",
                    panel["ControlPanelArn"],
                    "ControlPanel",
                )
            arn = f"{panel['ControlPanelArn']}/routingcontrol/{hexid(16)}"
            control = {
                "ControlPanelArn": panel["ControlPanelArn"],
                "Name": name,
                "RoutingControlArn": arn,
                "Status": "PENDING",
                "Owner": self.account_id,
                "State": "Off",
            }
            self.controls[arn] = control
            self._deploy_later(control, "create_seconds")
            return arn

        return self.control_view(self.controls[self._idempotent("CreateRoutingControl", token, create)])

    def control(self, arn: Any) -> dict[str, Any]:
        control = self.controls.get(arn) if isinstance(arn, str) else None
        if control is None:
            raise not_found("Routing control", str(arn), "RoutingControl")
        return control

    @staticmethod
    def control_view(control: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in control.items() if k != "State"}

    def update_control(self, arn: Any, name: Any) -> dict[str, Any]:
        control = self.control(arn)
        name = self._name(name, "RoutingControlName")
        if any(
            c is not control and c["ControlPanelArn"] == control["ControlPanelArn"] and c["Name"] == name
            for c in self.controls.values()
        ):
            raise conflict(f"A routing control named {name} already exists in the control panel", arn, "RoutingControl")
        control["Name"] = name
        return self.control_view(control)

    def delete_control(self, arn: Any) -> None:
        control = self.control(arn)
        if control["Status"] == "PENDING_DELETION":
            raise conflict(f"Routing control {arn} is already being deleted", arn, "RoutingControl")
        users = [r["Name"] for r in self.rules.values() if arn in self._rule_controls(r) and r["Status"] != "PENDING_DELETION"]
        if users:
            raise conflict(
                f"Routing control {arn} is used by safety rule(s) {', '.join(users)}; delete them first", arn, "RoutingControl"
            )
        self._route53_record()
        self._delete_later(control, self.controls, arn)
        self._route53_record()  # its health checks now read Off

    def state_of(self, arn: str | None) -> str | None:
        """The routing control's state as Route 53 health checks see it (None: no such
        routing control)."""
        control = self.controls.get(arn or "")
        if control is None or control["Status"] == "PENDING_DELETION":
            return None
        return control["State"]

    # ------------------------------------------------------------------ safety rules
    @staticmethod
    def _rule_controls(rule: dict[str, Any]) -> list[str]:
        if rule["Type"] == "ASSERTION":
            return list(rule["AssertedControls"])
        return list(rule["GatingControls"]) + list(rule["TargetControls"])

    def _rule_config(self, config: Any) -> dict[str, Any]:
        if not isinstance(config, dict):
            raise invalid("RuleConfig is required")
        if config.get("Type") not in ("ATLEAST", "AND", "OR"):
            raise invalid("RuleConfig.Type must be one of ATLEAST, AND, OR")
        for field in ("Inverted", "Threshold"):
            if config.get(field) is None:
                raise invalid(f"RuleConfig.{field} is required")
        return {"Inverted": bool(config["Inverted"]), "Threshold": int(config["Threshold"]), "Type": config["Type"]}

    def _controls_in(self, panel: dict[str, Any], arns: Any, field: str) -> list[str]:
        if not isinstance(arns, list) or not arns:
            raise invalid(f"{field} must name at least one routing control")
        for arn in arns:
            control = self.controls.get(arn)
            if control is None or control["Status"] == "PENDING_DELETION":
                raise invalid(f"{field}: routing control {arn} does not exist")
            if control["ControlPanelArn"] != panel["ControlPanelArn"]:
                raise invalid(f"{field}: routing control {arn} is not in control panel {panel['ControlPanelArn']}")
        return list(arns)

    def create_rule(self, assertion: Any, gating: Any, token: str | None, tags: Any) -> dict[str, Any]:
        if (assertion is None) == (gating is None):
            raise invalid("Specify exactly one of AssertionRule and GatingRule")
        spec = assertion if assertion is not None else gating
        kind = "ASSERTION" if assertion is not None else "GATING"
        panel = self.panels.get(spec.get("ControlPanelArn"))
        if panel is None or panel["Status"] == "PENDING_DELETION":
            raise invalid(f"Control panel {spec.get('ControlPanelArn')} does not exist")
        name = self._name(spec.get("Name"), "Name")
        wait = spec.get("WaitPeriodMs")
        if wait is None or int(wait) < 0:
            raise invalid("WaitPeriodMs is required and must be >= 0")
        config = self._rule_config(spec.get("RuleConfig"))
        rule: dict[str, Any] = {"Type": kind, "ControlPanelArn": panel["ControlPanelArn"], "Name": name}
        if kind == "ASSERTION":
            rule["AssertedControls"] = self._controls_in(panel, spec.get("AssertedControls"), "AssertedControls")
        else:
            rule["GatingControls"] = self._controls_in(panel, spec.get("GatingControls"), "GatingControls")
            rule["TargetControls"] = self._controls_in(panel, spec.get("TargetControls"), "TargetControls")
        rule.update(RuleConfig=config, WaitPeriodMs=int(wait), Status="PENDING", Owner=self.account_id)

        def create() -> str:
            if any(r["ControlPanelArn"] == rule["ControlPanelArn"] and r["Name"] == name for r in self.rules.values()):
                raise invalid(f"A safety rule named {name} already exists in control panel {rule['ControlPanelArn']}")
            arn = f"{panel['ControlPanelArn']}/safetyrule/{hexid(16)}"
            rule["SafetyRuleArn"] = arn
            rule["blocked_until"] = 0.0
            self.rules[arn] = rule
            self._tag(arn, tags)
            self._deploy_later(rule, "create_seconds")
            return arn

        return self.rules[self._idempotent("CreateSafetyRule", token, create)]

    def rule(self, arn: Any) -> dict[str, Any]:
        rule = self.rules.get(arn) if isinstance(arn, str) else None
        if rule is None:
            raise not_found("Safety rule", str(arn), "SafetyRule")
        return rule

    @staticmethod
    def rule_view(rule: dict[str, Any]) -> dict[str, Any]:
        """{"AssertionRule": {...}} or {"GatingRule": {...}} (Create/Describe/Update)."""
        body = {k: v for k, v in rule.items() if k not in ("Type", "blocked_until")}
        return {"AssertionRule": body} if rule["Type"] == "ASSERTION" else {"GatingRule": body}

    @classmethod
    def rule_list_item(cls, rule: dict[str, Any]) -> dict[str, Any]:
        """A `Rule` of ListSafetyRules: {"ASSERTION": {...}} or {"GATING": {...}}."""
        view = cls.rule_view(rule)
        return {"ASSERTION": view["AssertionRule"]} if "AssertionRule" in view else {"GATING": view["GatingRule"]}

    def update_rule(self, assertion: Any, gating: Any) -> dict[str, Any]:
        if (assertion is None) == (gating is None):
            raise invalid("Specify exactly one of AssertionRuleUpdate and GatingRuleUpdate")
        spec = assertion if assertion is not None else gating
        rule = self.rule(spec.get("SafetyRuleArn"))
        if (rule["Type"] == "ASSERTION") != (assertion is not None):
            raise invalid(f"Safety rule {rule['SafetyRuleArn']} is a {rule['Type'].lower()} rule")
        name = self._name(spec.get("Name"), "Name")
        wait = spec.get("WaitPeriodMs")
        if wait is None or int(wait) < 0:
            raise invalid("WaitPeriodMs is required and must be >= 0")
        rule["Name"] = name
        rule["WaitPeriodMs"] = int(wait)
        return rule

    def delete_rule(self, arn: Any) -> None:
        rule = self.rule(arn)
        if rule["Status"] != "PENDING_DELETION":
            self._delete_later(rule, self.rules, rule["SafetyRuleArn"])

    # ------------------------------------------------------------------ data plane
    def deployed_control(self, arn: Any) -> dict[str, Any]:
        if not isinstance(arn, str) or not 1 <= len(arn) <= 255 or not ARN_PATTERN.match(arn):
            raise invalid(f"Invalid RoutingControlArn: {arn!r}")
        control = self.controls.get(arn)
        if control is None or control["Status"] != "DEPLOYED":
            raise ArcError(
                "ResourceNotFoundException",
                f"Routing control {arn} not found",
                resourceId=arn,
                resourceType="RoutingControl",
            )
        return control

    @staticmethod
    def evaluate(config: dict[str, Any], states: list[str]) -> bool:
        on = sum(1 for s in states if s == "On")
        if config["Type"] == "AND":
            ok = on == len(states)
        elif config["Type"] == "OR":
            ok = on >= 1
        else:
            ok = on >= config["Threshold"]
        return (not ok) if config["Inverted"] else ok

    def update_states(self, entries: Any, overrides: Any, region: str) -> None:
        if not isinstance(entries, list) or not entries:
            raise invalid("UpdateRoutingControlStateEntries must contain at least one entry")
        wanted: dict[str, str] = {}
        for entry in entries:
            entry = entry or {}
            state = entry.get("RoutingControlState")
            control = self.deployed_control(entry.get("RoutingControlArn"))
            if state not in ("On", "Off"):
                raise invalid(f"RoutingControlState must be On or Off, not {state!r}")
            wanted[control["RoutingControlArn"]] = state
        skip = set(overrides or [])
        current = {arn: c["State"] for arn, c in self.controls.items()}
        after = {**current, **wanted}
        touched = set(wanted)
        panels = {self.controls[arn]["ControlPanelArn"] for arn in touched}
        now = self.emu.now()
        rules = [
            r for r in self.rules.values() if r["Status"] == "DEPLOYED" and r["ControlPanelArn"] in panels
        ]
        for rule in rules:
            if rule["SafetyRuleArn"] in skip:
                continue
            governed = set(rule["AssertedControls"] if rule["Type"] == "ASSERTION" else rule["TargetControls"])
            if not touched & governed:
                continue
            if self.emu.cfg("arc", "enforce_wait_period") and now < rule["blocked_until"]:
                raise conflict(
                    f"Safety rule {rule['Name']} ({rule['SafetyRuleArn']}) is in its wait period of "
                    f"{rule['WaitPeriodMs']} ms after a change of its routing controls; try again later",
                    rule["SafetyRuleArn"],
                    "SafetyRule",
                )
            if rule["Type"] == "ASSERTION":
                ok = self.evaluate(rule["RuleConfig"], [after.get(a, "Off") for a in rule["AssertedControls"]])
            else:
                ok = self.evaluate(rule["RuleConfig"], [current.get(a, "Off") for a in rule["GatingControls"]])
            if not ok:
                raise conflict(
                    f"The request is refused by {rule['Type'].lower()} safety rule {rule['Name']} "
                    f"({rule['SafetyRuleArn']}): its rule configuration evaluates to false",
                    rule["SafetyRuleArn"],
                    "SafetyRule",
                )
        changed = {arn for arn in touched if current[arn] != after[arn]}
        self._route53_record()
        for arn in touched:
            self.controls[arn]["State"] = after[arn]
        self._route53_record()
        for rule in rules:
            governed = set(rule["AssertedControls"] if rule["Type"] == "ASSERTION" else rule["TargetControls"])
            if changed & governed:
                rule["blocked_until"] = now + rule["WaitPeriodMs"] / 1000.0
        self.history.append(
            {
                "at": now,
                "region": region,
                "changes": {arn: {"from": current[arn], "to": after[arn]} for arn in sorted(touched)},
                "overridden": sorted(skip),
            }
        )

    def _route53_record(self) -> None:
        """Let Route 53 note the health of RECOVERY_CONTROL checks now (its status delay
        is measured from here)."""
        for ext in self.emu.extensions:
            if ext.name == "route53":
                ext.record_recovery_controls()

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/arc", lambda body: self._locked(self.state))]

    def _locked(self, fn: Any) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return fn()

    def state(self) -> dict[str, Any]:
        return {
            "clusters": {arn: dict(c) for arn, c in self.clusters.items()},
            "control_panels": {arn: self.panel_view(p) for arn, p in self.panels.items()},
            "routing_controls": {arn: dict(c) for arn, c in self.controls.items()},
            "safety_rules": {
                arn: {**{k: v for k, v in r.items() if k != "blocked_until"}, "wait_until": r["blocked_until"]}
                for arn, r in self.rules.items()
            },
            "history": list(self.history),
        }


# ---------------------------------------------------------------------- responses
def _page(items: list[Any], max_results: Any, token: Any, default: int) -> tuple[list[Any], str | None]:
    try:
        size = default if max_results is None else int(max_results)
        start = 0 if token in (None, "") else int(token)
    except (TypeError, ValueError):
        raise invalid("Invalid MaxResults or NextToken") from None
    if size < 1 or start < 0 or start > len(items):
        raise invalid("Invalid MaxResults or NextToken")
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class _ArcResponse(BaseResponse):
    """Shared by both APIs: the Region check, unknown operations, and error bodies."""

    ext: ArcExtension
    SERVICE = ""
    REGIONS: list[str] = []

    def __init__(self) -> None:
        super().__init__(service_name=self.SERVICE)
        self.automated_parameter_parsing = True

    def parse_parameters(self, request: Any) -> None:
        # An operation the model doesn't have is answered in call_action.
        if self._get_action() in get_service_model(self.SERVICE).operation_names:
            super().parse_parameters(request)
        else:
            self.params = {}

    def scope_region(self) -> str | None:
        scope = scope_from_headers(self.headers.get("Authorization"), self.parsed_url.query)
        return scope[1] if scope else None

    def call_action(self) -> Any:
        region = self.scope_region()
        if region not in self.REGIONS:
            return self.error_response(
                AwsError("InvalidSignatureException", f"Credential should be scoped to a valid region, not '{region}'. "),
                403,
            )
        action = self._get_action()
        if action not in get_service_model(self.SERVICE).operation_names or not hasattr(self, camelcase_to_underscores(action)):
            return self.error_response(
                AwsError("UnknownOperationException", "The requested operation is not recognized by the service."),
                self.UNKNOWN_STATUS,
            )
        return super().call_action()

    UNKNOWN_STATUS = 400

    def serialized(self, action_result: ActionResult) -> Any:
        result = action_result.result
        if isinstance(result, AwsError):
            return self.error_response(result, self.status_of(result.code))
        return super().serialized(action_result)

    def status_of(self, code: str) -> int:  # pragma: no cover - overridden
        return 400

    def error_response(self, error: AwsError, status: int) -> tuple[int, dict[str, Any], str]:
        raise NotImplementedError


class ArcControlResponse(_ArcResponse):
    """route53-recovery-control-config (restJson1)."""

    SERVICE = CONTROL
    REGIONS = [CONTROL_REGION]
    UNKNOWN_STATUS = 404

    def status_of(self, code: str) -> int:
        model = get_service_model(CONTROL)
        if code in model.shape_names:
            return int(model.shape_for(code).metadata.get("error", {}).get("httpStatusCode", 400))
        return 400

    def error_response(self, error: AwsError, status: int) -> tuple[int, dict[str, Any], str]:
        headers = dict(self.response_headers)
        headers.update({"Content-Type": "application/json", "x-amzn-ErrorType": error.code, "status": status})
        headers, body = self._enrich_response(headers, json.dumps({"message": error.message}))
        return status, headers, body

    def base_url(self) -> str:
        url = urlparse(self.uri)
        return f"{url.scheme}://{url.netloc}"

    # clusters
    def create_cluster(self) -> ActionResult:
        cluster = self.ext.create_cluster(
            self._get_param("ClusterName"),
            self._get_param("ClientToken"),
            self._get_param("Tags"),
            self._get_param("NetworkType"),
            self.base_url(),
        )
        return ActionResult({"Cluster": cluster})

    def describe_cluster(self) -> ActionResult:
        return ActionResult({"Cluster": self.ext.cluster(self._get_param("ClusterArn"))})

    def list_clusters(self) -> ActionResult:
        page, token = _page(list(self.ext.clusters.values()), self._get_param("MaxResults"), self._get_param("NextToken"), 100)
        return ActionResult({"Clusters": page, "NextToken": token})

    def update_cluster(self) -> ActionResult:
        return ActionResult({"Cluster": self.ext.update_cluster(self._get_param("ClusterArn"), self._get_param("NetworkType"))})

    def delete_cluster(self) -> ActionResult:
        self.ext.delete_cluster(self._get_param("ClusterArn"))
        return EmptyResult()

    # control panels
    def create_control_panel(self) -> ActionResult:
        panel = self.ext.create_panel(
            self._get_param("ClusterArn"), self._get_param("ControlPanelName"), self._get_param("ClientToken"), self._get_param("Tags")
        )
        return ActionResult({"ControlPanel": panel})

    def describe_control_panel(self) -> ActionResult:
        return ActionResult({"ControlPanel": self.ext.panel_view(self.ext.panel(self._get_param("ControlPanelArn")))})

    def list_control_panels(self) -> ActionResult:
        cluster_arn = self._get_param("ClusterArn")
        if cluster_arn is not None:
            self.ext.cluster(cluster_arn)
        panels = [
            self.ext.panel_view(p) for p in self.ext.panels.values() if cluster_arn is None or p["ClusterArn"] == cluster_arn
        ]
        page, token = _page(panels, self._get_param("MaxResults"), self._get_param("NextToken"), 100)
        return ActionResult({"ControlPanels": page, "NextToken": token})

    def update_control_panel(self) -> ActionResult:
        panel = self.ext.update_panel(self._get_param("ControlPanelArn"), self._get_param("ControlPanelName"))
        return ActionResult({"ControlPanel": panel})

    def delete_control_panel(self) -> ActionResult:
        self.ext.delete_panel(self._get_param("ControlPanelArn"))
        return EmptyResult()

    # routing controls
    def create_routing_control(self) -> ActionResult:
        control = self.ext.create_control(
            self._get_param("ClusterArn"),
            self._get_param("ControlPanelArn"),
            self._get_param("RoutingControlName"),
            self._get_param("ClientToken"),
        )
        return ActionResult({"RoutingControl": control})

    def describe_routing_control(self) -> ActionResult:
        control = self.ext.control(self._get_param("RoutingControlArn"))
        return ActionResult({"RoutingControl": self.ext.control_view(control)})

    def list_routing_controls(self) -> ActionResult:
        panel = self.ext.panel(self._get_param("ControlPanelArn"))
        controls = [
            self.ext.control_view(c) for c in self.ext.controls.values() if c["ControlPanelArn"] == panel["ControlPanelArn"]
        ]
        page, token = _page(controls, self._get_param("MaxResults"), self._get_param("NextToken"), 100)
        return ActionResult({"RoutingControls": page, "NextToken": token})

    def update_routing_control(self) -> ActionResult:
        control = self.ext.update_control(self._get_param("RoutingControlArn"), self._get_param("RoutingControlName"))
        return ActionResult({"RoutingControl": control})

    def delete_routing_control(self) -> ActionResult:
        self.ext.delete_control(self._get_param("RoutingControlArn"))
        return EmptyResult()

    def list_associated_route53_health_checks(self) -> ActionResult:
        arn = self.ext.control(self._get_param("RoutingControlArn"))["RoutingControlArn"]
        from moto.route53.models import route53_backends

        ids = [
            hc.id
            for hc in route53_backends[self.ext.account_id]["aws"].health_checks.values()
            if getattr(hc, "routing_control_arn", None) == arn
        ]
        page, token = _page(ids, self._get_param("MaxResults"), self._get_param("NextToken"), 100)
        return ActionResult({"HealthCheckIds": page, "NextToken": token})

    # safety rules
    def create_safety_rule(self) -> ActionResult:
        rule = self.ext.create_rule(
            self._get_param("AssertionRule"), self._get_param("GatingRule"), self._get_param("ClientToken"), self._get_param("Tags")
        )
        return ActionResult(self.ext.rule_view(rule))

    def describe_safety_rule(self) -> ActionResult:
        return ActionResult(self.ext.rule_view(self.ext.rule(self._get_param("SafetyRuleArn"))))

    def list_safety_rules(self) -> ActionResult:
        panel = self.ext.panel(self._get_param("ControlPanelArn"))
        rules = [self.ext.rule_list_item(r) for r in self.ext.rules.values() if r["ControlPanelArn"] == panel["ControlPanelArn"]]
        page, token = _page(rules, self._get_param("MaxResults"), self._get_param("NextToken"), 100)
        return ActionResult({"SafetyRules": page, "NextToken": token})

    def update_safety_rule(self) -> ActionResult:
        rule = self.ext.update_rule(self._get_param("AssertionRuleUpdate"), self._get_param("GatingRuleUpdate"))
        return ActionResult(self.ext.rule_view(rule))

    def delete_safety_rule(self) -> ActionResult:
        self.ext.delete_rule(self._get_param("SafetyRuleArn"))
        return EmptyResult()

    # tags and policies
    def _resource(self, arn: Any) -> str:
        for table in (self.ext.clusters, self.ext.panels, self.ext.controls, self.ext.rules):
            if arn in table:
                return arn
        raise not_found("Resource", str(arn), "Resource")

    def tag_resource(self) -> ActionResult:
        arn = self._resource(self._get_param("ResourceArn"))
        self.ext.tags.setdefault(arn, {}).update(self._get_param("Tags") or {})
        return EmptyResult()

    def untag_resource(self) -> ActionResult:
        arn = self._resource(self._get_param("ResourceArn"))
        for key in self._get_param("TagKeys") or []:
            self.ext.tags.get(arn, {}).pop(key, None)
        return EmptyResult()

    def list_tags_for_resource(self) -> ActionResult:
        arn = self._resource(self._get_param("ResourceArn"))
        return ActionResult({"Tags": dict(self.ext.tags.get(arn, {}))})

    def get_resource_policy(self) -> ActionResult:
        arn = str(self._get_param("ResourceArn"))
        raise not_found("Resource policy", arn, "ResourcePolicy")


class ArcClusterResponse(_ArcResponse):
    """route53-recovery-cluster (awsJson1.0), any of the five cluster Regions."""

    SERVICE = CLUSTER
    REGIONS = CLUSTER_REGIONS

    def status_of(self, code: str) -> int:
        return CLUSTER_ERROR_STATUS.get(code, 400)

    def error_response(self, error: AwsError, status: int) -> tuple[int, dict[str, Any], str]:
        # The service's own errors carry its Smithy namespace; the front end's
        # (InvalidSignatureException, UnknownOperationException) only their name.
        kind = f"{CLUSTER_ERROR_NAMESPACE}#{error.code}" if error.code in CLUSTER_ERROR_STATUS else error.code
        body: dict[str, Any] = {"__type": kind, "message": error.message}
        body.update(getattr(error, "members", {}))
        headers = dict(self.response_headers)
        headers.update({"Content-Type": "application/x-amz-json-1.0", "status": status})
        headers, text = self._enrich_response(headers, json.dumps(body))
        return status, headers, text

    def get_routing_control_state(self) -> ActionResult:
        control = self.ext.deployed_control(self._get_param("RoutingControlArn"))
        return ActionResult(
            {
                "RoutingControlArn": control["RoutingControlArn"],
                "RoutingControlState": control["State"],
                "RoutingControlName": control["Name"],
            }
        )

    def list_routing_controls(self) -> ActionResult:
        panel_arn = self._get_param("ControlPanelArn")
        if panel_arn is not None:
            panel = self.ext.panels.get(panel_arn)
            if panel is None or panel["Status"] != "DEPLOYED":
                raise ArcError(
                    "ResourceNotFoundException",
                    f"Control panel {panel_arn} not found",
                    resourceId=str(panel_arn),
                    resourceType="ControlPanel",
                )
        items = []
        for c in self.ext.controls.values():
            if c["Status"] != "DEPLOYED" or (panel_arn is not None and c["ControlPanelArn"] != panel_arn):
                continue
            items.append(
                {
                    "ControlPanelArn": c["ControlPanelArn"],
                    "ControlPanelName": self.ext.panels[c["ControlPanelArn"]]["Name"],
                    "RoutingControlArn": c["RoutingControlArn"],
                    "RoutingControlName": c["Name"],
                    "RoutingControlState": c["State"],
                    "Owner": c["Owner"],
                }
            )
        page, token = _page(items, self._get_param("MaxResults"), self._get_param("NextToken"), 500)
        return ActionResult({"RoutingControls": page, "NextToken": token})

    def update_routing_control_state(self) -> ActionResult:
        entry = {"RoutingControlArn": self._get_param("RoutingControlArn"), "RoutingControlState": self._get_param("RoutingControlState")}
        self.ext.update_states([entry], self._get_param("SafetyRulesToOverride"), self.scope_region() or "")
        return ActionResult({})

    def update_routing_control_states(self) -> ActionResult:
        self.ext.update_states(
            self._get_param("UpdateRoutingControlStateEntries"), self._get_param("SafetyRulesToOverride"), self.scope_region() or ""
        )
        return ActionResult({})
