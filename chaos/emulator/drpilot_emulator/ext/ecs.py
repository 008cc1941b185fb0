"""Amazon ECS services over emulated time: moto 5.2.5 sets runningCount to desiredCount
the moment UpdateService is called (and CreateService leaves every task pending forever).

Served here (botocore model ecs 2014-11-13), everything else staying moto's:
- CreateService / UpdateService: a change of `desiredCount` starts or stops tasks over
  emulated time. A task started is PENDING (`pendingCount`) for `ecs.task_start_seconds`,
  then RUNNING (`runningCount`); a scale-in stops pending tasks at once and running ones
  after `ecs.task_drain_seconds` (they count as running while they drain).
- The PRIMARY deployment carries the same counts. Its `rolloutState` follows the API
  reference: "When a service deployment is started, it begins in an IN_PROGRESS state.
  When the service reaches a steady state, the deployment transitions to a COMPLETED
  state." A deployment is started by CreateService, a new task definition or
  `forceNewDeployment`; `desiredCount` alone "doesn't trigger a new service deployment"
  (UpdateService's model), so a scaling change leaves rolloutState as it was.
- `events`: "(service NAME) has started N tasks: (task ID) ...", "(service NAME) has
  stopped N running tasks: (task ID) ...", "(service NAME) has reached a steady
  state." (newest first, as ECS lists them).
- Errors: UpdateService of an unknown service ServiceNotFoundException ("Service not
  found."), of a service that isn't ACTIVE ServiceNotActiveException ("Service was not
  ACTIVE."), an unknown cluster ClusterNotFoundException ("Cluster not found."), a
  negative desiredCount InvalidParameterException; CreateService of a name that is
  ACTIVE already InvalidParameterException ("Creation of service was not idempotent.").
  DescribeServices of an unknown service answers it in `failures` with reason MISSING
  (moto's, kept).
- Clusters' `runningTasksCount` / `pendingTasksCount` / `activeServicesCount` follow
  the services.

Not modelled: the tasks themselves (ListTasks / DescribeTasks do not show them),
replacement of tasks by a new deployment (it completes after `ecs.task_start_seconds`),
placement on container instances, and task failures.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.ecs.models import ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse

from .base import Extension, aws_error, utcnow


def _task_id() -> str:
    return uuid.uuid4().hex


class DrEcsResponse(EC2ContainerServiceResponse):
    ext: "EcsExtension"

    def create_service(self) -> ActionResult:
        desired = self._get_param("desiredCount")
        if desired is not None and int(desired) < 0:
            raise aws_error("InvalidParameterException", f"Invalid desiredCount: {desired}. It must be 0 or greater.")
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster") or "default")
        name = self._get_param("serviceName")
        existing = self.ecs_backend.services.get(f"{cluster.name}:{name}")
        if existing is not None and existing.status != "INACTIVE":
            raise aws_error("InvalidParameterException", "Creation of service was not idempotent.")
        result = super().create_service()
        service = self.ecs_backend.services[f"{cluster.name}:{name}"]
        self.ext.created(self.region, service)
        return result

    def update_service(self) -> ActionResult:
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster") or "default")
        service = backend._get_service(cluster.name, (self._get_param("service") or "").split("/")[-1])
        if service.status != "ACTIVE":
            raise aws_error("ServiceNotActiveException", "Service was not ACTIVE.")
        desired = self._get_param("desiredCount")
        if desired is not None and int(desired) < 0:
            raise aws_error("InvalidParameterException", f"Invalid desiredCount: {desired}. It must be 0 or greater.")
        old_task_definition = service.task_definition
        new_deployment = bool(self._get_param("forceNewDeployment")) or (
            bool(self._get_param("taskDefinition")) and self._get_param("taskDefinition") != old_task_definition
        )
        result = super().update_service()
        self.ext.updated(self.region, service, new_deployment)
        return result

    def describe_services(self) -> ActionResult:
        result = super().describe_services()
        # A missing service's ARN, as its ARN would be: moto leaves the cluster out of
        # the long ARN format (`service/CLUSTER/NAME`, the default since 2021).
        cluster = self.ecs_backend._get_cluster(self._get_param("cluster") or "default")
        if self.ecs_backend.enable_long_arn_for_name(name="serviceLongArnFormat"):
            for f in result.result.get("failures") or []:
                requested = f.get("arn", "")
                prefix = f"arn:aws:ecs:{self.region}:{self.current_account}:service/"
                tail = requested[len(prefix) :] if requested.startswith(prefix) else None
                if tail and "/" not in tail and not any(s == requested for s in self._get_param("services", [])):
                    f["arn"] = f"{prefix}{cluster.name}/{tail}"
        return result

    def delete_service(self) -> ActionResult:
        result = super().delete_service()
        self.ext.deleted(self.region, self._get_param("cluster") or "default", self._get_param("service"))
        return result


class EcsExtension(Extension):
    name = "ecs"
    service = "ecs"
    ops = frozenset({"CreateService", "UpdateService", "DeleteService", "DescribeServices"})
    response_class = DrEcsResponse

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrEcsResponse.ext = self
        self.reset()

    def reset(self) -> None:
        # service ARN -> {"region", "cluster", "service" (moto's object), "tasks": [...],
        # "steady": bool}
        self.tracked: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ helpers
    def backend(self, region: str) -> Any:
        return ecs_backends[self.account_id][region]

    def _entry(self, region: str, service: Any) -> dict[str, Any]:
        entry = self.tracked.get(service.arn)
        if entry is None or entry["service"] is not service:
            entry = {"region": region, "service": service, "tasks": [], "steady": False}
            self.tracked[service.arn] = entry
        return entry

    @staticmethod
    def counts(entry: dict[str, Any]) -> tuple[int, int]:
        """(runningCount, pendingCount): a draining task still runs."""
        running = sum(1 for t in entry["tasks"] if t["state"] in ("RUNNING", "STOPPING"))
        pending = sum(1 for t in entry["tasks"] if t["state"] == "PENDING")
        return running, pending

    @staticmethod
    def _event(service: Any, message: str) -> None:
        service.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
        del service.events[100:]

    def _refresh(self, entry: dict[str, Any]) -> None:
        """Counts onto moto's service, its PRIMARY deployment and its cluster; the steady
        state when reached."""
        service = entry["service"]
        running, pending = self.counts(entry)
        service.running_count = running
        service.pending_count = pending
        settled = (
            service.status == "ACTIVE"
            and running == service.desired_count
            and pending == 0
            and not any(t["state"] == "STOPPING" for t in entry["tasks"])
            and not entry.get("deploying")
        )
        for d in service.deployments:
            if d.get("status") != "PRIMARY":
                continue
            d["desiredCount"] = service.desired_count
            d["runningCount"] = running
            d["pendingCount"] = pending
            d["updatedAt"] = utcnow()
            if settled and d.get("rolloutState") == "IN_PROGRESS":
                d["rolloutState"] = "COMPLETED"
                d["rolloutStateReason"] = f"ECS deployment {d['id']} completed."
        if settled and not entry["steady"]:
            self._event(service, f"(service {service.name}) has reached a steady state.")
        entry["steady"] = settled
        self._refresh_cluster(entry["region"], service.cluster_name)

    def _refresh_cluster(self, region: str, cluster_name: str) -> None:
        backend = self.backend(region)
        cluster = backend.clusters.get(cluster_name)
        if cluster is None:
            return
        services = [s for s in backend.services.values() if s.cluster_name == cluster_name]
        cluster.running_tasks_count = sum(s.running_count for s in services if s.status != "INACTIVE")
        cluster.pending_tasks_count = sum(s.pending_count for s in services if s.status != "INACTIVE")
        cluster.active_services_count = sum(1 for s in services if s.status == "ACTIVE")

    def _reconcile(self, entry: dict[str, Any]) -> None:
        """Start or stop tasks so that the tasks not being stopped are desiredCount."""
        service = entry["service"]
        live = [t for t in entry["tasks"] if t["state"] in ("PENDING", "RUNNING")]
        want = service.desired_count if service.status == "ACTIVE" else 0
        if len(live) < want:
            started = []
            for _ in range(want - len(live)):
                task = {"id": _task_id(), "state": "PENDING"}
                entry["tasks"].append(task)
                started.append(task)
                self.emu.after(float(self.emu.cfg("ecs", "task_start_seconds")), self._starter(entry, task))
            self._event(
                service,
                f"(service {service.name}) has started {len(started)} tasks: "
                + " ".join(f"(task {t['id']})" for t in started)
                + ".",
            )
        elif len(live) > want:
            excess = len(live) - want
            # Tasks not started yet go first (newest first), then running ones.
            victims = [t for t in reversed(live) if t["state"] == "PENDING"][:excess]
            victims += [t for t in reversed(live) if t["state"] == "RUNNING"][: excess - len(victims)]
            stopped_running = []
            for task in victims:
                if task["state"] == "PENDING":
                    entry["tasks"].remove(task)
                else:
                    task["state"] = "STOPPING"
                    stopped_running.append(task)
                    self.emu.after(float(self.emu.cfg("ecs", "task_drain_seconds")), self._stopper(entry, task))
            if stopped_running:
                self._event(
                    service,
                    f"(service {service.name}) has stopped {len(stopped_running)} running tasks: "
                    + " ".join(f"(task {t['id']})" for t in stopped_running)
                    + ".",
                )
        self._refresh(entry)

    def _current(self, entry: dict[str, Any]) -> bool:
        return self.tracked.get(entry["service"].arn) is entry

    def _starter(self, entry: dict[str, Any], task: dict[str, Any]) -> Any:
        def run() -> None:
            if self._current(entry) and task in entry["tasks"] and task["state"] == "PENDING":
                task["state"] = "RUNNING"
                self._refresh(entry)

        return run

    def _stopper(self, entry: dict[str, Any], task: dict[str, Any]) -> Any:
        def run() -> None:
            if self._current(entry) and task in entry["tasks"] and task["state"] == "STOPPING":
                entry["tasks"].remove(task)
                self._refresh(entry)

        return run

    # ------------------------------------------------------------------ operations
    def created(self, region: str, service: Any) -> None:
        self.tracked.pop(service.arn, None)
        entry = self._entry(region, service)
        for d in service.deployments:
            d["rolloutState"] = "IN_PROGRESS"
            d["rolloutStateReason"] = f"ECS deployment {d['id']} in progress."
        self._reconcile(entry)

    def updated(self, region: str, service: Any, new_deployment: bool) -> None:
        entry = self._entry(region, service)
        if new_deployment:
            for d in service.deployments:
                if d.get("status") == "PRIMARY":
                    if d.get("taskDefinition") != service.task_definition:
                        d["taskDefinition"] = service.task_definition
                    d["rolloutState"] = "IN_PROGRESS"
                    d["rolloutStateReason"] = f"ECS deployment {d['id']} in progress."
            entry["deploying"] = True
            entry["steady"] = False

            def deployed() -> None:
                if self._current(entry):
                    entry["deploying"] = False
                    self._refresh(entry)

            self.emu.after(float(self.emu.cfg("ecs", "task_start_seconds")), deployed)
        self._reconcile(entry)

    def deleted(self, region: str, cluster: str, service: str | None) -> None:
        backend = self.backend(region)
        name = (service or "").split("/")[-1]
        cluster_name = cluster.split("/")[-1]
        svc = backend.services.get(f"{cluster_name}:{name}")
        if svc is None:
            return
        entry = self.tracked.get(svc.arn)
        if entry is not None:
            # A deleted service's tasks are stopped (drained as on a scale-in).
            self._reconcile(entry)

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/ecs", lambda body: self._locked_state())]

    def _locked_state(self) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return self.state()

    def state(self) -> dict[str, Any]:
        services = []
        for region, backend in ecs_backends[self.account_id].items():
            try:
                items = list(backend.services.values())
            except Exception:
                continue
            for s in items:
                primary = next((d for d in s.deployments if d.get("status") == "PRIMARY"), None)
                services.append(
                    {
                        "region": region,
                        "cluster": s.cluster_name,
                        "service": s.name,
                        "arn": s.arn,
                        "status": s.status,
                        "desired": s.desired_count,
                        "running": s.running_count,
                        "pending": s.pending_count,
                        "rollout": primary.get("rolloutState") if primary else None,
                    }
                )
        services.sort(key=lambda x: (x["region"], x["cluster"], x["service"]))
        return {"services": services}
