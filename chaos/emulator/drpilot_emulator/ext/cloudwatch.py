"""The CloudWatch GetMetricData slice for metrics AWS publishes and moto can't know:

- AWS/RDS AuroraGlobalDBRPOLag and AuroraGlobalDBReplicationLag (milliseconds), for a
  secondary cluster of a global database, dimension DBClusterIdentifier (SourceRegion
  may also be given), answered in the secondary cluster's Region; values come from
  `/_drpilot/rds/lag` (default `rds.default_lag_ms`). A cluster publishes the metrics
  `/_drpilot/rds/clusters/{id}/metrics` says (both by default), and none for the time
  RDS in its primary's Region or in its own is down: the datapoints from before the
  outage stay and age, the ones of the outage never come.
- AWS/RDS ServerlessDatabaseCapacity (ACUs), dimension DBClusterIdentifier, for an Aurora
  Serverless v2 cluster (a capacity range and a db.serverless instance), in its Region:
  what `/_drpilot/rds/capacity` set (its MinCapacity until then); none for the time RDS in
  its Region is down.
- AWS/S3 OperationsPendingReplication and BytesPendingReplication, dimensions
  SourceBucket, DestinationBucket and RuleId, answered in the source bucket's Region.
- AWS/Route53 HealthCheckStatus (1 healthy, 0 unhealthy), dimension HealthCheckId, for
  a health check of the Route 53 extension: the status it reports (Inverted and
  Disabled applied, after `route53.health_check_delay_seconds`), answered in us-east-1
  only, where Route 53 publishes its metrics (another Region has no datapoints). None
  is published for the time us-east-1 is down as a whole (blackholed without
  `services`), nor after DeleteHealthCheck; the datapoints from before stay and age.

Datapoints are aligned to the query's Period, up to now, with the statistic computed
over the time-weighted series (Average, Maximum, Minimum, Sum, SampleCount; pNN is
answered with the Maximum) of the time the metric was published; a period with none of
it has no datapoint. `cloudwatch.time_skip_seconds` makes everything recorded that much
older. Every other query, and every other CloudWatch operation,
is moto's. Served over both protocols moto speaks: awsQuery and awsJson1.0 (what boto3
1.44 sends; it does not send smithy-rpc-v2-cbor, and neither does moto understand it).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from .base import Extension
from .rds import CAPACITY_METRIC, LAG_METRICS

RDS_METRICS = set(LAG_METRICS)
S3_METRICS = {"OperationsPendingReplication", "BytesPendingReplication"}
# Route 53 publishes its CloudWatch metrics in this Region only.
ROUTE53_METRICS_REGION = "us-east-1"

# (changes [(wall time, new value)], value before the first change, when the series
# starts, gaps [(since, until)] in which it was not published)
Series = tuple[list[tuple[float, float]], float, float, list[tuple[float, float]]]


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value)
    try:
        return float(text)
    except ValueError:
        pass
    text = text.replace("Z", "+00:00")
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _published(lo: float, hi: float, gaps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of [lo, hi) outside every gap."""
    pieces = [(lo, hi)]
    for g_lo, g_hi in gaps:
        rest = []
        for a, b in pieces:
            if g_hi <= a or g_lo >= b:
                rest.append((a, b))
                continue
            if a < g_lo:
                rest.append((a, g_lo))
            if g_hi < b:
                rest.append((g_hi, b))
        pieces = rest
    return pieces


def _segments(changes: list[tuple[float, float]], initial: float, lo: float, hi: float) -> list[tuple[float, float]]:
    """[(duration, value)] of the series over [lo, hi)."""
    value = initial
    for ts, v in changes:
        if ts <= lo:
            value = v
    segments: list[tuple[float, float]] = []
    cursor, current = lo, value
    for ts, v in changes:
        if lo < ts < hi:
            segments.append((ts - cursor, current))
            cursor, current = ts, v
    segments.append((hi - cursor, current))
    return segments


def aggregate(
    changes: list[tuple[float, float]],
    initial: float,
    series_start: float,
    start: float,
    end: float,
    period: int,
    stat: str,
    gaps: list[tuple[float, float]] | None = None,
) -> list[tuple[float, float]]:
    """[(bucket start, value)], newest first. `changes` are (time, new value); `gaps`
    are (since, until) spans in which the metric was not published: a bucket's statistic
    covers only its published time, and a bucket without any has no datapoint."""
    now = time.time()
    end = min(end, now)
    first = max(start, series_start)
    if end <= first or period <= 0:
        return []
    bucket = (int(first) // period) * period
    out = []
    while bucket < end:
        lo, hi = max(bucket, first), min(bucket + period, end)
        pieces = _published(lo, hi, gaps or []) if hi > lo else []
        if pieces:
            segments = [seg for a, b in pieces for seg in _segments(changes, initial, a, b)]
            values = [v for _, v in segments]
            total = sum(d for d, _ in segments) or 1.0
            average = sum(d * v for d, v in segments) / total
            samples = max(1, period // 60)
            if stat == "Average":
                result = average
            elif stat == "Minimum":
                result = min(values)
            elif stat == "Sum":
                result = average * samples
            elif stat == "SampleCount":
                result = float(samples)
            else:  # Maximum, pNN, tmNN, ...
                result = max(values)
            out.append((float(bucket), result))
        bucket += period
    out.reverse()
    return out


class DrCloudWatchResponse(CloudWatchResponse):
    ext: "CloudWatchExtension"

    def get_metric_data(self) -> ActionResult:
        params = self._get_params()
        queries = params.get("MetricDataQueries", []) or []
        mine: dict[int, Series] = {}
        for i, q in enumerate(queries):
            ms = q.get("MetricStat")
            if ms:
                found = self.ext.series(self.region, ms.get("Metric") or {})
                if found is not None:
                    mine[i] = found
        if not mine:
            return super().get_metric_data()
        start, end = _epoch(params["StartTime"]), _epoch(params["EndTime"])
        scan_by = params.get("ScanBy") or "TimestampDescending"
        rest = [q for i, q in enumerate(queries) if i not in mine]
        moto_results = iter(
            self.cloudwatch_backend.get_metric_data(
                start_time=params["StartTime"], end_time=params["EndTime"], queries=rest, scan_by=scan_by
            )
            if rest
            else []
        )
        results = []
        for i, q in enumerate(queries):
            if i not in mine:
                results.append(next(moto_results))
                continue
            changes, initial, series_start, gaps = mine[i]
            ms = q["MetricStat"]
            points = aggregate(
                changes, initial, series_start, start, end, int(ms.get("Period") or 60), ms.get("Stat") or "Average", gaps
            )
            if scan_by == "TimestampAscending":
                points.reverse()
            if q.get("ReturnData") is False:
                continue
            label = q.get("Label") or f"{ms['Metric'].get('MetricName')}"
            results.append(
                {
                    "Id": q.get("Id"),
                    "Label": label,
                    "Timestamps": [datetime.datetime.fromtimestamp(t, datetime.timezone.utc) for t, _ in points],
                    "Values": [v for _, v in points],
                    "StatusCode": "Complete",
                }
            )
        return ActionResult({"MetricDataResults": results, "Messages": []})


class CloudWatchExtension(Extension):
    name = "cloudwatch"
    service = "monitoring"
    ops = frozenset({"GetMetricData"})
    response_class = DrCloudWatchResponse

    def __init__(self, emu: Any, rds: Any, s3: Any, route53: Any) -> None:
        super().__init__(emu)
        DrCloudWatchResponse.ext = self
        self.rds = rds
        self.s3 = s3
        self.route53 = route53

    def reset(self) -> None:
        pass

    def series(self, region: str, metric: dict[str, Any]) -> Series | None:
        """The recorded series of a metric the extensions publish, moved back by
        `cloudwatch.time_skip_seconds`; None for any other metric (moto's)."""
        found = self._series(region, metric)
        skip = float(self.emu.cfg("cloudwatch", "time_skip_seconds"))
        if found is None or not skip:
            return found
        changes, initial, series_start, gaps = found
        return (
            [(ts - skip, v) for ts, v in changes],
            initial,
            series_start - skip,
            [(lo - skip, hi - skip) for lo, hi in gaps],
        )

    def _series(self, region: str, metric: dict[str, Any]) -> Series | None:
        namespace, name = metric.get("Namespace"), metric.get("MetricName")
        dims = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
        if namespace == "AWS/RDS" and name in RDS_METRICS:
            cid = dims.get("DBClusterIdentifier")
            if not cid or set(dims) - {"DBClusterIdentifier", "SourceRegion"}:
                return None
            cluster = self.rds.cluster_by_id(region, cid)
            if cluster is None or not self.rds.is_secondary(cluster):
                return None
            arn = cluster.db_cluster_arn
            initial = float(self.emu.cfg("rds", "default_lag_ms"))
            created = cluster.created
            if created.tzinfo is None:
                created = created.replace(tzinfo=datetime.timezone.utc)
            if name not in self.rds.published_lag_metrics(arn):
                gaps = [(float("-inf"), float("inf"))]  # never published
            else:
                gaps = self.rds.lag_gaps(cluster)
            return list(self.rds.lag_history.get(arn, [])), initial, created.timestamp(), gaps
        if namespace == "AWS/RDS" and name == CAPACITY_METRIC:
            cid = dims.get("DBClusterIdentifier")
            if not cid or set(dims) != {"DBClusterIdentifier"}:
                return None
            cluster = self.rds.cluster_by_id(region, cid)
            if cluster is None or not self.rds.is_serverless(cluster):
                return None
            return self.rds.capacity_series(cluster)
        if namespace == "AWS/S3" and name in S3_METRICS:
            if set(dims) != {"SourceBucket", "DestinationBucket", "RuleId"}:
                return None
            try:
                bucket = self.s3.backend().get_bucket(dims["SourceBucket"])
            except Exception:
                return None
            if bucket.region_name != region:
                return None
            found = self.s3.backlog_series(dims["SourceBucket"], dims["DestinationBucket"], dims["RuleId"], name)
            if found is None:
                return None
            changes, initial = found
            created = bucket.creation_date
            if created.tzinfo is None:
                created = created.replace(tzinfo=datetime.timezone.utc)
            return changes, initial, created.timestamp(), []
        if namespace == "AWS/Route53" and name == "HealthCheckStatus":
            if set(dims) != {"HealthCheckId"} or region != ROUTE53_METRICS_REGION:
                return None
            found = self.route53.metric_series(dims["HealthCheckId"])
            if found is None:
                return None
            changes, initial, created, deleted = found
            # Stopped while us-east-1 is down as a whole; a one-service blackhole there
            # (route53's control plane, monitoring) leaves the health checkers and the
            # publishing alone. A deleted health check publishes no more.
            gaps = self.emu.faults.dark_intervals(ROUTE53_METRICS_REGION, None)
            if deleted is not None:
                gaps = [*gaps, (deleted, float("inf"))]
            return changes, initial, created, gaps
        return None
