"""S3 cross-region replication that actually replicates (moto only stores the config).

After a successful PutObject, CopyObject or CompleteMultipartUpload into a bucket whose
replication configuration has an enabled rule matching the key (by prefix), the new
object version is PENDING (`x-amz-replication-status` on GetObject/HeadObject). After
`s3.replication_delay_seconds` (emulated) the version is copied to each destination
bucket, keeping its version id, metadata and body: the source becomes COMPLETED and the
destination copy REPLICA. A missing destination bucket, or one without versioning
enabled, makes it FAILED. Replication waits while it is paused
(`/_drpilot/s3/replication`) or while S3 in the source or destination Region is
blackholed (the whole Region, or a blackhole whose `services` lists `s3`); what waits is the backlog, visible in the control API and as the CloudWatch metrics
OperationsPendingReplication / BytesPendingReplication (namespace AWS/S3).

Not modelled: tag-based rule filters (a rule with only a tag filter matches nothing),
delete-marker replication, replica modification sync, Replication Time Control events.
"""

from __future__ import annotations

import time
from typing import Any

from moto.s3.models import s3_backends

from .base import Extension, parse_arn


def versioning_root(headers: list, body: bytes) -> tuple[list, bytes]:
    """S3 answers GetBucketVersioning with a `VersioningConfiguration` root element (the
    S3 API reference's response syntax; `@xmlName` in AWS's Smithy model, which botocore
    does not carry because it ignores the root name). moto 5.2.5 writes
    `GetBucketVersioningResponse`, which clients that check the root (the Rust SDK)
    reject."""
    fixed = body.replace(b"GetBucketVersioningResponse", b"VersioningConfiguration")
    if fixed == body:
        return headers, body
    headers = [(k, str(len(fixed)) if k.lower() == "content-length" else v) for k, v in headers]
    return headers, fixed


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule matches, or None when it can't match (tag filters)."""
    if "Filter" in rule:
        f = rule.get("Filter")
        if not f:
            return ""
        if "Prefix" in f:
            return f.get("Prefix") or ""
        if "And" in f:
            a = f.get("And") or {}
            if a.get("Tag"):
                return None
            return a.get("Prefix") or ""
        if "Tag" in f:
            return None
        return ""
    return rule.get("Prefix") or ""


class S3Extension(Extension):
    name = "s3"
    service = "s3"
    after_ops = frozenset(
        {"PutObject", "CopyObject", "CompleteMultipartUpload", "GetObject", "HeadObject", "GetBucketVersioning"}
    )

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        self.reset()

    def reset(self) -> None:
        self.paused = False
        self.status: dict[tuple[str, str, str], str] = {}
        self.jobs: list[dict[str, Any]] = []
        # (source, destination, rule id) -> [(wall time, operations pending, bytes pending)]
        self.backlog_history: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
        self.completed = 0
        self.failed = 0

    def backend(self) -> Any:
        return s3_backends[self.account_id]["aws"]

    # ------------------------------------------------------------------ moto hooks
    def after(self, ctx: Any, environ: dict, status: int, headers: list, body: bytes) -> tuple[int, list, bytes]:
        if status >= 300:
            return status, headers, body
        if ctx.operation == "GetBucketVersioning":
            return status, *versioning_root(headers, body)
        bucket = ctx.uri_params.get("Bucket")
        key = ctx.uri_params.get("Key")
        if not bucket or not key:
            return status, headers, body
        version = next((v for k, v in headers if k.lower() == "x-amz-version-id"), None)
        if ctx.operation in ("GetObject", "HeadObject"):
            if version is None:
                version = (ctx.query.get("versionId") or ["null"])[0]
            state = self.status.get((bucket, key, version))
            if state:
                headers = headers + [("x-amz-replication-status", state)]
            return status, headers, body
        if version is None or version == "null":
            return status, headers, body
        self._enqueue(bucket, key, version)
        return status, headers, body

    def _enqueue(self, bucket_name: str, key: str, version: str) -> None:
        if self.status.get((bucket_name, key, version)) == "REPLICA":
            return
        backend = self.backend()
        try:
            bucket = backend.get_bucket(bucket_name)
        except Exception:
            return
        config = getattr(bucket, "replication", None)
        if not config:
            return
        by_dest: dict[str, dict[str, Any]] = {}
        for rule in _as_list(config.get("Rule")):
            if (rule.get("Status") or "") != "Enabled":
                continue
            prefix = rule_prefix(rule)
            if prefix is None or not key.startswith(prefix):
                continue
            dest = (rule.get("Destination") or {}).get("Bucket") or ""
            arn = parse_arn(dest)
            dest_bucket = arn["resource"] if arn else dest
            prio = int(rule.get("Priority") or 0)
            if dest_bucket not in by_dest or prio > int(by_dest[dest_bucket].get("Priority") or 0):
                by_dest[dest_bucket] = rule
        if not by_dest:
            return
        obj = backend.get_object(bucket_name, key, version_id=version)
        size = obj.size if obj is not None else 0
        delay = float(self.emu.cfg("s3", "replication_delay_seconds"))
        self.status[(bucket_name, key, version)] = "PENDING"
        for dest_bucket, rule in by_dest.items():
            job = {
                "source": bucket_name,
                "destination": dest_bucket,
                "rule_id": rule.get("ID") or "",
                "storage_class": (rule.get("Destination") or {}).get("StorageClass"),
                "key": key,
                "version_id": version,
                "bytes": size,
                "queued_at": time.time(),
                "due": self.emu.now() + delay,
            }
            self.jobs.append(job)
            self._note_backlog(job)

    def _note_backlog(self, job: dict[str, Any]) -> None:
        ident = (job["source"], job["destination"], job["rule_id"])
        pending = [j for j in self.jobs if (j["source"], j["destination"], j["rule_id"]) == ident]
        self.backlog_history.setdefault(ident, []).append(
            (time.time(), float(len(pending)), float(sum(j["bytes"] for j in pending)))
        )

    # ------------------------------------------------------------------ replication
    def poll(self) -> None:
        if self.paused or not self.jobs:
            return
        now = self.emu.now()
        backend = self.backend()
        for job in list(self.jobs):
            if job["due"] > now:
                continue
            try:
                src_bucket = backend.get_bucket(job["source"])
            except Exception:
                src_bucket = None
            dest_bucket = backend.buckets.get(job["destination"])
            regions = [getattr(b, "region_name", None) for b in (src_bucket, dest_bucket) if b is not None]
            # S3 replicates from the source Region's S3 into the destination Region's
            # S3: it waits while S3 is down in either (the Region blackholed as a
            # whole or for `s3`), not for other services' outages there.
            if any(self.emu.faults.service_impaired(r, "s3") for r in regions):
                continue
            self.jobs.remove(job)
            self._note_backlog(job)
            self._replicate(job, backend, src_bucket, dest_bucket)

    def _replicate(self, job: dict[str, Any], backend: Any, src_bucket: Any, dest_bucket: Any) -> None:
        skey = (job["source"], job["key"], job["version_id"])
        obj = backend.get_object(job["source"], job["key"], version_id=job["version_id"]) if src_bucket else None
        if obj is None:
            self.status.pop(skey, None)
            return
        if dest_bucket is None or not dest_bucket.is_versioned:
            self.status[skey] = "FAILED"
            self.failed += 1
            return
        new = backend.put_object(
            job["destination"],
            job["key"],
            obj.value,
            storage=job["storage_class"] or obj.storage_class,
            disable_notification=True,
        )
        new.set_metadata(dict(obj.metadata), replace=True)
        new._version_id = obj.version_id
        new.last_modified = obj.last_modified
        self.status[(job["destination"], job["key"], obj.version_id)] = "REPLICA"
        if self.status.get(skey) != "FAILED":
            still = [j for j in self.jobs if (j["source"], j["key"], j["version_id"]) == skey]
            if not still:
                self.status[skey] = "COMPLETED"
        self.completed += 1

    # ------------------------------------------------------------------ metrics
    def backlog_series(self, source: str, destination: str, rule_id: str, metric: str) -> tuple[list[tuple[float, float]], float] | None:
        ident = (source, destination, rule_id)
        if ident not in self.backlog_history:
            try:
                bucket = self.backend().get_bucket(source)
            except Exception:
                return None
            rules = _as_list((getattr(bucket, "replication", None) or {}).get("Rule"))
            if not any((r.get("ID") or "") == rule_id for r in rules):
                return None
            return [], 0.0
        index = 1 if metric == "OperationsPendingReplication" else 2
        return [(entry[0], entry[index]) for entry in self.backlog_history[ident]], 0.0

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/s3/replication", lambda body: self._locked(self.state)),
            ("POST", "/s3/replication", self._post),
        ]

    def _locked(self, fn: Any) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return fn()

    def _post(self, body: Any) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("paused"), bool):
            raise ValueError('body must be {"paused": true|false}')
        with self.emu.lock:
            self.paused = body["paused"]
            self.emu.tick()
            return self.state()

    def state(self) -> dict[str, Any]:
        backlog: dict[tuple[str, str, str], dict[str, Any]] = {}
        for j in self.jobs:
            ident = (j["source"], j["destination"], j["rule_id"])
            b = backlog.setdefault(
                ident, {"source": ident[0], "destination": ident[1], "rule_id": ident[2], "operations": 0, "bytes": 0}
            )
            b["operations"] += 1
            b["bytes"] += j["bytes"]
        return {
            "paused": self.paused,
            "backlog": list(backlog.values()),
            "pending": [{k: j[k] for k in ("source", "destination", "key", "version_id", "bytes")} for j in self.jobs],
            "completed": self.completed,
            "failed": self.failed,
        }
