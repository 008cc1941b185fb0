"""Route 53: change propagation, health-check status, and the validation AWS does.

Served here (botocore model route53 2013-04-01):
- ChangeResourceRecordSets: transactional (all or nothing), validated like Route 53:
  CREATE of an existing set, DELETE of a missing one or with values that differ,
  a second PRIMARY/SECONDARY failover record for one name and type, mixing routing
  policies for one name and type, a CNAME next to other records, an unknown
  HealthCheckId (NoSuchHealthCheck, 404), more than 1,000 ResourceRecord elements or
  32,000 characters of Value elements in one request (an UPSERT counts twice).
  Every change gets its own id and is PENDING for a configurable time, then INSYNC.
  (moto accepts all of the above, answers INSYNC at once, and reuses one change id.)
- GetChange: PENDING until the change has propagated; NoSuchChange (404) otherwise.
- GetHealthCheckStatus: driven by `/_drpilot/route53/health-checks/{id}`; honours
  Inverted and Disabled (a disabled check is healthy; disabled and inverted, unhealthy).
  The same status is what `ext/cloudwatch.py` publishes as the CloudWatch metric
  AWS/Route53 HealthCheckStatus (from `status_series`, on the wall clock).
- CreateHealthCheck of Type RECOVERY_CONTROL (moto drops RoutingControlArn and answers
  with endpoint fields): RoutingControlArn is required (and only allowed) with that
  Type; RequestInterval, FailureThreshold, MeasureLatency and EndpointType PRIVATE are
  refused with it (InvalidInput), as the model's documentation says. Such a check is
  healthy exactly when its Route 53 ARC routing control is On (before Inverted and
  Disabled; a deleted routing control reads as Off).
- GetHostedZoneLimit (moto lacks it): MAX_RRSETS_BY_ZONE (Value `route53.max_rrsets_by_zone`,
  AWS's default quota 10,000; Count = the zone's record sets, SOA and NS included, as
  GetHostedZone's ResourceRecordSetCount) and MAX_VPCS_ASSOCIATED_BY_ZONE (Value 300;
  Count = the associated VPCs; HostedZoneNotPrivate for a public zone). Another Type is
  InvalidInput, an unknown zone NoSuchHostedZone (404).
- `/_drpilot/route53/answer`: the DNS answer moto does not give, from the zone's record
  sets with Route 53's simple and failover routing (aliases within the zone followed).

Route 53's control plane signs with us-east-1, so blackholing us-east-1 (whole, or its
`route53` service) makes it unreachable, as in a real us-east-1 outage.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.route53.models import RecordSet, route53_backends
from moto.route53.responses import Route53

from moto.route53.models import HealthCheck

from .base import AwsError, Extension, HttpError, aws_error, utcnow

# Change ids moto hard-codes in its own responses (CreateHostedZone, ...): always INSYNC.
MOTO_CHANGE_IDS = {"C1PA6795UKMFR9", "C2682N5HXP0BZ4", "a1b2c3d4"}

CHECKER_REGIONS = [
    ("us-east-1", "15.177.2.10"),
    ("us-west-1", "15.177.10.10"),
    ("us-west-2", "15.177.14.10"),
    ("eu-west-1", "15.177.62.10"),
    ("ap-southeast-1", "15.177.42.10"),
    ("ap-southeast-2", "15.177.50.10"),
    ("ap-northeast-1", "15.177.34.10"),
    ("sa-east-1", "15.177.58.10"),
]


def norm(name: str) -> str:
    name = (name or "").lower()
    return name if name.endswith(".") else name + "."


def describe_set(rs: dict[str, Any]) -> str:
    desc = f"[name='{norm(rs.get('Name', ''))}', type='{rs.get('Type')}'"
    if rs.get("SetIdentifier") is not None:
        desc += f", set-identifier='{rs['SetIdentifier']}'"
    return desc + "]"


# Fields the model's documentation says are not supported with Type RECOVERY_CONTROL.
NOT_FOR_RECOVERY_CONTROL = ("RequestInterval", "FailureThreshold", "MeasureLatency")
# Routing policies /_drpilot/route53/answer does not evaluate.
UNEVALUATED_POLICIES = ("Weight", "Region", "GeoLocation", "MultiValueAnswer", "CidrRoutingConfig", "GeoProximityLocation")
# HostedZoneLimitType. The VPC quota is the Route 53 Developer Guide's ("Amazon VPCs that
# you can associate with a private hosted zone": 300); the record-set one is configurable.
HOSTED_ZONE_LIMIT_TYPES = ("MAX_RRSETS_BY_ZONE", "MAX_VPCS_ASSOCIATED_BY_ZONE")
MAX_VPCS_ASSOCIATED_BY_ZONE = 300


class RecoveryControlHealthCheck(HealthCheck):
    """A RECOVERY_CONTROL health check: its HealthCheckConfig carries RoutingControlArn
    and none of the endpoint fields moto would add (IPAddress, Port, RequestInterval,
    FailureThreshold, MeasureLatency)."""

    routing_control_arn: str

    @property
    def health_check_config(self) -> dict[str, Any]:
        return {
            "Type": self.type_,
            "Inverted": self.inverted,
            "Disabled": self.disabled,
            "RoutingControlArn": self.routing_control_arn,
        }


class InvalidChangeBatchError(AwsError):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("InvalidChangeBatch", "; ".join(messages))
        self.messages = messages


class DrRoute53Response(Route53):
    ext: "Route53Extension"

    def change_resource_record_sets(self) -> ActionResult:
        zone = self.backend.get_hosted_zone(self._get_param("HostedZoneId"))
        changes = self._get_param("ChangeBatch.Changes") or []
        comment = self._get_param("ChangeBatch.Comment")
        info = self.ext.change(self.backend, zone, changes, comment)
        return ActionResult({"ChangeInfo": info})

    def get_change(self) -> ActionResult:
        return ActionResult({"ChangeInfo": self.ext.get_change(self._get_param("Id"))})

    def get_health_check_status(self) -> ActionResult:
        hc = self.backend.get_health_check(self._get_param("HealthCheckId"))
        return ActionResult({"HealthCheckObservations": self.ext.observations(hc)})

    def get_hosted_zone_limit(self) -> ActionResult:
        limit_type = self._get_param("Type")
        zone_id = self._get_param("HostedZoneId")
        return ActionResult(self.ext.hosted_zone_limit(self.backend, zone_id, limit_type))

    def create_health_check(self) -> ActionResult:
        config = self._get_param("HealthCheckConfig") or {}
        rc_arn = config.get("RoutingControlArn")
        if config.get("Type") == "RECOVERY_CONTROL":
            if not rc_arn:
                raise aws_error("InvalidInput", "Invalid parameter: RoutingControlArn is required for a RECOVERY_CONTROL health check.")
            for field in NOT_FOR_RECOVERY_CONTROL:
                if config.get(field) is not None:
                    raise aws_error("InvalidInput", f"Invalid parameter: {field} is not supported for a RECOVERY_CONTROL health check.")
            if config.get("EndpointType") == "PRIVATE":
                raise aws_error("InvalidInput", "Invalid parameter: EndpointType PRIVATE is not supported for a RECOVERY_CONTROL health check.")
        elif rc_arn:
            raise aws_error("InvalidInput", "Invalid parameter: RoutingControlArn is only allowed for a RECOVERY_CONTROL health check.")
        result = super().create_health_check()
        hc = result.result["HealthCheck"]  # type: ignore[index]
        if config.get("Type") == "RECOVERY_CONTROL":
            hc.__class__ = RecoveryControlHealthCheck
            hc.routing_control_arn = rc_arn
        self.ext.record_status(hc)
        return result


class Route53Extension(Extension):
    name = "route53"
    service = "route53"
    ops = frozenset({"ChangeResourceRecordSets", "GetChange", "GetHealthCheckStatus", "CreateHealthCheck", "GetHostedZoneLimit"})
    after_ops = frozenset({"UpdateHealthCheck", "DeleteHealthCheck"})
    response_class = DrRoute53Response

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrRoute53Response.ext = self
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.changes: dict[str, dict[str, Any]] = {}
        self.endpoint_healthy: dict[str, bool] = {}
        self.status_history: dict[str, list[tuple[float, bool]]] = {}
        # The reported status on the wall clock, for the HealthCheckStatus metric:
        # [(when it takes the value, value)]; the first entry is the creation. Kept
        # after DeleteHealthCheck (CloudWatch keeps what was published), with when.
        self.status_series: dict[str, list[tuple[float, bool]]] = {}
        self.deleted_at: dict[str, float] = {}

    def backend(self) -> Any:
        return route53_backends[self.account_id]["aws"]

    # ------------------------------------------------------------------ records
    def change(self, backend: Any, zone: Any, changes: list[dict[str, Any]], comment: str | None) -> dict[str, Any]:
        # ChangeResourceRecordSets "Limits": at most 1,000 ResourceRecord elements and
        # 32,000 characters in all Value elements; an UPSERT counts twice for both.
        rr_count = 0
        value_chars = 0
        for change in changes:
            records = (change.get("ResourceRecordSet") or {}).get("ResourceRecords") or []
            factor = 2 if change.get("Action") == "UPSERT" else 1
            rr_count += len(records) * factor
            value_chars += sum(len(r.get("Value") or "") for r in records) * factor
        if rr_count > 1000:
            raise aws_error(
                "InvalidChangeBatch",
                f"Number of records limit of 1000 exceeded: the batch counts {rr_count} ResourceRecord elements.",
            )
        if value_chars > 32000:
            raise aws_error(
                "InvalidChangeBatch",
                f"Number of characters limit of 32000 exceeded: the batch's Value elements count {value_chars} characters.",
            )
        zone_name = norm(zone.name)
        work: list[dict[str, Any]] = [self._from_moto(r) for r in zone.rrsets]
        errors: list[str] = []
        for change in changes:
            action = change.get("Action")
            rs = dict(change.get("ResourceRecordSet") or {})
            if action not in ("CREATE", "DELETE", "UPSERT"):
                raise aws_error(
                    "InvalidInput",
                    f"Invalid XML ; cvc-enumeration-valid: Value '{action}' is not facet-valid with respect to "
                    "enumeration '[CREATE, DELETE, UPSERT]'. It must be a value from the enumeration.",
                )
            name = norm(rs.get("Name", ""))
            where = (
                f"Change with [Action={action}, Name={name}, Type={rs.get('Type')}, "
                f"SetIdentifier={rs.get('SetIdentifier', 'null')}]"
            )
            has_alias = rs.get("AliasTarget") is not None
            has_values = rs.get("TTL") is not None and bool(rs.get("ResourceRecords"))
            if has_alias == has_values:
                raise aws_error(
                    "InvalidInput",
                    "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], "
                    f"or TrafficPolicyInstanceId], but found {'both' if has_alias else 'none'} in {where}",
                )
            failover = rs.get("Failover")
            if failover is not None:
                if failover not in ("PRIMARY", "SECONDARY"):
                    raise aws_error(
                        "InvalidInput",
                        f"Invalid XML ; cvc-enumeration-valid: Value '{failover}' is not facet-valid with respect "
                        "to enumeration '[PRIMARY, SECONDARY]'. It must be a value from the enumeration.",
                    )
                if rs.get("SetIdentifier") is None:
                    raise aws_error("InvalidInput", f"Invalid request: Missing field 'SetIdentifier' in {where}")
            if name != zone_name and not name.endswith("." + zone_name):
                errors.append(f"RRSet with DNS name {name} is not permitted in zone {zone_name}")
                continue
            hc_id = rs.get("HealthCheckId")
            if hc_id and action != "DELETE" and hc_id not in backend.health_checks:
                raise aws_error("NoSuchHealthCheck", f"A health check with id {hc_id} does not exist.")
            key = (name, rs.get("Type"), rs.get("SetIdentifier"))
            existing = next((w for w in work if w["key"] == key), None)
            if action == "DELETE":
                if existing is None:
                    errors.append(f"Tried to delete resource record set {describe_set(rs)} but it was not found")
                elif not self._same(existing["rs"], rs):
                    errors.append(
                        f"Tried to delete resource record set {describe_set(rs)} but the values provided do not "
                        "match the current values"
                    )
                else:
                    work.remove(existing)
                continue
            if action == "CREATE" and existing is not None:
                errors.append(f"Tried to create resource record set {describe_set(rs)} but it already exists")
                continue
            others = [w for w in work if w is not existing and w["key"][0] == name]
            problem = self._conflict(rs, name, zone_name, others)
            if problem:
                errors.append(problem)
                continue
            entry = {"key": key, "rs": rs}
            if existing is not None:
                work[work.index(existing)] = entry
            else:
                work.append(entry)
        if errors:
            raise InvalidChangeBatchError(errors)
        zone.rrsets = [self._to_moto(w["rs"], w.get("obj")) for w in work]
        change_id = "C" + uuid.uuid4().hex[:20].upper()
        record = {"Id": f"/change/{change_id}", "Status": "PENDING", "SubmittedAt": utcnow()}
        if comment:
            record["Comment"] = comment
        self.changes[change_id] = record

        def insync() -> None:
            record["Status"] = "INSYNC"

        self.emu.after(float(self.emu.cfg("route53", "propagation_seconds")), insync)
        return dict(record)

    @staticmethod
    def _conflict(rs: dict[str, Any], name: str, zone_name: str, others: list[dict[str, Any]]) -> str | None:
        rtype = rs.get("Type")
        same_type = [w for w in others if w["key"][1] == rtype]
        if rtype == "CNAME" and any(w["key"][1] != "CNAME" for w in others) and name != zone_name:
            return (
                f"RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other records "
                f"with the same DNS name in zone {zone_name}"
            )
        if rtype != "CNAME" and any(w["key"][1] == "CNAME" for w in others):
            return (
                f"RRSet of type {rtype} with DNS name {name} is not permitted because a conflicting RRSet of "
                f"type CNAME with the same DNS name already exists in zone {zone_name}"
            )
        set_id = rs.get("SetIdentifier")
        for w in same_type:
            if (w["key"][2] is None) != (set_id is None):
                kind = "non-weighted" if set_id is not None else "weighted"
                return (
                    f"RRSet with DNS name {name}, type {rtype} cannot be created as a {kind} set exists "
                    "with the same name and type."
                )
        failover = rs.get("Failover")
        if failover:
            for w in same_type:
                if w["rs"].get("Failover") == failover:
                    return (
                        f"Tried to create resource record set {describe_set(rs)} but a {failover} failover "
                        f"resource record set already exists for name {name} and type {rtype} "
                        f"(set-identifier='{w['key'][2]}')"
                    )
        policies = {"Failover", "Weight", "Region", "GeoLocation", "MultiValueAnswer", "CidrRoutingConfig", "GeoProximityLocation"}
        mine = {p for p in policies if rs.get(p) is not None}
        for w in same_type:
            theirs = {p for p in policies if w["rs"].get(p) is not None}
            if mine and theirs and mine != theirs:
                return (
                    f"RRSet with DNS name {name}, type {rtype}, SetIdentifier {set_id} cannot be created because "
                    "another RRSet with the same name and type uses a different routing policy"
                )
        return None

    @staticmethod
    def _canon(rs: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in rs.items() if v is not None and k not in ("Name",)}
        if "ResourceRecords" in out:
            out["ResourceRecords"] = sorted(r["Value"] if isinstance(r, dict) else r for r in out["ResourceRecords"])
        if "TTL" in out:
            out["TTL"] = int(out["TTL"])
        if "Weight" in out:
            out["Weight"] = int(out["Weight"])
        if isinstance(out.get("AliasTarget"), dict):
            alias = dict(out["AliasTarget"])
            alias["DNSName"] = norm(alias.get("DNSName", ""))
            alias["EvaluateTargetHealth"] = bool(alias.get("EvaluateTargetHealth"))
            out["AliasTarget"] = alias
        return out

    def _same(self, a: dict[str, Any], b: dict[str, Any]) -> bool:
        return self._canon(a) == self._canon(b)

    @staticmethod
    def _from_moto(r: RecordSet) -> dict[str, Any]:
        rs: dict[str, Any] = {"Name": r.name, "Type": r.type}
        for attr, key in (
            ("set_identifier", "SetIdentifier"),
            ("weight", "Weight"),
            ("region", "Region"),
            ("geo_location", "GeoLocation"),
            ("failover", "Failover"),
            ("multi_value_answer", "MultiValueAnswer"),
            ("ttl", "TTL"),
            ("alias_target", "AliasTarget"),
            ("health_check_id", "HealthCheckId"),
        ):
            value = getattr(r, attr, None)
            if value is not None:
                rs[key] = value
        if r.records:
            rs["ResourceRecords"] = [{"Value": v} for v in r.records]
        return {"key": (norm(r.name), r.type, rs.get("SetIdentifier")), "rs": rs, "obj": r}

    @staticmethod
    def _to_moto(rs: dict[str, Any], obj: RecordSet | None) -> RecordSet:
        if obj is not None:
            return obj
        data = dict(rs)
        if not data["Name"].endswith("."):
            data["Name"] += "."
        if "ResourceRecords" in data:
            data["ResourceRecords"] = [r["Value"] for r in data["ResourceRecords"]]
        return RecordSet(data)

    def get_change(self, change_id: str | None) -> dict[str, Any]:
        cid = (change_id or "").split("/")[-1]
        if cid in self.changes:
            return dict(self.changes[cid])
        if cid in MOTO_CHANGE_IDS:
            return {"Id": f"/change/{cid}", "Status": "INSYNC", "SubmittedAt": utcnow()}
        raise aws_error("NoSuchChange", f"A change with the specified change ID does not exist: {cid}")

    # ------------------------------------------------------------------ limits
    def hosted_zone_limit(self, backend: Any, zone_id: str | None, limit_type: str | None) -> dict[str, Any]:
        """GetHostedZoneLimitResponse: Limit {Type, Value} and Count, the current number
        of records (record sets, SOA and NS included) or of associated VPCs."""
        if limit_type not in HOSTED_ZONE_LIMIT_TYPES:
            raise aws_error(
                "InvalidInput",
                f"1 validation error detected: Value '{limit_type}' at 'type' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(HOSTED_ZONE_LIMIT_TYPES)}]",
            )
        zone = backend.get_hosted_zone(zone_id or "")
        if limit_type == "MAX_RRSETS_BY_ZONE":
            value = int(self.emu.cfg("route53", "max_rrsets_by_zone"))
            count = len(zone.rrsets)
        else:
            if not zone.private_zone:
                raise aws_error("HostedZoneNotPrivate", f"The specified hosted zone is a public hosted zone: {zone.resource_id}")
            value = MAX_VPCS_ASSOCIATED_BY_ZONE
            count = sum(1 for vpc in zone.vpcs if vpc.get("vpc_id"))
        return {"Limit": {"Type": limit_type, "Value": value}, "Count": count}

    # ------------------------------------------------------------------ health checks
    @staticmethod
    def _effective(endpoint_healthy: bool, hc: Any) -> bool:
        base = True if hc.disabled else endpoint_healthy
        return (not base) if hc.inverted else base

    def _arc(self) -> Any:
        return next((e for e in self.emu.extensions if e.name == "arc"), None)

    def base_healthy(self, hc: Any) -> bool:
        """What the checkers see before Inverted/Disabled: the controlled endpoint
        health, or for RECOVERY_CONTROL whether the routing control is On."""
        if hc.type_ == "RECOVERY_CONTROL":
            arc = self._arc()
            return arc is not None and arc.state_of(getattr(hc, "routing_control_arn", None)) == "On"
        return self.endpoint_healthy.get(hc.id, True)

    def record_recovery_controls(self) -> None:
        for hc in self.backend().health_checks.values():
            if hc.type_ == "RECOVERY_CONTROL":
                self.record_status(hc)

    def record_status(self, hc: Any) -> None:
        value = self._effective(self.base_healthy(hc), hc)
        history = self.status_history.setdefault(hc.id, [])
        if not history or history[-1][1] != value:
            # Reported after `route53.health_check_delay_seconds` (emulated; on the wall
            # clock at the clock's speed now), except the status at creation.
            delay = 0.0
            if history:
                delay = self.emu.clock.real_seconds(float(self.emu.cfg("route53", "health_check_delay_seconds")))
            history.append((self.emu.now(), value))
            self.status_series.setdefault(hc.id, []).append((time.time() + delay, value))

    def status_now(self, hc: Any) -> bool:
        self.record_status(hc)
        history = self.status_history[hc.id]
        cutoff = self.emu.now() - float(self.emu.cfg("route53", "health_check_delay_seconds"))
        value = history[0][1]
        for ts, v in history:
            if ts <= cutoff:
                value = v
        return value

    def metric_series(self, hid: str) -> tuple[list[tuple[float, float]], float, float, float | None] | None:
        """The HealthCheckStatus metric of a health check on the wall clock: (changes
        [(time, 1.0 or 0.0)], the value at creation, when it was created, when it was
        deleted or None); None for a health check that never existed."""
        hc = self.backend().health_checks.get(hid)
        if hc is not None:
            self.record_status(hc)
        series = self.status_series.get(hid)
        if not series:
            return None
        (created, initial), changes = series[0], sorted(series[1:])
        return [(ts, 1.0 if v else 0.0) for ts, v in changes], 1.0 if initial else 0.0, created, self.deleted_at.get(hid)

    def observations(self, hc: Any) -> list[dict[str, Any]]:
        healthy = self.status_now(hc)
        if hc.type_ == "RECOVERY_CONTROL":
            text = "Success: Routing control state is On" if healthy else "Failure: Routing control state is Off"
        elif healthy:
            text = "Success: HTTP Status Code 200, OK"
        else:
            text = "Failure: HTTP Status Code 503, Service Unavailable"
        if hc.disabled:
            text += " (health check disabled)"
        if hc.inverted:
            text += " (status inverted)"
        regions = hc.regions or [r for r, _ in CHECKER_REGIONS]
        ips = dict(CHECKER_REGIONS)
        now = utcnow()
        return [
            {"Region": r, "IPAddress": ips.get(r, "15.177.0.10"), "StatusReport": {"Status": text, "CheckedTime": now}}
            for r in regions
        ]

    def after(self, ctx: Any, environ: dict, status: int, headers: list, body: bytes) -> tuple[int, list, bytes]:
        if status < 300:
            backend = self.backend()
            if ctx.operation == "DeleteHealthCheck":
                hid = ctx.uri_params.get("HealthCheckId")
                self.endpoint_healthy.pop(hid, None)
                self.status_history.pop(hid, None)
                if hid in self.status_series:
                    self.deleted_at[hid] = time.time()
            else:
                for hc in backend.health_checks.values():
                    self.record_status(hc)
        return status, headers, body

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/route53", lambda body: self._locked(self.state)),
            ("POST", "/route53/health-checks/(?P<hid>[^/]+)", self._post_health),
            ("GET", "/route53/answer", lambda body: self._locked(lambda: self.answer(body))),
        ]

    def _locked(self, fn: Any) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return fn()

    def _post_health(self, body: Any, hid: str) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("healthy"), bool):
            raise ValueError('body must be {"healthy": true|false}')
        with self.emu.lock:
            hc = self.backend().health_checks.get(hid)
            if hc is None:
                raise KeyError(f"no health check {hid}")
            if hc.type_ == "RECOVERY_CONTROL":
                raise ValueError(f"health check {hid} is RECOVERY_CONTROL: its routing control decides its health")
            self.record_status(hc)
            self.endpoint_healthy[hid] = body["healthy"]
            self.record_status(hc)
            return self._hc_state(hc)

    def _hc_state(self, hc: Any) -> dict[str, Any]:
        out = {
            "id": hc.id,
            "type": hc.type_,
            "endpoint_healthy": self.base_healthy(hc),
            "inverted": bool(hc.inverted),
            "disabled": bool(hc.disabled),
            "reported_healthy": self.status_now(hc),
        }
        if hc.type_ == "RECOVERY_CONTROL":
            out["routing_control_arn"] = getattr(hc, "routing_control_arn", None)
        return out

    # ------------------------------------------------------------------ DNS answers
    def answer(self, query: Any) -> dict[str, Any]:
        """What Route 53 answers for NAME/TYPE from the zone, by its routing rules."""
        query = query or {}
        missing = [k for k in ("zone_id", "name", "type") if not query.get(k)]
        if missing:
            raise ValueError(f"query needs zone_id, name and type (missing: {', '.join(missing)})")
        zone_id = str(query["zone_id"]).split("/")[-1]
        zone = self.backend().zones.get(zone_id)
        if zone is None:
            raise HttpError(404, f"no hosted zone {zone_id}")
        result = self._resolve(zone, norm(query["name"]), str(query["type"]).upper(), 0)
        if result is None:
            raise HttpError(404, f"no record set {norm(query['name'])} {str(query['type']).upper()} in zone {zone_id}")
        return {"zone_id": zone_id, "name": norm(query["name"]), **result}

    def _record_view(self, rs: dict[str, Any], healthy: bool) -> dict[str, Any]:
        view: dict[str, Any] = {"name": norm(rs["Name"]), "type": rs["Type"], "healthy": healthy}
        for key, out in (
            ("SetIdentifier", "set_identifier"),
            ("Failover", "failover"),
            ("HealthCheckId", "health_check_id"),
            ("TTL", "ttl"),
            ("AliasTarget", "alias_target"),
        ):
            if rs.get(key) is not None:
                view[out] = int(rs[key]) if key == "TTL" else rs[key]
        return view

    def _record_healthy(self, zone: Any, rs: dict[str, Any], depth: int) -> bool:
        healthy = True
        hc_id = rs.get("HealthCheckId")
        if hc_id:
            hc = self.backend().health_checks.get(hc_id)
            # A deleted health check: Route 53 calls its status unpredictable; here healthy.
            healthy = self.status_now(hc) if hc is not None else True
        alias = rs.get("AliasTarget")
        if healthy and isinstance(alias, dict) and str(alias.get("EvaluateTargetHealth")).lower() == "true":
            target = self._alias(zone, alias, rs["Type"], depth)
            healthy = target is not None and target["group_healthy"]
        return healthy

    def _alias(self, zone: Any, alias: dict[str, Any], rtype: str, depth: int) -> dict[str, Any] | None:
        target_zone = str(alias.get("HostedZoneId", "")).split("/")[-1]
        if target_zone != zone.resource_id:
            raise HttpError(
                400,
                f"alias target {alias.get('DNSName')} (hosted zone {target_zone}) is outside the zone: "
                "only aliases to records of the same zone are evaluated",
            )
        if depth >= 8:
            raise HttpError(400, "alias chain too long")
        return self._resolve(zone, norm(str(alias.get("DNSName", ""))), rtype, depth + 1)

    def _resolve(self, zone: Any, name: str, rtype: str, depth: int) -> dict[str, Any] | None:
        sets = [self._from_moto(r)["rs"] for r in zone.rrsets if norm(r.name) == name and r.type == rtype]
        if not sets and rtype != "CNAME":
            sets = [self._from_moto(r)["rs"] for r in zone.rrsets if norm(r.name) == name and r.type == "CNAME"]
        if not sets:
            return None
        for rs in sets:
            policy = next((p for p in UNEVALUATED_POLICIES if rs.get(p) is not None), None)
            if policy:
                raise HttpError(400, f"{name} {rs['Type']} uses routing policy {policy}, which is not evaluated")
        health = [self._record_healthy(zone, rs, depth) for rs in sets]
        failover = {rs["Failover"]: (rs, ok) for rs, ok in zip(sets, health) if rs.get("Failover")}
        if failover:
            primary, secondary = failover.get("PRIMARY"), failover.get("SECONDARY")
            # Route 53 (ResourceRecordSet.Failover in the API reference): the primary when
            # it is healthy; else the secondary if it is healthy (or has no health check);
            # when the secondary is unhealthy too, the primary regardless of its health.
            if primary is not None and primary[1]:
                chosen = primary
            elif secondary is not None and secondary[1]:
                chosen = secondary
            else:
                chosen = primary if primary is not None else secondary  # type: ignore[assignment]
        else:
            chosen = (sets[0], health[0])
        rs, ok = chosen  # type: ignore[misc]
        out: dict[str, Any] = {
            "type": rs["Type"],
            "record": self._record_view(rs, ok),
            "evaluated": [self._record_view(r, h) for r, h in zip(sets, health)],
            "group_healthy": any(health),
        }
        alias = rs.get("AliasTarget")
        if isinstance(alias, dict):
            target = self._alias(zone, alias, rs["Type"], depth)
            out["values"] = list(target["values"]) if target else []
            out["alias"] = target
        else:
            out["values"] = [r["Value"] if isinstance(r, dict) else r for r in rs.get("ResourceRecords") or []]
        return out

    def state(self) -> dict[str, Any]:
        return {
            "changes": {k: {**v, "SubmittedAt": str(v["SubmittedAt"])} for k, v in self.changes.items()},
            "health_checks": {hid: self._hc_state(hc) for hid, hc in self.backend().health_checks.items()},
        }
