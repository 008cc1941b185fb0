"""ElastiCache (Valkey / Redis OSS) global datastores: all missing from moto 5.2.5.

Served here (botocore model elasticache 2015-02-02):
- CreateGlobalReplicationGroup: the id is the creating Region's prefix, a dash and the
  suffix passed (`ldgnf-acme-sessions` for suffix `acme-sessions` created in us-east-1).
  Prefixes are the ElastiCache User Guide's table ("Using the AWS CLI with global
  datastores"); a Region missing from it gets a stable made-up five-letter prefix.
- CreateReplicationGroup with GlobalReplicationGroupId (a secondary member; the rest is
  moto's CreateReplicationGroup).
- DescribeGlobalReplicationGroups (ShowMemberInfo, Marker/MaxRecords).
- FailoverGlobalReplicationGroup, DisassociateGlobalReplicationGroup: the datastore is
  `modifying` for a configurable time, then member roles switch / the member leaves.
  Whether a failover is accepted while the datastore is not available or a member's
  Region is down follows `elasticache.failover_with_unreachable_members` ("refuse", the
  API reference's reading, or "allow", the user guide's; see the README).
- DeleteGlobalReplicationGroup (RetainPrimaryReplicationGroup must be true, as in AWS).
- Cluster mode where moto differs from AWS (`_rg_init`): more than one shard is cluster
  mode enabled, slots split evenly, availability zones in the group's Region, a
  secondary shaped like its datastore (InvalidParameterCombination when it names
  another node type, shard count or cluster mode).
Errors: GlobalReplicationGroupNotFoundFault (404), InvalidGlobalReplicationGroupState
(400), GlobalReplicationGroupAlreadyExistsFault (400), ReplicationGroupNotFoundFault
(404), InvalidReplicationGroupState (400), InvalidParameterValue (400).
"""

from __future__ import annotations

import hashlib
from typing import Any

from moto.core.responses import ActionResult
from moto.elasticache import models as ec_models
from moto.elasticache.models import ReplicationGroup, elasticache_backends
from moto.elasticache.responses import ElastiCacheResponse

from .base import Extension, aws_error

# Valkey / Redis OSS cluster mode: 16,384 hash slots over the shards.
HASH_SLOTS = 16384

# ElastiCache User Guide, "Using the AWS CLI with global datastores".
# (botocore's model text says us-west-1 is "dsdfu"; the guide's table says "virxk".)
REGION_PREFIXES = {
    "us-east-1": "ldgnf",
    "us-east-2": "fpkhr",
    "us-west-1": "virxk",
    "us-west-2": "sgaui",
    "ca-central-1": "bxodz",
    "ap-south-1": "erpgt",
    "ap-northeast-1": "quwsw",
    "ap-northeast-2": "lfqnh",
    "ap-northeast-3": "nlapn",
    "ap-southeast-1": "vlqxn",
    "ap-southeast-2": "vbgxd",
    "ap-east-1": "knjmp",
    "eu-central-1": "iudkw",
    "eu-west-1": "gxeiz",
    "eu-west-2": "okuqm",
    "eu-west-3": "fgjhi",
    "sa-east-1": "juxlw",
    "cn-north-1": "emvgo",
    "cn-northwest-1": "ckbem",
}


def region_prefix(region: str) -> str:
    if region in REGION_PREFIXES:
        return REGION_PREFIXES[region]
    digest = hashlib.sha256(region.encode()).digest()
    return "".join(chr(ord("a") + b % 26) for b in digest[:5])


def region_short(region: str) -> str:
    parts = region.split("-")
    if len(parts) == 3:
        return f"{parts[0]}{parts[1][0]}{parts[2]}"
    return region.replace("-", "")


def even_slots(shards: int) -> list[str]:
    """The slot ranges ElastiCache gives `shards` shards when none are configured:
    equal ranges, the first ones one slot larger when 16,384 does not divide evenly
    (3 shards: 0-5461, 5462-10922, 10923-16383). moto adds 5,461 per shard whatever
    the count (2 shards: 0-5461, 5462-10922, leaving slots unserved)."""
    base, extra = divmod(HASH_SLOTS, shards)
    out, start = [], 0
    for i in range(shards):
        size = base + (1 if i < extra else 0)
        out.append(f"{start}-{start + size - 1}")
        start += size
    return out


_orig_rg_init = ReplicationGroup.__init__


def _rg_init(self: ReplicationGroup, *args: Any, **kw: Any) -> None:
    """moto's ReplicationGroup, with what it gets wrong about cluster mode and Regions:
    - NumNodeGroups "specifies the number of node groups (shards) for this Valkey or
      Redis OSS (cluster mode enabled) replication group. For Valkey or Redis OSS
      (cluster mode disabled) either omit this parameter or set it to 1" (the API
      reference): more than one shard is cluster mode enabled, as is a
      `*.cluster.on` parameter group; moto enables it only for ClusterMode=enabled.
    - A secondary of a Global Datastore takes what the request leaves out (node type,
      engine and version, cluster mode and shard count) from the datastore: its members
      must match (moto gave it cache.t4g.micro and one shard).
    - Slots split evenly (`even_slots`); availability zones in the group's Region
      (moto writes us-east-1a/b everywhere)."""
    ext = ElastiCacheExtension.instance
    gid = kw.get("global_replication_group_id")
    g = ext.groups.get(gid) if ext is not None and gid else None
    if g is not None:
        for key, value in (
            ("cache_node_type", g["cache_node_type"]),
            ("engine", g["engine"]),
            ("engine_version", g["engine_version"]),
        ):
            if not kw.get(key):
                kw[key] = value
        if not kw.get("num_node_groups") and not kw.get("node_group_configuration"):
            kw["num_node_groups"] = g["shards"]
        if not kw.get("cluster_mode") and g["cluster_enabled"]:
            kw["cluster_mode"] = "enabled"
    shards = kw.get("num_node_groups") or 1
    group = (kw.get("cache_parameter_group_name") or "").lower()
    if not kw.get("cluster_mode") and (shards > 1 or group.endswith(".cluster.on")):
        kw["cluster_mode"] = "enabled"
    _orig_rg_init(self, *args, **kw)
    region = kw.get("region_name") or "us-east-1"
    configured = {c.get("NodeGroupId"): c for c in kw.get("node_group_configuration") or [] if isinstance(c, dict)}
    if self.cluster_enabled:
        for ng, slots in zip(self.node_groups, even_slots(len(self.node_groups))):
            if not (configured.get(ng["node_group_id"]) or {}).get("Slots"):
                ng["slots"] = slots
    if region != "us-east-1":
        for ng in self.node_groups:
            for m in ng.get("node_group_members", []):
                az = m.get("preferred_availability_zone") or ""
                if az.startswith("us-east-1"):
                    m["preferred_availability_zone"] = region + az[len("us-east-1") :]


ReplicationGroup.__init__ = _rg_init  # type: ignore[method-assign]


class DrElastiCacheResponse(ElastiCacheResponse):
    ext: "ElastiCacheExtension"

    def create_global_replication_group(self) -> ActionResult:
        g = self.ext.create(
            self.region,
            self._get_param("GlobalReplicationGroupIdSuffix"),
            self._get_param("PrimaryReplicationGroupId"),
            self._get_param("GlobalReplicationGroupDescription") or "",
        )
        return ActionResult({"GlobalReplicationGroup": self.ext.view(g, members=True)})

    def describe_global_replication_groups(self) -> ActionResult:
        gid = self._get_param("GlobalReplicationGroupId")
        show = bool(self._get_param("ShowMemberInfo"))
        groups = [self.ext.find(gid)] if gid else list(self.ext.groups.values())
        max_records = int(self._get_param("MaxRecords") or 100)
        if not 20 <= max_records <= 100:
            raise aws_error("InvalidParameterValue", "MaxRecords must be between 20 and 100.")
        start = int(self._get_param("Marker") or 0)
        page = groups[start : start + max_records]
        result: dict[str, Any] = {"GlobalReplicationGroups": [self.ext.view(g, members=show) for g in page]}
        if start + max_records < len(groups):
            result["Marker"] = str(start + max_records)
        return ActionResult(result)

    def failover_global_replication_group(self) -> ActionResult:
        g = self.ext.failover(
            self._get_param("GlobalReplicationGroupId"),
            self._get_param("PrimaryRegion"),
            self._get_param("PrimaryReplicationGroupId"),
        )
        return ActionResult({"GlobalReplicationGroup": self.ext.view(g, members=True)})

    def disassociate_global_replication_group(self) -> ActionResult:
        g = self.ext.disassociate(
            self._get_param("GlobalReplicationGroupId"),
            self._get_param("ReplicationGroupId"),
            self._get_param("ReplicationGroupRegion"),
        )
        return ActionResult({"GlobalReplicationGroup": self.ext.view(g, members=True)})

    def delete_global_replication_group(self) -> ActionResult:
        g = self.ext.delete(
            self._get_param("GlobalReplicationGroupId"),
            bool(self._get_param("RetainPrimaryReplicationGroup")),
        )
        return ActionResult({"GlobalReplicationGroup": self.ext.view(g, members=True)})

    def create_replication_group(self) -> ActionResult:
        gid = self._get_param("GlobalReplicationGroupId")
        g = self.ext.check_new_secondary(gid, self.region) if gid else None
        if g is not None:
            self.ext.check_secondary_shape(
                g,
                self._get_param("CacheNodeType"),
                self._get_int_param("NumNodeGroups"),
                self._get_param("ClusterMode"),
            )
        result = super().create_replication_group()
        rg = self.elasticache_backend.replication_groups[self._get_param("ReplicationGroupId")]
        self.ext.fix_endpoints(rg, self.region)
        if g is not None:
            self.ext.add_secondary(g, rg, self.region)
        else:
            rg.global_replication_group_member_role = ""
        return result


class ElastiCacheExtension(Extension):
    name = "elasticache"
    service = "elasticache"
    ops = frozenset(
        {
            "CreateGlobalReplicationGroup",
            "DescribeGlobalReplicationGroups",
            "FailoverGlobalReplicationGroup",
            "DisassociateGlobalReplicationGroup",
            "DeleteGlobalReplicationGroup",
            "CreateReplicationGroup",
        }
    )
    response_class = DrElastiCacheResponse
    instance: "ElastiCacheExtension | None" = None

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrElastiCacheResponse.ext = self
        ElastiCacheExtension.instance = self
        self.reset()

    def reset(self) -> None:
        self.groups: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers
    def backend(self, region: str) -> Any:
        return elasticache_backends[self.account_id][region]

    def find(self, gid: str | None) -> dict[str, Any]:
        g = self.groups.get(gid or "")
        if g is None:
            raise aws_error("GlobalReplicationGroupNotFoundFault", f"Global replication group {gid} not found.")
        return g

    def moto_rg(self, member: dict[str, Any]) -> Any:
        return self.backend(member["region"]).replication_groups.get(member["rg_id"])

    @staticmethod
    def fix_endpoints(rg: Any, region: str) -> None:
        # moto writes every endpoint as `<id>.<rand>.use1.cache.amazonaws.com`.
        short = region_short(region)
        for ng in rg.node_groups:
            for key in ("primary_endpoint_address", "reader_endpoint_address"):
                if key in ng:
                    ng[key] = ng[key].replace(".use1.cache.", f".{short}.cache.")
            if "primary_endpoint" in ng:
                ng["primary_endpoint"]["address"] = ng["primary_endpoint_address"]
            if "reader_endpoint_address" in ng:
                ng["reader_endpoint"] = {"address": ng["reader_endpoint_address"], "port": ng.get("port", rg.port)}
            for m in ng.get("node_group_members", []):
                ep = m.get("read_endpoint")
                if isinstance(ep, dict) and "address" in ep:
                    ep["address"] = ep["address"].replace(".use1.cache.", f".{short}.cache.")
        cfg = getattr(rg, "configuration_endpoint", None)
        if isinstance(cfg, dict) and "address" in cfg:
            cfg["address"] = cfg["address"].replace(".use1.cache.", f".{short}.cache.")

    def view(self, g: dict[str, Any], members: bool) -> dict[str, Any]:
        out = {
            "GlobalReplicationGroupId": g["id"],
            "GlobalReplicationGroupDescription": g["description"],
            "Status": g["status"],
            "CacheNodeType": g["cache_node_type"],
            "Engine": g["engine"],
            "EngineVersion": g["engine_version"],
            "ClusterEnabled": g["cluster_enabled"],
            "GlobalNodeGroups": [
                {"GlobalNodeGroupId": f"{g['id']}-{ng_id}", "Slots": slots} for ng_id, slots in g["global_node_groups"]
            ]
            if g["cluster_enabled"]
            else [],
            "AuthTokenEnabled": g["auth_token_enabled"],
            "TransitEncryptionEnabled": g["transit_encryption_enabled"],
            "AtRestEncryptionEnabled": g["at_rest_encryption_enabled"],
            "ARN": g["arn"],
        }
        if members:
            out["Members"] = [
                {
                    "ReplicationGroupId": m["rg_id"],
                    "ReplicationGroupRegion": m["region"],
                    "Role": m["role"],
                    "AutomaticFailover": m["automatic_failover"],
                    "Status": m["status"],
                }
                for m in g["members"]
            ]
        return out

    def _set_rg(self, member: dict[str, Any], gid: str, role: str, status: str | None = None) -> None:
        rg = self.moto_rg(member)
        if rg is None:
            return
        rg.global_replication_group_id = gid
        rg.global_replication_group_member_role = role
        if status:
            rg.status = status

    def _busy(self, g: dict[str, Any]) -> None:
        if g["status"] != "available":
            raise aws_error(
                "InvalidGlobalReplicationGroupState",
                f"Global replication group {g['id']} is not in available state (status: {g['status']}).",
            )

    @staticmethod
    def _begin(g: dict[str, Any]) -> None:
        """An operation starts: the datastore is `modifying` until every one ends."""
        g["running"] = g.get("running", 0) + 1
        g["status"] = "modifying"

    @staticmethod
    def _end(g: dict[str, Any]) -> None:
        g["running"] = max(0, g.get("running", 0) - 1)
        if g["running"] == 0 and g["status"] == "modifying":
            g["status"] = "available"

    # ------------------------------------------------------------------ operations
    def create(self, region: str, suffix: str, primary_id: str, description: str) -> dict[str, Any]:
        rg = self.backend(region).replication_groups.get(primary_id)
        if rg is None:
            raise aws_error("ReplicationGroupNotFoundFault", f"Replication group {primary_id} not found.")
        if getattr(rg, "global_replication_group_id", ""):
            raise aws_error(
                "InvalidReplicationGroupState",
                f"Replication group {primary_id} is already a member of global replication group "
                f"{rg.global_replication_group_id}.",
            )
        if rg.status != "available":
            raise aws_error("InvalidReplicationGroupState", f"Replication group {primary_id} is not available.")
        if rg.engine not in ("redis", "valkey"):
            raise aws_error("InvalidParameterValue", "Global datastores support the valkey and redis engines only.")
        gid = f"{region_prefix(region)}-{suffix}"
        if gid in self.groups:
            raise aws_error("GlobalReplicationGroupAlreadyExistsFault", f"Global replication group {gid} already exists.")
        g = {
            "id": gid,
            "suffix": suffix,
            "description": description,
            "status": "creating",
            "cache_node_type": rg.cache_node_type,
            "engine": rg.engine,
            "engine_version": rg.engine_version or ("7.2" if rg.engine == "valkey" else "7.1"),
            "cluster_enabled": bool(rg.cluster_enabled),
            "shards": len(rg.node_groups),
            # (node group id, slots) of the primary's shards.
            "global_node_groups": [(ng["node_group_id"], ng.get("slots", "0-16383")) for ng in rg.node_groups],
            "auth_token_enabled": bool(rg.auth_token_enabled),
            "transit_encryption_enabled": bool(rg.transit_encryption_enabled),
            "at_rest_encryption_enabled": bool(rg.at_rest_encryption_enabled),
            "arn": f"arn:aws:elasticache::{self.account_id}:globalreplicationgroup:{gid}",
            "members": [
                {
                    "rg_id": primary_id,
                    "region": region,
                    "role": "PRIMARY",
                    "status": "associated",
                    "automatic_failover": rg.automatic_failover,
                }
            ],
        }
        self.groups[gid] = g
        self._set_rg(g["members"][0], gid, "PRIMARY")

        def created() -> None:
            if self.groups.get(gid) is g and g["status"] == "creating":
                g["status"] = "available"

        self.emu.after(float(self.emu.cfg("elasticache", "create_seconds")), created)
        return g

    def check_new_secondary(self, gid: str, region: str) -> dict[str, Any]:
        g = self.find(gid)
        self._busy(g)
        if any(m["region"] == region for m in g["members"]):
            raise aws_error(
                "InvalidParameterValue",
                f"Global replication group {gid} already has a member in {region}; each member needs its own Region.",
            )
        if len(g["members"]) >= 3:
            raise aws_error("InvalidParameterValue", f"Global replication group {gid} already has two secondary members.")
        return g

    def check_secondary_shape(
        self, g: dict[str, Any], node_type: str | None, shards: int | None, cluster_mode: str | None
    ) -> None:
        """A secondary must match the datastore's node type, cluster mode and shard
        count; what the request leaves out is taken from the datastore (`_rg_init`)."""
        differs = []
        if node_type and node_type != g["cache_node_type"]:
            differs.append(f"CacheNodeType {node_type} (the datastore's is {g['cache_node_type']})")
        if shards and shards != g["shards"]:
            differs.append(f"NumNodeGroups {shards} (the datastore has {g['shards']})")
        if cluster_mode and (cluster_mode.lower() == "enabled") != g["cluster_enabled"]:
            differs.append(
                f"ClusterMode {cluster_mode} (the datastore's is {'enabled' if g['cluster_enabled'] else 'disabled'})"
            )
        if differs:
            raise aws_error(
                "InvalidParameterCombination",
                f"A member of global replication group {g['id']} must match it: " + "; ".join(differs) + ".",
            )

    def add_secondary(self, g: dict[str, Any], rg: Any, region: str) -> None:
        member = {
            "rg_id": rg.replication_group_id,
            "region": region,
            "role": "SECONDARY",
            "status": "associating",
            "automatic_failover": rg.automatic_failover,
        }
        g["members"].append(member)
        self._begin(g)
        self._set_rg(member, g["id"], "SECONDARY")

        def associated() -> None:
            if member in g["members"] and member["status"] == "associating":
                member["status"] = "associated"
                self._end(g)

        self.emu.after(float(self.emu.cfg("elasticache", "associate_seconds")), associated)

    def _member(self, g: dict[str, Any], rg_id: str | None, region: str | None) -> dict[str, Any]:
        for m in g["members"]:
            if m["rg_id"] == rg_id and m["region"] == region:
                return m
        raise aws_error(
            "InvalidParameterValue",
            f"Replication group {rg_id} in {region} is not a member of global replication group {g['id']}.",
        )

    def failover(self, gid: str, primary_region: str, primary_rg: str) -> dict[str, Any]:
        g = self.find(gid)
        member = self._member(g, primary_rg, primary_region)
        if self.emu.cfg("elasticache", "failover_with_unreachable_members") == "allow":
            self._check_promotion_allowed(g, member)
        else:
            self._check_promotion_refused(g, member)
        old = next((m for m in g["members"] if m["role"] == "PRIMARY"), None)
        touched = [m for m in (old, member) if m is not None]
        self._begin(g)
        for m in touched:
            rg = self.moto_rg(m)
            if rg is not None:
                rg.status = "modifying"

        def done() -> None:
            if self.groups.get(gid) is not g:
                return
            self._end(g)
            for m in touched:
                rg = self.moto_rg(m)
                if rg is not None:
                    rg.status = "available"
            if member not in g["members"]:
                return
            # "The secondary region will become primary, and all other clusters will
            # become secondary" (FailoverGlobalReplicationGroup): whoever is primary now,
            # after promotions that ran in parallel.
            before = next((m for m in g["members"] if m["role"] == "PRIMARY"), None)
            for m in g["members"]:
                role = "PRIMARY" if m is member else "SECONDARY"
                m["role"] = role
                self._set_rg(m, gid, role)
            g["members"].sort(key=lambda m: m["role"] != "PRIMARY")
            self.history.append(
                {
                    "global_replication_group": gid,
                    "kind": "failover",
                    "from": before["rg_id"] if before else None,
                    "to": member["rg_id"],
                }
            )

        self.emu.after(float(self.emu.cfg("elasticache", "failover_seconds")), done)
        return g

    def _check_promotion_refused(self, g: dict[str, Any], member: dict[str, Any]) -> None:
        """The API reference's reading: InvalidGlobalReplicationGroupState, "The Global
        datastore is not available or in primary-only state", whenever anything is in
        progress or a member's Region is down."""
        self._busy(g)
        if member["role"] == "PRIMARY":
            raise aws_error(
                "InvalidParameterValue",
                f"Replication group {member['rg_id']} in {member['region']} is already the primary of {g['id']}.",
            )
        # A member is unreachable when ElastiCache in its Region is down (the Region
        # blackholed as a whole or for `elasticache`); other services' outages there
        # do not touch the replication groups.
        down = [m for m in g["members"] if self.emu.faults.service_impaired(m["region"], "elasticache")]
        if down:
            raise aws_error(
                "InvalidGlobalReplicationGroupState",
                f"Global replication group {g['id']} cannot fail over: member {down[0]['rg_id']} in "
                f"{down[0]['region']} is unreachable.",
            )

    def _check_promotion_allowed(self, g: dict[str, Any], member: dict[str, Any]) -> None:
        """The user guide's reading ("Promoting the secondary cluster to primary"):
        promotion is allowed anytime, even while other modifications are in progress
        and whatever members' Regions are down; promotions may run in parallel and the
        datastore resolves to one primary. The new primary itself must be a member in
        service whose Region answers."""
        if member["status"] != "associated":
            raise aws_error(
                "InvalidGlobalReplicationGroupState",
                f"Replication group {member['rg_id']} in {member['region']} is {member['status']}; "
                f"it cannot become the primary of {g['id']}.",
            )
        if self.emu.faults.service_impaired(member["region"], "elasticache"):
            raise aws_error(
                "InvalidGlobalReplicationGroupState",
                f"Global replication group {g['id']} cannot fail over to {member['rg_id']}: "
                f"{member['region']} is unreachable.",
            )
        if member["role"] == "PRIMARY":
            raise aws_error(
                "InvalidParameterValue",
                f"Replication group {member['rg_id']} in {member['region']} is already the primary of {g['id']}.",
            )

    def disassociate(self, gid: str, rg_id: str, region: str) -> dict[str, Any]:
        g = self.find(gid)
        member = self._member(g, rg_id, region)
        if member["role"] == "PRIMARY":
            raise aws_error(
                "InvalidParameterValue",
                f"Replication group {rg_id} is the primary of {gid}; only a secondary can be disassociated.",
            )
        self._busy(g)
        self._begin(g)
        member["status"] = "disassociating"

        def done() -> None:
            if self.groups.get(gid) is not g or member not in g["members"]:
                return
            g["members"].remove(member)
            rg = self.moto_rg(member)
            if rg is not None:
                rg.global_replication_group_id = ""
                rg.global_replication_group_member_role = ""
                rg.status = "available"
            self._end(g)
            self.history.append({"global_replication_group": gid, "kind": "disassociate", "member": rg_id, "region": region})

        self.emu.after(float(self.emu.cfg("elasticache", "disassociate_seconds")), done)
        return g

    def delete(self, gid: str, retain_primary: bool) -> dict[str, Any]:
        g = self.find(gid)
        if not retain_primary:
            raise aws_error("InvalidParameterValue", "RetainPrimaryReplicationGroup must be true.")
        if len(g["members"]) > 1:
            raise aws_error(
                "InvalidGlobalReplicationGroupState",
                f"Global replication group {gid} still has secondary members; disassociate them first.",
            )
        self._busy(g)
        g["status"] = "deleting"
        for m in g["members"]:
            rg = self.moto_rg(m)
            if rg is not None:
                rg.global_replication_group_id = ""
                rg.global_replication_group_member_role = ""
        del self.groups[gid]
        return g

    # ------------------------------------------------------------------ control
    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/elasticache", lambda body: self._locked_state())]

    def _locked_state(self) -> Any:
        with self.emu.lock:
            self.emu.tick()
            return self.state()

    def state(self) -> dict[str, Any]:
        return {"global_replication_groups": {k: self.view(v, members=True) for k, v in self.groups.items()}, "history": list(self.history)}


PATCHED_MODULE = ec_models
