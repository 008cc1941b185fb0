"""Aurora global databases: what moto 5.2.5 lacks or gets wrong.

Served here (botocore model rds 2014-10-31):
- FailoverGlobalCluster: AllowDataLoss=true is an unplanned failover; without it (or with
  Switchover=true) it is a switchover. Errors: GlobalClusterNotFoundFault (404),
  DBClusterNotFoundFault (404), InvalidGlobalClusterStateFault (400),
  InvalidDBClusterStateFault (400), InvalidParameterCombination (400).
- SwitchoverGlobalCluster, which needs every member on the same major and minor engine
  version (patch levels may differ: Aurora user guide, switchovers of global databases).
- RemoveFromGlobalCluster for members in any Region (moto only looks in the Region that
  received the call, and global clusters live in its us-east-1 backend, so elsewhere it
  silently does nothing).
- DescribeGlobalClusters with GlobalClusterIdentifier (moto ignores it), the `region`
  filter, Marker/MaxRecords, and FailoverState.
- ModifyDBCluster's ServerlessV2ScalingConfiguration (moto stores any numbers, takes no
  ARN as DBClusterIdentifier and answers an unknown cluster with HTTP 500): MinCapacity
  and MaxCapacity in half-step increments, MinCapacity 0 to 256, MaxCapacity 1 to 256
  (InvalidParameterValue); MinCapacity above MaxCapacity, or 0 (auto-pause) for a member
  of a global database (InvalidParameterCombination); the cluster `available`
  (InvalidDBClusterStateFault); a cluster ARN in another Region, or an unknown cluster,
  DBClusterNotFoundFault (404). A new range shows at once and the cluster is `modifying`
  for `rds.modify_seconds`, then `available`. Other ModifyDBCluster parameters stay moto's.
- DescribeDBInstances' `db-cluster-id` filter with cluster ARNs (the model: "Accepts DB
  cluster identifiers and DB cluster Amazon Resource Names"; moto matches identifiers
  only).
- CopyDBClusterSnapshot's TargetDBClusterSnapshotIdentifier constraints (moto takes any
  string): 1 to 63 letters, numbers, or hyphens; a letter first; no hyphen at the end
  and no two in a row (InvalidParameterValue, 400). The parameter isn't case-sensitive
  and AWS stores it in lowercase, so the copy is kept under its lowercase identifier.

The capacity an Aurora Serverless v2 cluster runs at (`ServerlessDatabaseCapacity`,
answered by `cloudwatch.py`): set with `/_drpilot/rds/capacity`, published for a cluster
with a ServerlessV2ScalingConfiguration and a `db.serverless` instance, none while RDS in
its Region is down.

The replication lag a secondary publishes to CloudWatch (answered by `cloudwatch.py`):
its value (`/_drpilot/rds/lag`), which of the two lag metrics the cluster publishes
(`/_drpilot/rds/clusters/{id}/metrics`), and when it published none (`lag_gaps`: while
RDS in its primary's Region or in its own was down).

Everything else (CreateGlobalCluster, CreateDBCluster, DescribeDBClusters, snapshots,
...) stays moto's; we change moto's objects in place so its describes agree with us.
"""

from __future__ import annotations

import datetime
import itertools
import time
from typing import Any

from moto.core.responses import ActionResult
from moto.rds import models as rds_models
from moto.rds.models import DBCluster, GlobalCluster, rds_backends
from moto.rds.responses import RDSResponse

from .base import Extension, HttpError, aws_error, parse_arn, utcnow

SECONDARY_FLAG = "_drpilot_secondary"

# The replication-lag metrics of a secondary (AWS/RDS, milliseconds, dimension
# DBClusterIdentifier). Aurora PostgreSQL publishes both; Aurora MySQL versions without
# RPO lag only the second.
RPO_LAG = "AuroraGlobalDBRPOLag"
REPLICATION_LAG = "AuroraGlobalDBReplicationLag"
LAG_METRICS = (RPO_LAG, REPLICATION_LAG)
# What an Aurora Serverless v2 cluster runs at, in ACUs (AWS/RDS, dimension
# DBClusterIdentifier).
CAPACITY_METRIC = "ServerlessDatabaseCapacity"
# "The --db-instance-class parameter for Aurora Serverless v2 is always db.serverless"
# (Aurora user guide).
SERVERLESS_CLASS = "db.serverless"
# MaxCapacity: "The largest value that you can use is 256 for recent Aurora versions"
# (ServerlessV2ScalingConfiguration); and it "must be higher than 0.5 ACUs"
# (CloudFormation, AWS::RDS::DBCluster ServerlessV2ScalingConfiguration).
LARGEST_ACU = 256.0
SMALLEST_MAX_ACU = 1.0


# --------------------------------------------------------------------------- moto patches
def _global_cluster_members(self: GlobalCluster) -> list[dict[str, Any]]:
    ext = RdsExtension.instance
    writers = [m for m in self.members if m.is_writer]
    readers = [m.db_cluster_arn for m in self.members if not m.is_writer]
    out = []
    for member in self.members:
        entry: dict[str, Any] = {
            "DBClusterArn": member.db_cluster_arn,
            "IsWriter": bool(member.is_writer),
            "Readers": readers if member.is_writer else [],
        }
        if not member.is_writer:
            entry["GlobalWriteForwardingStatus"] = "disabled"
        sync = ext.sync_status.get(member.db_cluster_arn) if ext else None
        if sync:
            entry["SynchronizationStatus"] = sync
        elif writers or not member.is_writer:
            entry["SynchronizationStatus"] = "connected"
        out.append(entry)
    return out


_orig_designate_writer = DBCluster.designate_writer


def _designate_writer(self: DBCluster) -> None:
    # A secondary cluster of a global database has no writer instance.
    if getattr(self, SECONDARY_FLAG, False):
        return
    _orig_designate_writer(self)


_orig_create_global_cluster = rds_models.RDSBackend.create_global_cluster


def _create_global_cluster(self: Any, *args: Any, **kwargs: Any) -> GlobalCluster:
    # moto leaves the source cluster's writer flag unset: it is the primary.
    gc = _orig_create_global_cluster(self, *args, **kwargs)
    if len(gc.members) == 1:
        gc.members[0].is_writer = True
        gc.members[0].global_cluster_identifier = gc.global_cluster_identifier
    return gc


rds_models.RDSBackend.create_global_cluster = _create_global_cluster  # type: ignore[method-assign]

_orig_create_db_cluster = rds_models.RDSBackend.create_db_cluster


def _create_db_cluster(self: Any, kwargs: dict[str, Any]) -> DBCluster:
    # moto replaces an existing cluster (then trips over its automated snapshot's name);
    # AWS refuses with DBClusterAlreadyExistsFault.
    cid = kwargs.get("db_cluster_identifier") or ""
    if cid.lower() in self.clusters:
        raise aws_error("DBClusterAlreadyExistsFault", f"DB cluster already exists: {cid}")
    return _orig_create_db_cluster(self, kwargs)


rds_models.RDSBackend.create_db_cluster = _create_db_cluster  # type: ignore[method-assign]
GlobalCluster.global_cluster_members = property(_global_cluster_members)  # type: ignore[assignment]
GlobalCluster.failover_state = None  # type: ignore[attr-defined]
DBCluster.designate_writer = _designate_writer  # type: ignore[method-assign]


# --------------------------------------------------------------------------- responses
def engine_major_minor(version: str) -> list[str]:
    """The part of an engine version members must share: major and minor ("16.4" of
    "16.4.2"; "8.0.mysql_aurora.3.04" of "8.0.mysql_aurora.3.04.1"). Patch levels may differ."""
    parts = version.split(".")
    if "mysql_aurora" in parts:
        return parts[: parts.index("mysql_aurora") + 3]
    return parts[:2]


def valid_cluster_snapshot_identifier(ident: str) -> bool:
    """CreateDBClusterSnapshot / CopyDBClusterSnapshot identifier constraints (rds 2014-10-31)."""
    return (
        1 <= len(ident) <= 63
        and all(c.isascii() and (c.isalnum() or c == "-") for c in ident)
        and ident[0].isascii()
        and ident[0].isalpha()
        and not ident.endswith("-")
        and "--" not in ident
    )


class DrRDSResponse(RDSResponse):
    ext: "RdsExtension"

    def failover_global_cluster(self) -> ActionResult:
        allow = self._get_param("AllowDataLoss")
        switchover = self._get_param("Switchover")
        if allow and switchover:
            raise aws_error(
                "InvalidParameterCombination",
                "Cannot specify both AllowDataLoss and Switchover parameters",
            )
        gc = self.ext.start(
            self._get_param("GlobalClusterIdentifier"),
            self._get_param("TargetDbClusterIdentifier"),
            request_region=self.region,
            unplanned=bool(allow),
        )
        return ActionResult({"GlobalCluster": gc})

    def switchover_global_cluster(self) -> ActionResult:
        gc = self.ext.start(
            self._get_param("GlobalClusterIdentifier"),
            self._get_param("TargetDbClusterIdentifier"),
            request_region=self.region,
            unplanned=False,
        )
        return ActionResult({"GlobalCluster": gc})

    def remove_from_global_cluster(self) -> ActionResult:
        gc = self.ext.detach(
            self._get_param("GlobalClusterIdentifier"),
            self._get_param("DbClusterIdentifier"),
            request_region=self.region,
        )
        return ActionResult({"GlobalCluster": gc})

    def copy_db_cluster_snapshot(self) -> ActionResult:
        target = self._get_param("TargetDBClusterSnapshotIdentifier") or ""
        if not valid_cluster_snapshot_identifier(target):
            raise aws_error(
                "InvalidParameterValue",
                f"The parameter TargetDBClusterSnapshotIdentifier is not a valid identifier: "
                f"{target!r}. Identifiers must contain from 1 to 63 letters, numbers, or "
                "hyphens; begin with a letter; and must not end with a hyphen or contain two "
                "consecutive hyphens.",
            )
        params = dict(self.params)
        params["TargetDBClusterSnapshotIdentifier"] = target.lower()
        snapshot = self.backend.copy_db_cluster_snapshot(**params)
        return ActionResult({"DBClusterSnapshot": snapshot})

    def modify_db_cluster(self) -> ActionResult:
        scaling = self._get_param("ServerlessV2ScalingConfiguration")
        if scaling is None:
            return super().modify_db_cluster()
        cluster = self.ext.find_cluster(self._get_param("DBClusterIdentifier"), self.region)
        if cluster.region != self.region:
            raise aws_error("DBClusterNotFoundFault", f"DBCluster {self._get_param('DBClusterIdentifier')} not found.")
        new = self.ext.check_scaling(cluster, scaling)
        # moto takes an identifier, not an ARN.
        self.params["DBClusterIdentifier"] = cluster.db_cluster_identifier
        self.params["ServerlessV2ScalingConfiguration"] = new
        old = self.ext.scaling_of(cluster)
        self.backend.modify_db_cluster(self.params)
        self.ext.modified(cluster, old, new)
        return ActionResult({"DBCluster": cluster})

    def describe_db_instances(self) -> ActionResult:
        filters = self._get_param("Filters") or []
        if any(f.get("Name") == "db-cluster-id" for f in filters):
            self.params["Filters"] = [
                {
                    "Name": f.get("Name"),
                    "Values": [self.ext.cluster_id_of(v, self.region) for v in f.get("Values") or []]
                    if f.get("Name") == "db-cluster-id"
                    else list(f.get("Values") or []),
                }
                for f in filters
            ]
        return super().describe_db_instances()

    def describe_global_clusters(self) -> ActionResult:
        clusters = self.ext.describe(
            self._get_param("GlobalClusterIdentifier"),
            self._get_param("Filters") or [],
        )
        max_records = self._get_param("MaxRecords") or 100
        if not 20 <= int(max_records) <= 100:
            raise aws_error("InvalidParameterValue", "MaxRecords must be between 20 and 100")
        start = int(self._get_param("Marker") or 0)
        page = clusters[start : start + int(max_records)]
        result: dict[str, Any] = {"GlobalClusters": page}
        if start + int(max_records) < len(clusters):
            result["Marker"] = str(start + int(max_records))
        return ActionResult(result)


# --------------------------------------------------------------------------- extension
class RdsExtension(Extension):
    name = "rds"
    service = "rds"
    ops = frozenset(
        {
            "FailoverGlobalCluster",
            "SwitchoverGlobalCluster",
            "RemoveFromGlobalCluster",
            "DescribeGlobalClusters",
            "CopyDBClusterSnapshot",
            "ModifyDBCluster",
            "DescribeDBInstances",
        }
    )
    after_ops = frozenset({"CreateDBCluster", "CreateDBInstance"})
    response_class = DrRDSResponse
    instance: "RdsExtension | None" = None

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrRDSResponse.ext = self
        RdsExtension.instance = self
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.operations: dict[str, dict[str, Any]] = {}  # global id -> in-progress op
        self.lag_history: dict[str, list[tuple[float, float]]] = {}  # cluster arn -> [(wall, ms)]
        # cluster arn -> the lag metrics it publishes, when not both (LAG_METRICS).
        self.lag_metrics: dict[str, list[str]] = {}
        self.sync_status: dict[str, str] = {}
        self.pending_rebuilds: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        # cluster arn -> [(wall, ACUs)]: what ServerlessDatabaseCapacity reads.
        self.capacity_history: dict[str, list[tuple[float, float]]] = {}
        # Every accepted change of a capacity range, in order.
        self.capacity_changes: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ lookups
    def backend(self, region: str) -> Any:
        return rds_backends[self.account_id][region]

    def global_clusters(self) -> dict[str, GlobalCluster]:
        return self.backend("us-east-1").global_clusters

    def find_global(self, identifier: str | None) -> GlobalCluster:
        if identifier:
            gc = self.global_clusters().get(identifier.lower())
            if gc is not None:
                return gc
            for gc in self.global_clusters().values():
                if gc.global_cluster_arn == identifier:
                    return gc
        raise aws_error("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")

    def find_cluster(self, identifier: str | None, request_region: str) -> DBCluster:
        if not identifier:
            raise aws_error("DBClusterNotFoundFault", "DBCluster None not found.")
        region, cid = request_region, identifier
        arn = parse_arn(identifier)
        if arn:
            if arn["service"] != "rds" or not arn["resource"].startswith("cluster:"):
                raise aws_error("InvalidParameterValue", f"Malformed DB cluster ARN: {identifier}")
            region, cid = arn["region"], arn["resource"].split(":", 1)[1]
            if arn["account"] != self.account_id:
                raise aws_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.")
        try:
            cluster = self.backend(region).clusters.get(cid.lower())
        except KeyError:
            cluster = None
        if cluster is None:
            raise aws_error("DBClusterNotFoundFault", f"DBCluster {identifier} not found.")
        return cluster

    @staticmethod
    def writer_of(gc: GlobalCluster) -> DBCluster | None:
        return next((m for m in gc.members if m.is_writer), None)

    def impaired(self, region: str) -> bool:
        """Whether RDS in `region` is down: the Region is blackholed as a whole or for
        the `rds` service. Only RDS's own outage matters to a global database (its
        storage-level replication and failover are RDS's; an S3 or CloudWatch outage in
        the Region leaves the clusters reachable)."""
        return self.emu.faults.service_impaired(region, "rds")

    # ------------------------------------------------------------------ lag
    def lag_ms(self, arn: str, at: float | None = None) -> float:
        history = self.lag_history.get(arn)
        default = float(self.emu.cfg("rds", "default_lag_ms"))
        if not history:
            return default
        if at is None:
            return history[-1][1]
        value = default
        for ts, ms in history:
            if ts <= at:
                value = ms
            else:
                break
        return value

    def set_lag(self, arn: str, ms: float) -> None:
        self.lag_history.setdefault(arn, []).append((time.time(), float(ms)))

    def lag_points(self, arn: str, start: float, end: float) -> list[tuple[float, float]]:
        """[(wall, ms)] changes affecting [start, end]: the value at start, then changes."""
        out = [(start, self.lag_ms(arn, start))]
        for ts, ms in self.lag_history.get(arn, []):
            if start < ts <= end:
                out.append((ts, ms))
        return out

    def published_lag_metrics(self, arn: str) -> list[str]:
        """The lag metrics a cluster publishes while it is a secondary."""
        return list(self.lag_metrics.get(arn, LAG_METRICS))

    def lag_gaps(self, cluster: DBCluster) -> list[tuple[float, float]]:
        """[(since, until)] on the wall clock during which the secondary `cluster`
        published no lag datapoint: while RDS in its primary's Region, or in its own,
        was down. Nothing reaches the secondary to measure, or the secondary is gone."""
        regions = {cluster.region}
        for gc in self.global_clusters().values():
            if cluster in gc.members:
                writer = self.writer_of(gc)
                if writer is not None:
                    regions.add(writer.region)
        gaps: list[tuple[float, float]] = []
        for region in sorted(regions):
            gaps.extend(self.emu.faults.dark_intervals(region, "rds"))
        return sorted(gaps)

    def is_secondary(self, cluster: DBCluster) -> bool:
        for gc in self.global_clusters().values():
            if cluster in gc.members:
                return not cluster.is_writer
        return False

    def cluster_by_id(self, region: str, cid: str) -> DBCluster | None:
        try:
            return self.backend(region).clusters.get(cid.lower())
        except KeyError:
            return None

    # ------------------------------------------------------------------ serverless v2
    def in_global_cluster(self, cluster: DBCluster) -> str | None:
        for gc in self.global_clusters().values():
            if cluster in gc.members:
                return gc.global_cluster_identifier
        return None

    @staticmethod
    def scaling_of(cluster: DBCluster) -> dict[str, float] | None:
        config = getattr(cluster, "serverless_v2_scaling_configuration", None) or {}
        lo, hi = config.get("MinCapacity"), config.get("MaxCapacity")
        if lo is None or hi is None:
            return None
        return {"MinCapacity": float(lo), "MaxCapacity": float(hi)}

    def is_serverless(self, cluster: DBCluster) -> bool:
        """A ServerlessV2ScalingConfiguration and at least one db.serverless instance."""
        return self.scaling_of(cluster) is not None and any(
            getattr(i, "db_instance_class", None) == SERVERLESS_CLASS for i in cluster._members
        )

    def check_scaling(self, cluster: DBCluster, scaling: Any) -> dict[str, float]:
        """The range a ModifyDBCluster asks for, checked as AWS checks it (a bound not
        given keeps the cluster's); raises the AWS error otherwise."""
        current = self.scaling_of(cluster) or {}
        out: dict[str, float] = {}
        for key, lowest in (("MinCapacity", 0.0), ("MaxCapacity", SMALLEST_MAX_ACU)):
            value = scaling.get(key)
            if value is None:
                value = current.get(key)
            if value is None:
                raise aws_error(
                    "InvalidParameterCombination",
                    f"ServerlessV2ScalingConfiguration needs {key} for a cluster that has no capacity range.",
                )
            value = float(value)
            if value * 2 != int(value * 2) or not lowest <= value <= LARGEST_ACU:
                raise aws_error(
                    "InvalidParameterValue",
                    f"The {key} {value:g} isn't valid: specify ACUs from {lowest:g} to {LARGEST_ACU:g} "
                    "in half-step increments.",
                )
            out[key] = value
        if out["MinCapacity"] > out["MaxCapacity"]:
            raise aws_error(
                "InvalidParameterCombination",
                f"The MinCapacity {out['MinCapacity']:g} must be less than or equal to the MaxCapacity "
                f"{out['MaxCapacity']:g}.",
            )
        gid = self.in_global_cluster(cluster)
        if out["MinCapacity"] == 0 and gid is not None:
            raise aws_error(
                "InvalidParameterCombination",
                f"DB cluster {cluster.db_cluster_identifier} is a member of global cluster {gid}: the "
                "auto-pause feature (a MinCapacity of 0 ACUs) isn't available for Aurora global databases.",
            )
        if cluster.status != "available":
            raise aws_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster.db_cluster_identifier} is in {cluster.status} state.",
            )
        seconds = scaling.get("SecondsUntilAutoPause")
        if seconds is not None:
            out["SecondsUntilAutoPause"] = int(seconds)
        return out

    def modified(self, cluster: DBCluster, old: dict[str, float] | None, new: dict[str, float]) -> None:
        """A capacity range was accepted: `modifying` for `rds.modify_seconds`."""
        self.capacity_changes.append(
            {
                "cluster": cluster.db_cluster_arn,
                "from": old,
                "to": {k: new[k] for k in ("MinCapacity", "MaxCapacity")},
                "at": time.time(),
            }
        )
        if old is not None and all(old[k] == new[k] for k in ("MinCapacity", "MaxCapacity")):
            return
        change = len(self.capacity_changes)
        cluster.status = "modifying"

        def done() -> None:
            # Only the latest change of this cluster ends its `modifying`.
            latest = max(
                (i for i, c in enumerate(self.capacity_changes, 1) if c["cluster"] == cluster.db_cluster_arn),
                default=0,
            )
            if cluster.status == "modifying" and latest == change:
                cluster.status = "available"

        self.emu.after(float(self.emu.cfg("rds", "modify_seconds")), done)

    def cluster_id_of(self, value: str, request_region: str) -> str:
        """A db-cluster-id filter value as moto matches it: the identifier of a cluster
        ARN in this Region and account (any other value as it is)."""
        arn = parse_arn(value)
        if not arn or arn["service"] != "rds" or not arn["resource"].startswith("cluster:"):
            return value
        if arn["region"] != request_region or arn["account"] != self.account_id:
            return value
        return arn["resource"].split(":", 1)[1]

    def set_capacity(self, arn: str, acu: float) -> None:
        self.capacity_history.setdefault(arn, []).append((time.time(), float(acu)))

    def capacity_series(self, cluster: DBCluster) -> tuple[list[tuple[float, float]], float, float, list[tuple[float, float]]]:
        """(changes, initial, series start, gaps) of ServerlessDatabaseCapacity: as set with
        `/_drpilot/rds/capacity` (the cluster's MinCapacity until then), unpublished while
        RDS in its Region is down."""
        arn = cluster.db_cluster_arn
        scaling = self.scaling_of(cluster) or {"MinCapacity": 0.5}
        created = cluster.created
        if created.tzinfo is None:
            created = created.replace(tzinfo=datetime.timezone.utc)
        gaps = self.emu.faults.dark_intervals(cluster.region, "rds")
        return list(self.capacity_history.get(arn, [])), scaling["MinCapacity"], created.timestamp(), gaps

    # ------------------------------------------------------------------ operations
    def start(self, gid: str, target_id: str, request_region: str, unplanned: bool) -> GlobalCluster:
        gc = self.find_global(gid)
        target = self.find_cluster(target_id, request_region)
        if target not in gc.members:
            raise aws_error(
                "DBClusterNotFoundFault",
                f"The DB cluster {target.db_cluster_arn} is not a member of global cluster {gc.global_cluster_identifier}.",
            )
        if gc.global_cluster_identifier in self.operations or gc.status != "available":
            raise aws_error(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {gc.global_cluster_identifier} is in {gc.status} state; "
                "a switchover or failover is already in progress.",
            )
        primary = self.writer_of(gc)
        if target.is_writer or primary is None:
            raise aws_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {target.db_cluster_arn} is already the primary cluster of global cluster "
                f"{gc.global_cluster_identifier}.",
            )
        if target.status != "available":
            raise aws_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {target.db_cluster_identifier} is in {target.status} state, not available.",
            )
        if not target._members:
            raise aws_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {target.db_cluster_identifier} has no DB instances; the promoted cluster needs one.",
            )
        enforce = self.emu.cfg("rds", "enforce_call_region")
        if unplanned:
            if self.impaired(target.region):
                raise aws_error(
                    "InvalidDBClusterStateFault",
                    f"DB cluster {target.db_cluster_identifier} is unreachable: its Region {target.region} is impaired.",
                )
            if enforce and request_region != target.region:
                raise aws_error(
                    "InvalidParameterValue",
                    f"FailoverGlobalCluster with AllowDataLoss must be called in the target cluster's "
                    f"Region ({target.region}), not {request_region}.",
                )
        else:
            if enforce and request_region != primary.region:
                raise aws_error(
                    "InvalidParameterValue",
                    f"A switchover must be called in the primary cluster's Region ({primary.region}), "
                    f"not {request_region}.",
                )
            unhealthy = [
                m.db_cluster_arn
                for m in gc.members
                if self.impaired(m.region)
                or m.status != "available"
                or self.sync_status.get(m.db_cluster_arn, "connected") != "connected"
            ]
            if unhealthy:
                raise aws_error(
                    "InvalidGlobalClusterStateFault",
                    f"A switchover of global cluster {gc.global_cluster_identifier} needs every member "
                    f"available and synchronized; not healthy: {', '.join(unhealthy)}.",
                )
            apart = [
                f"{m.db_cluster_identifier} runs {m.engine_version}"
                for m in gc.members
                if engine_major_minor(m.engine_version) != engine_major_minor(target.engine_version)
            ]
            if apart:
                raise aws_error(
                    "InvalidGlobalClusterStateFault",
                    f"A switchover to {target.db_cluster_identifier} ({target.engine_version}) needs every "
                    f"member on the same major and minor engine version: {', '.join(apart)}.",
                )

        phase = "failing-over" if unplanned else "switching-over"
        op = {
            "id": next(self._ids),
            "global_cluster": gc.global_cluster_identifier,
            "kind": "failover" if unplanned else "switchover",
            "from": primary.db_cluster_arn,
            "to": target.db_cluster_arn,
            "data_loss_allowed": unplanned,
            "lag_ms_at_start": self.lag_ms(target.db_cluster_arn) if unplanned else 0.0,
            "requested_in": request_region,
            "started_at": time.time(),
            "prior_status": {primary.db_cluster_arn: primary.status, target.db_cluster_arn: target.status},
        }
        self.operations[gc.global_cluster_identifier] = op
        gc.status = phase
        gc.failover_state = {  # type: ignore[attr-defined]
            "Status": "pending",
            "FromDbClusterArn": primary.db_cluster_arn,
            "ToDbClusterArn": target.db_cluster_arn,
            "IsDataLossAllowed": unplanned,
        }
        target.status = phase
        if not self.impaired(primary.region):
            primary.status = phase
        pending = float(self.emu.cfg("rds", "pending_seconds"))
        duration = float(self.emu.cfg("rds", "failover_seconds" if unplanned else "switchover_seconds"))

        def to_phase() -> None:
            if self.operations.get(gc.global_cluster_identifier) is op and gc.failover_state:
                gc.failover_state["Status"] = phase  # type: ignore[index]

        self.emu.after(pending, to_phase)
        self.emu.after(pending + duration, lambda: self._complete(gc, op))
        return gc

    def _complete(self, gc: GlobalCluster, op: dict[str, Any]) -> None:
        if self.operations.get(gc.global_cluster_identifier) is not op:
            return
        del self.operations[gc.global_cluster_identifier]
        old = self.find_cluster(op["from"], "us-east-1")
        new = self.find_cluster(op["to"], "us-east-1")
        old.is_writer = False
        new.is_writer = True
        setattr(new, SECONDARY_FLAG, False)
        setattr(old, SECONDARY_FLAG, True)
        for inst in old._members:
            inst.is_cluster_writer = False
        new.designate_writer()
        gc.status = "available"
        gc.failover_state = None  # type: ignore[attr-defined]
        new.status = "available"
        # The new primary has no replication lag; the old primary starts as a secondary.
        self.lag_history.pop(new.db_cluster_arn, None)
        self.sync_status.pop(new.db_cluster_arn, None)
        record = {
            "global_cluster": gc.global_cluster_identifier,
            "kind": op["kind"],
            "from": op["from"],
            "to": op["to"],
            "started_at": op["started_at"],
            "finished_at": time.time(),
            "data_loss_window_ms": op["lag_ms_at_start"],
        }
        if op["data_loss_allowed"]:
            rebuild = {"cluster_arn": old.db_cluster_arn, "region": old.region, "cluster_id": old.db_cluster_identifier}
            self.sync_status[old.db_cluster_arn] = "pending-resync"
            if self.impaired(old.region):
                self.pending_rebuilds.append(rebuild)
            else:
                self._rebuild(rebuild)
        else:
            old.status = "available"
            self.sync_status.pop(old.db_cluster_arn, None)
        self.history.append(record)

    def _rebuild(self, rebuild: dict[str, Any]) -> None:
        """The old primary's Region is reachable: keep its unreplicated writes in an
        automated `rds:unplanned-global-failover-*` snapshot and rejoin it as a secondary."""
        cluster = self.cluster_by_id(rebuild["region"], rebuild["cluster_id"])
        if cluster is None:
            return
        stamp = utcnow().strftime("%Y-%m-%d-%H-%M")
        snap_id = f"rds:unplanned-global-failover-{cluster.db_cluster_identifier}-{stamp}"
        backend = self.backend(rebuild["region"])
        if snap_id in backend.cluster_snapshots:
            snap_id = f"{snap_id}-{len(backend.cluster_snapshots)}"
        backend.create_auto_cluster_snapshot(cluster.db_cluster_identifier, snap_id)
        rebuild["snapshot"] = snap_id
        cluster.status = "available"
        self.sync_status[cluster.db_cluster_arn] = "connected"
        for record in reversed(self.history):
            if record["from"] == cluster.db_cluster_arn and record["kind"] == "failover":
                record.setdefault("snapshot", snap_id)
                break

    def poll(self) -> None:
        if not self.pending_rebuilds:
            return
        remaining = []
        for rebuild in self.pending_rebuilds:
            if self.impaired(rebuild["region"]):
                remaining.append(rebuild)
            else:
                self._rebuild(rebuild)
        self.pending_rebuilds = remaining

    def cancel(self, gid: str) -> dict[str, Any]:
        gc = self.find_global(gid)
        op = self.operations.get(gc.global_cluster_identifier)
        if op is None or op.get("cancelling"):
            raise ValueError(f"no switchover or failover in progress on {gc.global_cluster_identifier}")
        op["cancelling"] = True
        if gc.failover_state:
            gc.failover_state["Status"] = "cancelling"  # type: ignore[index]

        def done() -> None:
            if self.operations.get(gc.global_cluster_identifier) is not op:
                return
            del self.operations[gc.global_cluster_identifier]
            for arn, status in op["prior_status"].items():
                cluster = self.find_cluster(arn, "us-east-1")
                cluster.status = status
            gc.status = "available"
            gc.failover_state = None  # type: ignore[attr-defined]
            self.history.append({**{k: op[k] for k in ("global_cluster", "kind", "from", "to")}, "cancelled": True})

        self.emu.after(float(self.emu.cfg("rds", "cancel_seconds")), done)
        return {"global_cluster": gc.global_cluster_identifier, "status": "cancelling"}

    def detach(self, gid: str, cluster_id: str, request_region: str) -> GlobalCluster:
        gc = self.find_global(gid)
        cluster = self.find_cluster(cluster_id, request_region)
        if cluster not in gc.members:
            raise aws_error(
                "DBClusterNotFoundFault",
                f"The DB cluster {cluster.db_cluster_arn} is not a member of global cluster {gc.global_cluster_identifier}.",
            )
        if gc.global_cluster_identifier in self.operations:
            raise aws_error(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {gc.global_cluster_identifier} is in {gc.status} state.",
            )
        if cluster.is_writer and len(gc.members) > 1:
            raise aws_error(
                "InvalidGlobalClusterStateFault",
                f"The primary cluster {cluster.db_cluster_arn} can't be removed from global cluster "
                f"{gc.global_cluster_identifier} while it has secondary clusters.",
            )
        if cluster.status not in ("available", "failing-over", "inaccessible"):
            raise aws_error(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster.db_cluster_identifier} is in {cluster.status} state.",
            )
        gc.members.remove(cluster)
        cluster.global_cluster_identifier = None
        was_secondary = not cluster.is_writer
        cluster.is_writer = False
        setattr(cluster, SECONDARY_FLAG, False)
        self.lag_history.pop(cluster.db_cluster_arn, None)
        self.sync_status.pop(cluster.db_cluster_arn, None)
        self.history.append({"global_cluster": gc.global_cluster_identifier, "kind": "detach", "cluster": cluster.db_cluster_arn})
        if was_secondary:
            cluster.status = "promoting"

            def done() -> None:
                if cluster.status == "promoting":
                    cluster.status = "available"
                cluster.designate_writer()

            self.emu.after(float(self.emu.cfg("rds", "detach_seconds")), done)
        return gc

    def describe(self, gid: str | None, filters: list[dict[str, Any]]) -> list[GlobalCluster]:
        clusters = list(self.global_clusters().values())
        if gid:
            clusters = [self.find_global(gid)]
        for f in filters:
            name, values = f.get("Name"), f.get("Values") or []
            if name != "region":
                raise aws_error("InvalidParameterValue", f"Unrecognized filter name: {name}. Supported filters: region")
            clusters = [gc for gc in clusters if any(m.region in values for m in gc.members)]
        return clusters

    # ------------------------------------------------------------------ moto hooks
    def after(self, ctx: Any, environ: dict, status: int, headers: list, body: bytes) -> tuple[int, list, bytes]:
        if status >= 300:
            return status, headers, body
        if ctx.operation == "CreateDBCluster":
            for gc in self.global_clusters().values():
                for member in gc.members:
                    if not member.is_writer and not getattr(member, SECONDARY_FLAG, False):
                        setattr(member, SECONDARY_FLAG, True)
                        for inst in member._members:
                            inst.is_cluster_writer = False
        elif ctx.operation == "CreateDBInstance":
            for gc in self.global_clusters().values():
                for member in gc.members:
                    if getattr(member, SECONDARY_FLAG, False):
                        for inst in member._members:
                            inst.is_cluster_writer = False
        return status, headers, body

    # ------------------------------------------------------------------ control API
    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/rds", lambda body: self._locked(self.state)),
            ("GET", "/rds/lag", lambda body: self._locked(self.lag_state)),
            ("POST", "/rds/lag", self._post_lag),
            ("POST", "/rds/global-clusters/(?P<gid>[^/]+)/cancel", lambda body, gid: self._locked(lambda: self.cancel(gid))),
            ("POST", "/rds/clusters/(?P<cid>.+)/status", self._post_status),
            ("POST", "/rds/capacity", self._post_capacity),
            ("GET", "/rds/clusters/(?P<cid>.+)/metrics", self._get_metrics),
            ("POST", "/rds/clusters/(?P<cid>.+)/metrics", self._post_metrics),
        ]

    def _locked(self, fn: Any) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return fn()

    def _resolve(self, ident: str) -> DBCluster:
        arn = parse_arn(ident)
        if arn:
            return self.find_cluster(ident, arn["region"])
        for gc in self.global_clusters().values():
            for member in gc.members:
                if member.db_cluster_identifier == ident.lower():
                    return member
        for region in list(rds_backends[self.account_id].keys()):
            cluster = self.cluster_by_id(region, ident)
            if cluster is not None:
                return cluster
        raise KeyError(f"no DB cluster {ident}")

    def _post_lag(self, body: Any) -> Any:
        if not isinstance(body, dict) or "cluster" not in body or "lag_ms" not in body:
            raise ValueError('body must be {"cluster": "<id or ARN>", "lag_ms": <number>}')
        with self.emu.lock:
            try:
                cluster = self._resolve(body["cluster"])
            except Exception as e:
                raise KeyError(str(e))
            self.set_lag(cluster.db_cluster_arn, float(body["lag_ms"]))
            return self.lag_state()

    def _post_capacity(self, body: Any) -> Any:
        usage = 'body must be {"cluster": "<id or ARN>", "acu": <number from 0 to 256>}'
        if not isinstance(body, dict) or "cluster" not in body or not isinstance(body.get("acu"), (int, float)):
            raise ValueError(usage)
        if not 0 <= float(body["acu"]) <= LARGEST_ACU:
            raise ValueError(usage)
        with self.emu.lock:
            cluster = self._cluster_or_404(body["cluster"])
            self.set_capacity(cluster.db_cluster_arn, float(body["acu"]))
            return {"cluster": cluster.db_cluster_arn, "acu": float(body["acu"])}

    def _post_status(self, body: Any, cid: str) -> Any:
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise ValueError('body must be {"status": "<DB cluster status>"}')
        with self.emu.lock:
            cluster = self._resolve(cid)
            cluster.status = body["status"]
            return {"cluster": cluster.db_cluster_arn, "status": body["status"]}

    def _cluster_or_404(self, cid: str) -> DBCluster:
        try:
            return self._resolve(cid)
        except Exception:
            raise HttpError(404, f"no DB cluster {cid}")

    def _get_metrics(self, body: Any, cid: str) -> Any:
        with self.emu.lock:
            cluster = self._cluster_or_404(cid)
            arn = cluster.db_cluster_arn
            return {"cluster": arn, "metrics": self.published_lag_metrics(arn)}

    def _post_metrics(self, body: Any, cid: str) -> Any:
        usage = f'body must be {{"metrics": a non-empty list of {" and ".join(LAG_METRICS)}, or null for both}}'
        if not isinstance(body, dict) or "metrics" not in body:
            raise ValueError(usage)
        metrics = body["metrics"]
        if metrics is not None:
            if not isinstance(metrics, list) or not metrics or any(m not in LAG_METRICS for m in metrics):
                raise ValueError(usage)
            metrics = [m for m in LAG_METRICS if m in metrics]
        with self.emu.lock:
            cluster = self._cluster_or_404(cid)
            arn = cluster.db_cluster_arn
            if metrics is None or len(metrics) == len(LAG_METRICS):
                self.lag_metrics.pop(arn, None)
            else:
                self.lag_metrics[arn] = metrics
            return {"cluster": arn, "metrics": self.published_lag_metrics(arn)}

    def lag_state(self) -> dict[str, Any]:
        out = {}
        for gc in self.global_clusters().values():
            for m in gc.members:
                if not m.is_writer:
                    out[m.db_cluster_arn] = self.lag_ms(m.db_cluster_arn)
        return {"lag_ms": out}

    def serverless_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for region, backend in rds_backends[self.account_id].items():
            try:
                clusters = list(backend.clusters.values())
            except Exception:
                continue
            for c in clusters:
                history = self.capacity_history.get(c.db_cluster_arn)
                scaling = self.scaling_of(c)
                out[c.db_cluster_arn] = {
                    "status": c.status,
                    "scaling": scaling,
                    "instance_classes": sorted({getattr(i, "db_instance_class", "") for i in c._members}),
                    "capacity": history[-1][1] if history else (scaling or {}).get("MinCapacity"),
                }
        return out

    def state(self) -> dict[str, Any]:
        return {
            "operations": {k: {kk: vv for kk, vv in v.items() if kk != "prior_status"} for k, v in self.operations.items()},
            "lag_ms": self.lag_state()["lag_ms"],
            "lag_metrics": {arn: list(m) for arn, m in self.lag_metrics.items()},
            "sync_status": dict(self.sync_status),
            "pending_rebuilds": list(self.pending_rebuilds),
            "history": list(self.history),
            # Every cluster's capacity range as DescribeDBClusters answers it, its
            # instances' classes and the capacity it runs at.
            "serverless": self.serverless_state(),
            "capacity_changes": list(self.capacity_changes),
            # Where each global writer endpoint points: the writer's cluster endpoint.
            "global_endpoints": {
                gid: {
                    "endpoint": gc.endpoint,
                    "points_to": next((m.endpoint for m in gc.members if m.is_writer), None),
                }
                for gid, gc in self.global_clusters().items()
            },
        }


# Keep a reference so tools can find the patched model module.
PATCHED_MODULE = rds_models
