"""The fault layer: throttling, 5xx, added latency and Region blackholes.

Rules match on service (SigV4 signing name; `cloudwatch` is accepted for `monitoring`),
operation and Region, each defaulting to `*`. A rule fires with probability `rate`
(drawn from the emulator's seeded RNG, so a chaos run is reproducible) and at most
`count` times when `count` is set.

Error bodies are the ones AWS sends, per wire protocol:
- awsQuery (RDS, ElastiCache, CloudWatch over query): HTTP 400
  `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>...`
- awsJson1.0 with awsQueryCompatible (CloudWatch as boto3 sends it): HTTP 400,
  `{"__type": "Throttling", ...}` plus `x-amzn-query-error: Throttling;Sender`
- Smithy RPC v2 CBOR (CloudWatch from newer SDKs): the same, CBOR-encoded
- ECS (awsJson1.1): HTTP 400 `{"__type": "ThrottlingException", ...}`; Auto Scaling is
  awsQuery (`Throttling`)
- Route 53 (restXml): HTTP 400 `<ErrorResponse>...<Code>Throttling</Code>` (the code can
  be changed to ThrottlingException or PriorRequestNotComplete per rule)
- S3 (restXml): HTTP 503 `<Error><Code>SlowDown</Code>...`
- Route 53 ARC data plane (`route53-recovery-cluster`, plain awsJson1.0): HTTP 429
  `{"__type": "com.amazonaws.route53recoverycluster#ThrottlingException", ...}`; 5xx are
  InternalServerException (500) and EndpointTemporarilyUnavailableException (503), the
  statuses of the service's Smithy model (botocore's JSON model leaves them out)
- Route 53 ARC control plane (`route53-recovery-control-config`, restJson1): HTTP 429
  `x-amzn-ErrorType: ThrottlingException` with `{"message": ...}`; 500
  InternalServerException (the model's), 503 ServiceUnavailableException

A `drop_response` rule lets the request through to the service (its effect is applied)
and then withholds the response: the connection is reset or held and closed (`mode`,
as for blackholes).

A blackhole takes a Region down for every service, or, with `services`, only for the
listed signing names (a one-service outage: S3 down, RDS up). The extensions ask
`service_impaired(region, service)` about the service they model, and
`dark_intervals(region, service)` about when it was down (wall clock): an outage's
history outlives it, as metrics published before, during and after it do.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from typing import Any
from xml.sax.saxutils import escape

SERVICE_ALIASES = {"cloudwatch": "monitoring"}

QUERY_NAMESPACES = {
    "rds": "http://rds.amazonaws.com/doc/2014-10-31/",
    "elasticache": "http://elasticache.amazonaws.com/doc/2015-02-02/",
    "monitoring": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "ec2": "http://ec2.amazonaws.com/doc/2016-11-15/",
    "autoscaling": "http://autoscaling.amazonaws.com/doc/2011-01-01/",
}

KINDS = ("throttle", "error", "latency", "drop_response")

# Plain (Smithy) awsJson services: the namespace of their error shape ids.
JSON_ERROR_NAMESPACES = {"route53-recovery-cluster": "com.amazonaws.route53recoverycluster"}
# Throttling as each service sends it: (HTTP status, code). Default: 400 Throttling.
THROTTLING = {
    "s3": (503, "SlowDown"),
    "route53-recovery-cluster": (429, "ThrottlingException"),
    "route53-recovery-control-config": (429, "ThrottlingException"),
    # ECS (awsJson1.1) throttles with ThrottlingException (HTTP 400).
    "ecs": (400, "ThrottlingException"),
}
# awsJson services on JSON 1.1 (the others here are 1.0).
JSON_11_SERVICES = {"ecs"}
# 5xx codes of services that model their own: {service: {status: code}, "*" for others}.
SERVER_ERRORS = {
    "route53-recovery-cluster": {503: "EndpointTemporarilyUnavailableException", "*": "InternalServerException"},
    "route53-recovery-control-config": {503: "ServiceUnavailableException", "*": "InternalServerException"},
}


# The signing names a blackhole's `services` may list: the services the emulator serves
# and the fault rules document, plus STS and IAM (the request handler reads the SigV4
# scope of every request, whatever its service). Aliases (`cloudwatch`) are accepted too.
BLACKHOLE_SERVICES = (
    "rds",
    "elasticache",
    "s3",
    "route53",
    "monitoring",
    "route53-recovery-cluster",
    "route53-recovery-control-config",
    "sts",
    "iam",
    "ecs",
    "autoscaling",
)


def canonical_service(name: str) -> str:
    name = (name or "*").lower()
    return SERVICE_ALIASES.get(name, name)


class FaultLayer:
    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.rules: list[dict[str, Any]] = []
        self.blackholes: dict[str, dict[str, Any]] = {}
        # Region -> [{"since", "until" (None while it lasts), "services"}], in order, on
        # the wall clock: every blackhole that was in force, for the metrics' history.
        self.outages: dict[str, list[dict[str, Any]]] = {}

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.blackholes.clear()
            self.outages.clear()

    # ------------------------------------------------------------------ rules
    def add_rule(self, spec: dict[str, Any]) -> dict[str, Any]:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        rule: dict[str, Any] = {
            "kind": kind,
            "service": canonical_service(spec.get("service", "*")),
            "operation": spec.get("operation", "*") or "*",
            "region": spec.get("region", "*") or "*",
            "rate": float(spec.get("rate", 1.0)),
            "count": spec.get("count"),
            "fired": 0,
        }
        if not 0.0 <= rule["rate"] <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if rule["count"] is not None:
            rule["count"] = int(rule["count"])
        if kind == "error":
            status = int(spec.get("status", 500))
            if status < 500 or status > 599:
                raise ValueError("status of an error rule must be 5xx")
            rule["status"] = status
            if spec.get("code"):
                rule["code"] = str(spec["code"])
        elif kind == "throttle":
            if spec.get("code"):
                rule["code"] = str(spec["code"])
        elif kind == "latency":
            ms = spec.get("latency_ms")
            if ms is None or float(ms) < 0:
                raise ValueError("a latency rule needs latency_ms >= 0")
            rule["latency_ms"] = float(ms)
        elif kind == "drop_response":
            mode = spec.get("mode", "hold")
            if mode not in ("hold", "reset"):
                raise ValueError("mode must be hold or reset")
            rule["mode"] = mode
            if spec.get("hold_seconds") is not None:
                if float(spec["hold_seconds"]) < 0:
                    raise ValueError("hold_seconds must be >= 0")
                rule["hold_seconds"] = float(spec["hold_seconds"])
        with self._lock:
            rule["id"] = str(next(self._ids))
            self.rules.append(rule)
        return rule

    def remove_rule(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self.rules)
            self.rules = [r for r in self.rules if r["id"] != rule_id]
            return len(self.rules) != before

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    @staticmethod
    def _matches(rule: dict[str, Any], service: str, operation: str | None, region: str | None) -> bool:
        if rule["service"] != "*" and rule["service"] != service:
            return False
        if rule["operation"] != "*" and rule["operation"] != operation:
            return False
        if rule["region"] != "*" and rule["region"] != region:
            return False
        return True

    def decide(
        self, service: str, operation: str | None, region: str | None
    ) -> tuple[float, dict[str, Any] | None, dict[str, Any] | None]:
        """(added latency in emulated seconds, the failing rule or None, the
        drop_response rule or None). A drop_response rule only fires (and counts) when
        no throttle/error rule failed the request: only a request that reaches the
        service can lose its response."""
        latency = 0.0
        failing = None
        drop = None
        with self._lock:
            for rule in self.rules:
                if rule["kind"] == "drop_response":
                    continue
                if rule["count"] is not None and rule["fired"] >= rule["count"]:
                    continue
                if not self._matches(rule, service, operation, region):
                    continue
                if rule["kind"] != "latency" and failing is not None:
                    continue
                if rule["rate"] < 1.0 and self.emu.rng.random() >= rule["rate"]:
                    continue
                rule["fired"] += 1
                if rule["kind"] == "latency":
                    latency += rule["latency_ms"] / 1000.0
                else:
                    failing = rule
            if failing is None:
                for rule in self.rules:
                    if rule["kind"] != "drop_response":
                        continue
                    if rule["count"] is not None and rule["fired"] >= rule["count"]:
                        continue
                    if not self._matches(rule, service, operation, region):
                        continue
                    if rule["rate"] < 1.0 and self.emu.rng.random() >= rule["rate"]:
                        continue
                    rule["fired"] += 1
                    drop = dict(rule)
                    break
        return latency, failing, drop

    # ------------------------------------------------------------------ blackhole
    @staticmethod
    def _blackhole_services(services: Any) -> list[str] | None:
        """None (the whole Region) or the canonical signing names, in order, once each."""
        if services is None:
            return None
        known = ", ".join(sorted(set(BLACKHOLE_SERVICES) | set(SERVICE_ALIASES)))
        if not isinstance(services, list) or not services:
            raise ValueError(
                "services must be a non-empty list of service signing names "
                f"({known}), or null for the whole Region"
            )
        out: list[str] = []
        for name in services:
            if not isinstance(name, str) or canonical_service(name) not in BLACKHOLE_SERVICES:
                raise ValueError(f"unknown service {name!r} in services: known are {known}")
            if canonical_service(name) not in out:
                out.append(canonical_service(name))
        return out

    def set_blackhole(
        self, region: str, mode: str = "hold", hold_seconds: float | None = None, services: Any = None
    ) -> dict[str, Any]:
        """One entry per Region: a new one replaces the Region's previous entry.
        `services` None blackholes every request scoped to the Region; a list, only
        those whose signing service is in it."""
        if not isinstance(region, str) or not region:
            raise ValueError("region must be a non-empty string")
        if mode not in ("hold", "reset"):
            raise ValueError("mode must be hold or reset")
        entry: dict[str, Any] = {
            "region": region,
            "mode": mode,
            "services": self._blackhole_services(services),
            "dropped": 0,
        }
        if hold_seconds is not None:
            if isinstance(hold_seconds, bool) or float(hold_seconds) < 0:
                raise ValueError("hold_seconds must be a number >= 0")
            entry["hold_seconds"] = float(hold_seconds)
        with self._lock:
            now = time.time()
            self._end_outage(region, now)
            self.outages.setdefault(region, []).append({"since": now, "until": None, "services": entry["services"]})
            self.blackholes[region] = entry
        return dict(entry)

    def clear_blackhole(self, region: str | None = None) -> None:
        with self._lock:
            now = time.time()
            for r in list(self.blackholes) if region is None else [region]:
                self._end_outage(r, now)
            if region is None:
                self.blackholes.clear()
            else:
                self.blackholes.pop(region, None)

    def _end_outage(self, region: str, now: float) -> None:
        for outage in self.outages.get(region, []):
            if outage["until"] is None:
                outage["until"] = now

    def dark_intervals(self, region: str | None, service: str | None) -> list[tuple[float, float]]:
        """[(since, until)] on the wall clock, oldest first, during which `service` in
        `region` was down (`until` is infinity while it still is); with `service` None,
        only the outages of the whole Region."""
        if not region:
            return []
        with self._lock:
            return [
                (o["since"], float("inf") if o["until"] is None else o["until"])
                for o in self.outages.get(region, [])
                if self._covers(o, service)
            ]

    @staticmethod
    def _covers(entry: dict[str, Any] | None, service: str | None) -> bool:
        if entry is None:
            return False
        if entry["services"] is None:
            return True
        return bool(service) and canonical_service(service) in entry["services"]

    def blackhole_for(self, region: str | None, service: str | None) -> dict[str, Any] | None:
        """The blackhole that swallows a request scoped to (region, service), counted
        in its `dropped`; None when the request goes through."""
        if not region:
            return None
        with self._lock:
            entry = self.blackholes.get(region)
            if self._covers(entry, service):
                entry["dropped"] += 1  # type: ignore[index]
                return dict(entry)  # type: ignore[arg-type]
        return None

    def service_impaired(self, region: str | None, service: str) -> bool:
        """Whether `service` in `region` is down for the extensions: the Region is
        blackholed as a whole, or for that service."""
        if not region:
            return False
        with self._lock:
            return self._covers(self.blackholes.get(region), service)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rules": [dict(r) for r in self.rules],
                "blackholes": [dict(b) for b in self.blackholes.values()],
            }


# ---------------------------------------------------------------------- error bodies
def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(protocol: str, service: str, status: int, code: str, message: str, sender: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    rid = _request_id()
    kind = "Sender" if sender else "Receiver"
    if protocol == "cbor":
        from . import cbor_bridge

        st, headers, body = cbor_bridge.error(status, code, message, sender)
        return st, headers + [("x-amzn-RequestId", rid)], body
    if protocol == "json" and service in JSON_ERROR_NAMESPACES:
        body = json.dumps({"__type": f"{JSON_ERROR_NAMESPACES[service]}#{code}", "message": message}).encode()
        return status, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", rid)], body
    if protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", rid), ("x-amzn-ErrorType", code)]
        return status, headers, body
    if protocol == "json" and service in JSON_11_SERVICES:
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", rid)], body
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", rid),
            ("x-amzn-query-error", f"{code};{kind}"),
        ]
        return status, headers, body
    if service == "s3":
        host_id = uuid.uuid4().hex
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{rid}</RequestId><HostId>{host_id}</HostId></Error>"
        ).encode()
        return status, [("Content-Type", "application/xml"), ("x-amz-request-id", rid), ("x-amz-id-2", host_id)], body
    if service == "route53":
        ns = "https://route53.amazonaws.com/doc/2013-04-01/"
    else:
        ns = QUERY_NAMESPACES.get(service, f"http://{service}.amazonaws.com/doc/")
    body = (
        '<?xml version="1.0"?>\n'
        f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    ).encode()
    return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body


def throttle_response(protocol: str, service: str, code: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    if service == "s3":
        return error_response(protocol, service, 503, code or "SlowDown", "Please reduce your request rate.", True)
    status, default = THROTTLING.get(service, (400, "Throttling"))
    return error_response(protocol, service, status, code or default, "Rate exceeded", True)


def server_error_response(protocol: str, service: str, status: int, code: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    if service in SERVER_ERRORS:
        codes = SERVER_ERRORS[service]
        message = "Service is unavailable. Please try again later." if status == 503 else "Internal server error."
        return error_response(protocol, service, status, code or codes.get(status, codes["*"]), message, False)
    if service == "s3":
        if status == 503:
            return error_response(protocol, service, 503, code or "ServiceUnavailable", "Please reduce your request rate.", False)
        return error_response(protocol, service, status, code or "InternalError", "We encountered an internal error. Please try again.", False)
    if status == 503:
        return error_response(protocol, service, 503, code or "ServiceUnavailable", "Service is unavailable. Please try again later.", False)
    return error_response(
        protocol,
        service,
        status,
        code or "InternalFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
        False,
    )
