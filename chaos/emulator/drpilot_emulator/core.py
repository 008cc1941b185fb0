"""Emulator state shared by the fault layer and the service extensions.

Time: every modelled duration (a failover, a change propagating, a replication delay,
an added latency) is expressed in *emulated seconds* and measured on `Clock`, whose
speed is set over HTTP (`/_drpilot/clock`). At speed 100 a 60 s failover takes 0.6 s of
real time. Timestamps returned to clients (SubmittedAt, CloudWatch datapoints, ...) stay
on the real wall clock; only durations are scaled.

Scheduling is lazy and deterministic: state transitions are registered with a due time
on the emulated clock and applied, in due order, by `Emulator.tick()`, which runs at the
start of every request and from a light background ticker.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import os
import random
import threading
import time
from typing import Any, Callable

DEFAULT_ACCOUNT_ID = "111122223333"

# Emulated-seconds defaults. Realistic orders of magnitude; tests raise the clock speed.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    "rds": {
        # FailoverState.Status "pending" before the operation starts.
        "pending_seconds": 5.0,
        # Unplanned failover (AllowDataLoss): "failing-over" until the writer moves.
        "failover_seconds": 60.0,
        # Switchover (SwitchoverGlobalCluster / FailoverGlobalCluster without
        # AllowDataLoss): "switching-over" until the writer moves.
        "switchover_seconds": 90.0,
        # RemoveFromGlobalCluster: the detached cluster is "promoting".
        "detach_seconds": 30.0,
        # A cancelled operation stays "cancelling" this long.
        "cancel_seconds": 10.0,
        # ModifyDBCluster of a capacity range: the cluster is "modifying" this long.
        "modify_seconds": 5.0,
        # Replication lag (AuroraGlobalDBRPOLag / AuroraGlobalDBReplicationLag) of a
        # secondary nobody set a lag for, in milliseconds.
        "default_lag_ms": 500.0,
        # Reject a switchover not sent to the primary's Region and an AllowDataLoss
        # failover not sent to the target's Region.
        "enforce_call_region": True,
    },
    "elasticache": {
        "create_seconds": 2.0,        # CreateGlobalReplicationGroup: "creating"
        "associate_seconds": 2.0,     # secondary member "associating"
        "failover_seconds": 60.0,     # FailoverGlobalReplicationGroup: "modifying"
        "disassociate_seconds": 30.0, # DisassociateGlobalReplicationGroup: "modifying"
        # FailoverGlobalReplicationGroup while the datastore is not available or a
        # member's Region is down: "refuse" (the API reference's error text for
        # InvalidGlobalReplicationGroupState) or "allow" (the user guide: promotion is
        # allowed "anytime, even if other modifications are in progress"). See the
        # README's ElastiCache section.
        "failover_with_unreachable_members": "refuse",
    },
    "s3": {
        "replication_delay_seconds": 5.0,  # PENDING until the copy lands
    },
    "ecs": {
        # A task a service starts is PENDING (the service's pendingCount) this long,
        # then RUNNING (runningCount): image pull, container start, health checks.
        "task_start_seconds": 45.0,
        # A task a scale-in stops keeps running (draining: stopTimeout, load balancer
        # deregistration) this long, then stops and leaves runningCount.
        "task_drain_seconds": 30.0,
    },
    "autoscaling": {
        # A new instance is `Pending` this long (boot, ECS agent registration), then
        # `InService`.
        "warmup_seconds": 60.0,
        # A scaled-in instance is `Terminating` this long, then gone.
        "drain_seconds": 30.0,
    },
    "route53": {
        "propagation_seconds": 30.0,        # GetChange PENDING before INSYNC
        "health_check_delay_seconds": 0.0,  # a status change shows after this long
        # GetHostedZoneLimit MAX_RRSETS_BY_ZONE Value (AWS's default quota of records
        # per hosted zone).
        "max_rrsets_by_zone": 10000,
    },
    "arc": {
        # Route 53 ARC: CreateCluster (and its default control panel) PENDING, then
        # DEPLOYED.
        "cluster_create_seconds": 2.0,
        # CreateControlPanel / CreateRoutingControl / CreateSafetyRule PENDING.
        "create_seconds": 1.0,
        # A deleted cluster, control panel, routing control or safety rule is
        # PENDING_DELETION this long, then gone.
        "delete_seconds": 1.0,
        # Refuse updates of a safety rule's routing controls for its WaitPeriodMs
        # (emulated) after they changed.
        "enforce_wait_period": True,
    },
    "cloudwatch": {
        # GetMetricData of the metrics the extensions publish answers as if this many
        # more (real) seconds had passed with nothing changing: everything recorded so
        # far (a cluster's creation, lag changes, outages, S3 backlog changes) is that
        # much older. For tests of data that ages, instead of waiting.
        "time_skip_seconds": 0.0,
    },
    "iam": {
        # Authorize every AWS request against its caller's IAM policies (`start
        # --enforce-iam`; see iam_enforce.py and the README's "IAM enforcement").
        "enforce": False,
    },
    "blackhole": {
        # Real (unscaled) seconds a blackholed request is held before the server
        # closes the connection without an answer, unless the client gives up first.
        "hold_seconds": 30.0,
    },
}

# Keys that are counts, with their minimum (a quota's LimitValue is at least 1).
INTEGER_CONFIG: dict[tuple[str, str], int] = {("route53", "max_rrsets_by_zone"): 1}

# Keys that name one of a few readings.
CHOICE_CONFIG: dict[tuple[str, str], tuple[str, ...]] = {
    ("elasticache", "failover_with_unreachable_members"): ("refuse", "allow"),
}


class Clock:
    """Emulated monotonic clock whose speed can change at run time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.speed = 1.0
        self._real0 = time.monotonic()
        self._emu0 = 0.0

    def now(self) -> float:
        with self._lock:
            return self._emu0 + (time.monotonic() - self._real0) * self.speed

    def set_speed(self, speed: float) -> None:
        if not (speed > 0):
            raise ValueError("speed must be > 0")
        with self._lock:
            real = time.monotonic()
            self._emu0 = self._emu0 + (real - self._real0) * self.speed
            self._real0 = real
            self.speed = float(speed)

    def advance(self, emulated: float) -> None:
        """Jump forward: `emulated` more seconds have passed, at once."""
        if not (emulated >= 0):
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._emu0 += float(emulated)

    def real_seconds(self, emulated: float) -> float:
        return emulated / self.speed


class Emulator:
    """Everything the extensions and the fault layer share."""

    def __init__(self, account_id: str | None = None) -> None:
        self.account_id = account_id or os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        # One re-entrant lock serialises request handling and scheduled transitions;
        # moto's backends are plain dicts and our transitions touch several at once.
        self.lock = threading.RLock()
        self.clock = Clock()
        self.seed = 0
        self.rng = random.Random(self.seed)
        self.config: dict[str, dict[str, Any]] = copy.deepcopy(DEFAULT_CONFIG)
        # Config set at start (`--enforce-iam`), which a reset keeps.
        self.start_config: dict[str, dict[str, Any]] = {}
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.extensions: list[Any] = []
        self.faults: Any = None  # set by app
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ config
    def cfg(self, section: str, key: str) -> Any:
        return self.config[section][key]

    def update_config(self, patch: dict[str, Any]) -> dict[str, Any]:
        for section, values in patch.items():
            if section not in self.config or not isinstance(values, dict):
                raise ValueError(f"unknown config section {section!r}")
            for key, value in values.items():
                if key not in self.config[section]:
                    raise ValueError(f"unknown config key {section}.{key}")
                default = DEFAULT_CONFIG[section][key]
                if (section, key) in CHOICE_CONFIG:
                    choices = CHOICE_CONFIG[(section, key)]
                    if value not in choices:
                        raise ValueError(f"{section}.{key} must be one of {', '.join(map(repr, choices))}")
                elif isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise ValueError(f"{section}.{key} must be a boolean")
                elif (section, key) in INTEGER_CONFIG:
                    least = INTEGER_CONFIG[(section, key)]
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < least:
                        raise ValueError(f"{section}.{key} must be an integer >= {least}")
                    value = int(value)
                elif isinstance(default, (int, float)):
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                        raise ValueError(f"{section}.{key} must be a number >= 0")
                    value = float(value)
                self.config[section][key] = value
        return self.config

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        return self.clock.now()

    def after(self, emulated_seconds: float, fn: Callable[[], None]) -> None:
        """Run `fn` (under the lock) once `emulated_seconds` have passed."""
        with self.lock:
            heapq.heappush(self._queue, (self.now() + emulated_seconds, next(self._seq), fn))

    def tick(self) -> None:
        with self.lock:
            now = self.now()
            while self._queue and self._queue[0][0] <= now:
                _, _, fn = heapq.heappop(self._queue)
                fn()
            for ext in self.extensions:
                poll = getattr(ext, "poll", None)
                if poll:
                    poll()

    def start_ticker(self, interval: float = 0.02) -> None:
        if self._ticker:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.tick()
                except Exception:  # pragma: no cover - never kill the ticker
                    import traceback

                    traceback.print_exc()

        self._ticker = threading.Thread(target=run, name="drpilot-ticker", daemon=True)
        self._ticker.start()

    def stop_ticker(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ seed/reset
    def set_seed(self, seed: int) -> None:
        with self.lock:
            self.seed = int(seed)
            self.rng = random.Random(self.seed)

    def reset(self, extensions: bool = True) -> None:
        """Faults, blackholes, config, clock speed and RNG back to their defaults (the
        seed value stays); with `extensions`, also forget every extension's state and
        pending transition (do that together with moto's reset)."""
        with self.lock:
            if extensions:
                self._queue.clear()
                for ext in self.extensions:
                    ext.reset()
            self.config = copy.deepcopy(DEFAULT_CONFIG)
            self.update_config(copy.deepcopy(self.start_config))
            self.rng = random.Random(self.seed)
            if self.faults is not None:
                self.faults.reset()
            self.clock.set_speed(1.0)
