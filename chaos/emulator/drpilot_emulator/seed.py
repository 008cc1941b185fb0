"""`chaos/emulator/seed [TOPOLOGY.toml] --endpoint URL [--iam-user NAME=POLICY.json]...`:
create a stack through the real AWS APIs (boto3 against the emulator, with the
administrator's credentials) and print, as JSON on stdout, the ids AWS generated for it:
ARNs, hosted zone ids, health check ids, endpoints; and IAM users holding the given
policies, with their access keys (`iam_users.NAME.access_key_id`, `.secret_access_key`)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class SeedError(Exception):
    pass


def load_topology(path: str | Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


class Seeder:
    def __init__(self, topology: dict[str, Any], endpoint: str, timeout: float = 120.0) -> None:
        self.t = topology
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.out: dict[str, Any] = {"endpoint": self.endpoint, "account_id": None}
        self.refs: dict[str, str] = {}
        self.clients: dict[tuple[str, str, str], Any] = {}

    def client(self, service: str, region: str, endpoint: str | None = None) -> Any:
        key = (service, region, endpoint or self.endpoint)
        if key not in self.clients:
            self.clients[key] = boto3.client(
                service,
                region_name=region,
                endpoint_url=endpoint or self.endpoint,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                config=Config(retries={"max_attempts": 5, "mode": "standard"}),
            )
        return self.clients[key]

    def wait(self, what: str, predicate: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SeedError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def resolve(self, value: str) -> str:
        def sub(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref not in self.refs:
                raise SeedError(f"unknown reference ${{{ref}}} (known: {', '.join(sorted(self.refs))})")
            return self.refs[ref]

        return re.sub(r"\$\{([^}]+)\}", sub, value)

    # ------------------------------------------------------------------ aurora
    def aurora(self) -> None:
        a = self.t.get("aurora")
        if not a:
            return
        clusters = a.get("clusters", [])
        primaries = [c for c in clusters if c.get("role", "secondary") == "primary"]
        if len(primaries) != 1:
            raise SeedError("aurora needs exactly one cluster with role = \"primary\"")
        out: dict[str, Any] = {"clusters": {}}
        engine = a.get("engine", "aurora-postgresql")
        version = a.get("engine_version")
        ordered = primaries + [c for c in clusters if c is not primaries[0]]
        gc_arn = None
        for c in ordered:
            rds = self.client("rds", c["region"])
            kwargs: dict[str, Any] = {"DBClusterIdentifier": c["id"], "Engine": engine}
            if version:
                kwargs["EngineVersion"] = version
            if c is primaries[0]:
                kwargs.update(MasterUsername=a.get("master_username", "acme_admin"), ManageMasterUserPassword=True)
                if c.get("database"):
                    kwargs["DatabaseName"] = c["database"]
            else:
                kwargs["GlobalClusterIdentifier"] = a["global_cluster"]
            # Aurora Serverless v2: the capacity range comes first ("An Aurora cluster must
            # have a ServerlessV2ScalingConfiguration attribute before you can add any DB
            # instances that use the db.serverless DB instance class", Aurora user guide).
            if "min_acu" in c or "max_acu" in c:
                kwargs["ServerlessV2ScalingConfiguration"] = {
                    "MinCapacity": float(c.get("min_acu", 0.5)),
                    "MaxCapacity": float(c.get("max_acu", 16)),
                }
            cluster = rds.create_db_cluster(**kwargs)["DBCluster"]
            instances = []
            for inst in c.get("instances", []):
                rds.create_db_instance(
                    DBInstanceIdentifier=inst,
                    DBClusterIdentifier=c["id"],
                    Engine=engine,
                    DBInstanceClass=c.get("instance_class", a.get("instance_class", "db.r6g.large")),
                )
                instances.append(inst)
            if c is primaries[0]:
                gc = rds.create_global_cluster(
                    GlobalClusterIdentifier=a["global_cluster"], SourceDBClusterIdentifier=cluster["DBClusterArn"]
                )["GlobalCluster"]
                gc_arn = gc["GlobalClusterArn"]
                out["global_cluster"] = {
                    "id": gc["GlobalClusterIdentifier"],
                    "arn": gc_arn,
                    "resource_id": gc["GlobalClusterResourceId"],
                    "endpoint": gc.get("Endpoint"),
                }
            cluster = self.wait(
                f"cluster {c['id']}",
                lambda: next(
                    (x for x in rds.describe_db_clusters(DBClusterIdentifier=c["id"])["DBClusters"] if x["Status"] == "available"),
                    None,
                ),
            )
            out["clusters"][c["id"]] = {
                "arn": cluster["DBClusterArn"],
                "region": c["region"],
                "role": c.get("role", "secondary"),
                "resource_id": cluster["DbClusterResourceId"],
                "endpoint": cluster["Endpoint"],
                "reader_endpoint": cluster["ReaderEndpoint"],
                "port": cluster["Port"],
                "instances": instances,
                "serverless_v2_scaling": cluster.get("ServerlessV2ScalingConfiguration"),
            }
            self.refs[f"aurora.{c['id']}.endpoint"] = cluster["Endpoint"]
            self.refs[f"aurora.{c['id']}.reader_endpoint"] = cluster["ReaderEndpoint"]
            self.refs[f"aurora.{c['id']}.arn"] = cluster["DBClusterArn"]
            if self.out["account_id"] is None:
                self.out["account_id"] = cluster["DBClusterArn"].split(":")[4]
        self.out["aurora"] = out

    # ------------------------------------------------------------------ valkey
    def valkey(self) -> None:
        v = self.t.get("valkey")
        if not v:
            return
        members = v.get("members", [])
        primaries = [m for m in members if m.get("role") == "primary"]
        if len(primaries) != 1:
            raise SeedError("valkey needs exactly one member with role = \"primary\"")
        out: dict[str, Any] = {"members": {}}
        gid = None
        shards = int(v.get("shards", 1))
        cluster_mode = bool(v.get("cluster_mode", shards > 1))
        if shards < 1 or (shards > 1 and not cluster_mode):
            raise SeedError("valkey: shards must be 1, or more with cluster_mode = true")
        for m in primaries + [m for m in members if m is not primaries[0]]:
            ec = self.client("elasticache", m["region"])
            kwargs: dict[str, Any] = {
                "ReplicationGroupId": m["id"],
                "ReplicationGroupDescription": m.get("description", f"{m['id']} ({m['region']})"),
                "AutomaticFailoverEnabled": True,
                "MultiAZEnabled": True,
                "TransitEncryptionEnabled": True,
                "AtRestEncryptionEnabled": True,
                "Engine": v.get("engine", "valkey"),
                "EngineVersion": v.get("engine_version", "7.2"),
                "CacheNodeType": v.get("node_type", "cache.r7g.large"),
            }
            if cluster_mode:
                # Cluster mode enabled: the shards, each a primary and its replicas, and
                # the engine's cluster-mode parameter group (default.valkey7.cluster.on).
                major = str(kwargs["EngineVersion"]).split(".")[0]
                kwargs.update(
                    ClusterMode="enabled",
                    NumNodeGroups=shards,
                    ReplicasPerNodeGroup=int(v.get("replicas", 1)),
                    CacheParameterGroupName=v.get("parameter_group", f"default.{kwargs['Engine']}{major}.cluster.on"),
                )
            else:
                kwargs["NumCacheClusters"] = 1 + int(v.get("replicas", 1))
            if m is not primaries[0]:
                # The members of a Global Datastore match in node type, cluster mode and
                # shard count; the secondary says so explicitly.
                kwargs["GlobalReplicationGroupId"] = gid
            rg = ec.create_replication_group(**kwargs)["ReplicationGroup"]
            if m is primaries[0]:
                g = ec.create_global_replication_group(
                    GlobalReplicationGroupIdSuffix=v["global_suffix"],
                    PrimaryReplicationGroupId=m["id"],
                    GlobalReplicationGroupDescription=v.get("description", v["global_suffix"]),
                )["GlobalReplicationGroup"]
                gid = g["GlobalReplicationGroupId"]
                out["global_datastore"] = {"id": gid, "arn": g.get("ARN"), "suffix": v["global_suffix"], "created_in": m["region"]}
            self.wait(
                f"global datastore {gid}",
                lambda: ec.describe_global_replication_groups(GlobalReplicationGroupId=gid)["GlobalReplicationGroups"][0][
                    "Status"
                ]
                == "available",
            )
            ng = (rg.get("NodeGroups") or [{}])[0]
            primary_ep = (ng.get("PrimaryEndpoint") or {}).get("Address")
            reader_ep = (ng.get("ReaderEndpoint") or {}).get("Address")
            config_ep = (rg.get("ConfigurationEndpoint") or {}).get("Address")
            out["members"][m["id"]] = {
                "arn": rg["ARN"],
                "region": m["region"],
                "role": m["role"],
                "cluster_enabled": bool(rg.get("ClusterEnabled")),
                "shards": len(rg.get("NodeGroups") or []),
                "node_type": rg.get("CacheNodeType"),
                "configuration_endpoint": config_ep,
                "primary_endpoint": primary_ep,
                "reader_endpoint": reader_ep,
            }
            if primary_ep:
                self.refs[f"valkey.{m['id']}.primary_endpoint"] = primary_ep
            if reader_ep:
                self.refs[f"valkey.{m['id']}.reader_endpoint"] = reader_ep
            if config_ep:
                self.refs[f"valkey.{m['id']}.configuration_endpoint"] = config_ep
        self.out["valkey"] = out

    # ------------------------------------------------------------------ compute
    def control(self, method: str, path: str, body: Any = None) -> Any:
        """The emulator's control API (not AWS)."""
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def autoscaling(self) -> None:
        a = self.t.get("autoscaling")
        if not a:
            return
        out: dict[str, Any] = {"groups": {}}
        for grp in a.get("groups", []):
            region = grp["region"]
            ec2 = self.client("ec2", region)
            image = grp.get("image_id") or ec2.describe_images()["Images"][0]["ImageId"]
            lt_name = grp.get("launch_template", f"{grp['name']}-lt")
            lt = ec2.create_launch_template(
                LaunchTemplateName=lt_name,
                LaunchTemplateData={"ImageId": image, "InstanceType": grp.get("instance_type", "m7g.large")},
            )["LaunchTemplate"]
            asg = self.client("autoscaling", region)
            asg.create_auto_scaling_group(
                AutoScalingGroupName=grp["name"],
                MinSize=int(grp["min"]),
                MaxSize=int(grp["max"]),
                DesiredCapacity=int(grp.get("desired", grp["min"])),
                LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Default"},
                AvailabilityZones=grp.get("availability_zones") or [f"{region}{z}" for z in "abc"],
                Tags=[{"Key": "AmazonECSManaged", "Value": "", "PropagateAtLaunch": True}],
            )
            out["groups"][grp["name"]] = {
                "region": region,
                "launch_template": {"id": lt["LaunchTemplateId"], "name": lt_name},
                "instance_type": grp.get("instance_type", "m7g.large"),
            }
        self.out["autoscaling"] = out

    def ecs(self) -> None:
        e = self.t.get("ecs")
        if not e:
            return
        out: dict[str, Any] = {}
        for c in e.get("clusters", []):
            region, name = c["region"], c["name"]
            ecs = self.client("ecs", region)
            cluster = ecs.create_cluster(clusterName=name)["cluster"]
            family = c.get("task_family", e.get("task_family", "acme-app"))
            td = ecs.register_task_definition(
                family=family,
                requiresCompatibilities=["EC2"],
                containerDefinitions=[
                    {
                        "name": "app",
                        "image": c.get("image", e.get("image", "public.ecr.aws/docker/library/busybox:stable")),
                        "memory": int(c.get("memory", e.get("memory", 512))),
                        "cpu": int(c.get("cpu", e.get("cpu", 256))),
                        "essential": True,
                    }
                ],
            )["taskDefinition"]
            entry: dict[str, Any] = {"cluster_arn": cluster["clusterArn"], "task_definition_arn": td["taskDefinitionArn"]}
            for svc in c.get("services", []):
                if svc["name"] in ("cluster_arn", "task_definition_arn"):
                    raise SeedError(f"ecs: a service may not be named {svc['name']!r}")
                created = ecs.create_service(
                    cluster=name,
                    serviceName=svc["name"],
                    taskDefinition=td["taskDefinitionArn"],
                    desiredCount=int(svc["desired"]),
                    launchType="EC2",
                )["service"]
                entry[svc["name"]] = {"arn": created["serviceArn"], "desired": int(svc["desired"])}
                self.refs[f"ecs.{region}.{name}.{svc['name']}.arn"] = created["serviceArn"]
            out.setdefault(region, {})[name] = entry
        self.out["ecs"] = out

    def settle_compute(self) -> None:
        """Let the new tasks and instances start: the emulated clock jumps ahead by the
        longest start time (`ecs.task_start_seconds`, `autoscaling.warmup_seconds`),
        then seeding waits (through the AWS APIs) until every service is at its steady
        state and every group's instances are InService."""
        if not self.t.get("ecs") and not self.t.get("autoscaling"):
            return
        config = self.control("GET", "/_drpilot/config")
        ahead = max(float(config["ecs"]["task_start_seconds"]), float(config["autoscaling"]["warmup_seconds"])) + 1.0
        self.control("POST", "/_drpilot/clock/advance", {"seconds": ahead})
        for region, clusters in (self.out.get("ecs") or {}).items():
            ecs = self.client("ecs", region)
            for cluster, entry in clusters.items():
                names = [k for k in entry if k not in ("cluster_arn", "task_definition_arn")]
                for i in range(0, len(names), 10):
                    batch = names[i : i + 10]

                    def steady(batch: list[str] = batch, cluster: str = cluster) -> bool:
                        services = ecs.describe_services(cluster=cluster, services=batch)["services"]
                        return all(
                            s["runningCount"] == s["desiredCount"]
                            and s["pendingCount"] == 0
                            and all(d.get("rolloutState") in (None, "COMPLETED") for d in s["deployments"])
                            for s in services
                        )

                    self.wait(f"ECS services in {cluster} ({region})", steady)
                for s in ecs.describe_services(cluster=cluster, services=names)["services"]:
                    entry[s["serviceName"]].update(running=s["runningCount"], pending=s["pendingCount"])
        for name, info in ((self.out.get("autoscaling") or {}).get("groups") or {}).items():
            asg = self.client("autoscaling", info["region"])

            def in_service(name: str = name, asg: Any = asg) -> Any:
                g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
                ok = len(g["Instances"]) == g["DesiredCapacity"] and all(
                    i["LifecycleState"] == "InService" for i in g["Instances"]
                )
                return g if ok else None

            g = self.wait(f"Auto Scaling group {name}", in_service)
            info.update(
                arn=g["AutoScalingGroupARN"],
                min=g["MinSize"],
                desired=g["DesiredCapacity"],
                max=g["MaxSize"],
                instances=sorted(i["InstanceId"] for i in g["Instances"]),
            )

    # ------------------------------------------------------------------ s3
    def s3(self) -> None:
        s = self.t.get("s3")
        if not s:
            return
        out: dict[str, Any] = {"buckets": {}, "replication": []}
        regions: dict[str, str] = {}
        for b in s.get("buckets", []):
            client = self.client("s3", b["region"])
            kwargs: dict[str, Any] = {"Bucket": b["name"]}
            if b["region"] != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": b["region"]}
            client.create_bucket(**kwargs)
            if b.get("versioning"):
                client.put_bucket_versioning(Bucket=b["name"], VersioningConfiguration={"Status": "Enabled"})
            regions[b["name"]] = b["region"]
            out["buckets"][b["name"]] = {"arn": f"arn:aws:s3:::{b['name']}", "region": b["region"], "versioning": bool(b.get("versioning"))}
        rules_by_source: dict[str, list[dict[str, Any]]] = {}
        roles: dict[str, str] = {}
        for r in s.get("replication", []):
            rules_by_source.setdefault(r["source"], []).append(r)
            roles[r["source"]] = r.get("role", f"arn:aws:iam::{self.t.get('account', '111122223333')}:role/s3-replication")
        for source, rules in rules_by_source.items():
            client = self.client("s3", regions.get(source, "us-east-1"))
            config = {
                "Role": roles[source],
                "Rules": [
                    {
                        "ID": r.get("rule_id", f"{source}-to-{r['destination']}"),
                        "Priority": int(r.get("priority", i + 1)),
                        "Status": "Enabled",
                        "Filter": {"Prefix": r.get("prefix", "")},
                        "DeleteMarkerReplication": {"Status": "Disabled"},
                        "Destination": {"Bucket": f"arn:aws:s3:::{r['destination']}"},
                    }
                    for i, r in enumerate(rules)
                ],
            }
            client.put_bucket_replication(Bucket=source, ReplicationConfiguration=config)
            for rule in config["Rules"]:
                out["replication"].append(
                    {"source": source, "destination": rule["Destination"]["Bucket"].split(":::")[1], "rule_id": rule["ID"]}
                )
        self.out["s3"] = out

    # ------------------------------------------------------------------ arc
    def arc(self) -> None:
        a = self.t.get("arc")
        if not a:
            return
        # The recovery control configuration API is served from us-west-2 only.
        cc = self.client("route53-recovery-control-config", "us-west-2")
        cluster = cc.create_cluster(ClusterName=a["cluster"])["Cluster"]
        cluster_arn = cluster["ClusterArn"]
        panel = cc.create_control_panel(ClusterArn=cluster_arn, ControlPanelName=a["control_panel"])["ControlPanel"]
        panel_arn = panel["ControlPanelArn"]
        controls: dict[str, str] = {}
        for rc in a.get("routing_controls", []):
            created = cc.create_routing_control(
                ClusterArn=cluster_arn, ControlPanelArn=panel_arn, RoutingControlName=rc["name"]
            )["RoutingControl"]
            controls[rc["name"]] = created["RoutingControlArn"]

        def deployed() -> bool:
            if cc.describe_cluster(ClusterArn=cluster_arn)["Cluster"]["Status"] != "DEPLOYED":
                return False
            if cc.describe_control_panel(ControlPanelArn=panel_arn)["ControlPanel"]["Status"] != "DEPLOYED":
                return False
            return all(
                cc.describe_routing_control(RoutingControlArn=arn)["RoutingControl"]["Status"] == "DEPLOYED"
                for arn in controls.values()
            )

        self.wait(f"ARC cluster {a['cluster']}", deployed)
        endpoints = cc.describe_cluster(ClusterArn=cluster_arn)["Cluster"]["ClusterEndpoints"]
        # Initial states through the cluster's data plane, before any safety rule exists
        # (so no rule's wait period is running once seeding is done).
        entries = [
            {"RoutingControlArn": controls[rc["name"]], "RoutingControlState": rc.get("state", "Off")}
            for rc in a.get("routing_controls", [])
        ]
        if entries:
            self.cluster_call(endpoints, lambda dp: dp.update_routing_control_states(UpdateRoutingControlStateEntries=entries))
        rules: dict[str, str] = {}
        for rule in a.get("safety_rules", []):
            config = {
                "Type": rule.get("rule_type", "ATLEAST"),
                "Threshold": int(rule.get("threshold", 1)),
                "Inverted": bool(rule.get("inverted", False)),
            }
            common = {"ControlPanelArn": panel_arn, "Name": rule["name"], "RuleConfig": config, "WaitPeriodMs": int(rule.get("wait_period_ms", 5000))}
            if rule.get("type", "assertion") == "assertion":
                created = cc.create_safety_rule(AssertionRule={**common, "AssertedControls": [controls[n] for n in rule["controls"]]})
                rules[rule["name"]] = created["AssertionRule"]["SafetyRuleArn"]
            else:
                created = cc.create_safety_rule(
                    GatingRule={
                        **common,
                        "GatingControls": [controls[n] for n in rule["gating_controls"]],
                        "TargetControls": [controls[n] for n in rule["target_controls"]],
                    }
                )
                rules[rule["name"]] = created["GatingRule"]["SafetyRuleArn"]

        def rule_status(arn: str) -> str:
            described = cc.describe_safety_rule(SafetyRuleArn=arn)
            return (described.get("AssertionRule") or described.get("GatingRule"))["Status"]

        self.wait("ARC safety rules", lambda: all(rule_status(arn) == "DEPLOYED" for arn in rules.values()))
        for name, arn in controls.items():
            self.refs[f"arc.routing_controls.{name}.arn"] = arn
        self.out["arc"] = {
            "cluster": {
                "arn": cluster_arn,
                "name": a["cluster"],
                "endpoints": [{"endpoint": e["Endpoint"], "region": e["Region"]} for e in endpoints],
            },
            "control_panel": {"arn": panel_arn, "name": a["control_panel"]},
            "routing_controls": {
                rc["name"]: {"arn": controls[rc["name"]], "state": rc.get("state", "Off")} for rc in a.get("routing_controls", [])
            },
            "safety_rules": {name: {"arn": arn} for name, arn in rules.items()},
        }

    def cluster_call(self, endpoints: list[dict[str, str]], call: Any) -> Any:
        """Call the ARC data plane on the cluster's Regional endpoints in turn, as AWS
        recommends, until one answers."""
        error: Exception | None = None
        for e in endpoints:
            try:
                return call(self.client("route53-recovery-cluster", e["Region"], e["Endpoint"]))
            except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
                error = exc
        raise SeedError(f"no ARC cluster endpoint answered: {error}")

    # ------------------------------------------------------------------ route53
    def route53(self) -> None:
        r = self.t.get("route53")
        if not r:
            return
        r53 = self.client("route53", "us-east-1")
        out: dict[str, Any] = {"health_checks": {}, "zones": {}}
        hc_ids: dict[str, str] = {}
        for hc in r.get("health_checks", []):
            config: dict[str, Any] = {"Type": hc.get("type", "HTTPS")}
            if config["Type"] == "RECOVERY_CONTROL":
                ref = f"arc.routing_controls.{hc['routing_control']}.arn"
                if ref not in self.refs:
                    raise SeedError(f"health check {hc['name']}: no routing control {hc['routing_control']} in [arc]")
                config["RoutingControlArn"] = self.refs[ref]
            else:
                config.update(RequestInterval=int(hc.get("interval", 30)), FailureThreshold=int(hc.get("failure_threshold", 3)))
            if hc.get("fqdn"):
                config["FullyQualifiedDomainName"] = hc["fqdn"]
            if hc.get("ip"):
                config["IPAddress"] = hc["ip"]
            if hc.get("port"):
                config["Port"] = int(hc["port"])
            if hc.get("path"):
                config["ResourcePath"] = hc["path"]
            created = r53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig=config)["HealthCheck"]
            hc_ids[hc["name"]] = created["Id"]
            out["health_checks"][hc["name"]] = {"id": created["Id"]}
        for z in r.get("zones", []):
            kwargs: dict[str, Any] = {"Name": z["name"], "CallerReference": str(uuid.uuid4())}
            if z.get("private"):
                region = z.get("vpc_region", "us-east-1")
                ec2 = self.client("ec2", region)
                vpc = ec2.create_vpc(CidrBlock=z.get("vpc_cidr", "10.0.0.0/16"))["Vpc"]
                kwargs["VPC"] = {"VPCRegion": region, "VPCId": vpc["VpcId"]}
                kwargs["HostedZoneConfig"] = {"PrivateZone": True, "Comment": z.get("comment", z["name"])}
            zone = r53.create_hosted_zone(**kwargs)["HostedZone"]
            zone_id = zone["Id"].split("/")[-1]
            changes = []
            for rec in z.get("records", []):
                rs: dict[str, Any] = {"Name": rec["name"], "Type": rec["type"], "TTL": int(rec.get("ttl", 300))}
                rs["ResourceRecords"] = [{"Value": self.resolve(v)} for v in rec["values"]]
                if rec.get("set_identifier"):
                    rs["SetIdentifier"] = rec["set_identifier"]
                if rec.get("failover"):
                    rs["Failover"] = rec["failover"]
                if rec.get("health_check"):
                    rs["HealthCheckId"] = hc_ids[rec["health_check"]]
                changes.append({"Action": "CREATE", "ResourceRecordSet": rs})
            change_id = None
            if changes:
                info = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})["ChangeInfo"]
                change_id = info["Id"]
            out["zones"][z["name"]] = {
                "id": zone_id,
                "private": bool(z.get("private")),
                "vpc": kwargs.get("VPC"),
                "records": [
                    {k: v for k, v in c["ResourceRecordSet"].items()} for c in changes
                ],
                "change_id": change_id,
            }
        self.out["route53"] = out

    def run(self) -> dict[str, Any]:
        self.aurora()
        self.valkey()
        self.autoscaling()
        self.ecs()
        self.settle_compute()
        self.s3()
        self.arc()
        self.route53()
        want = str(self.t.get("account", ""))
        if want and self.out["account_id"] and want != self.out["account_id"]:
            raise SeedError(
                f"the emulator's account is {self.out['account_id']}, the topology's {want}: "
                f"start it with MOTO_ACCOUNT_ID={want}"
            )
        if not self.out["account_id"]:
            self.out["account_id"] = want or None
        return self.out


def seed(topology: dict[str, Any], endpoint: str, timeout: float = 120.0) -> dict[str, Any]:
    return Seeder(topology, endpoint, timeout).run()


# IAM's quota for a customer managed policy document: 6,144 characters, white space
# not counted (IAM User Guide, "IAM and AWS STS quotas").
MANAGED_POLICY_MAX_CHARS = 6144


def parse_iam_user(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise SeedError(f"--iam-user {spec!r}: expected NAME=POLICY.json")
    if not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
        raise SeedError(f"--iam-user {spec!r}: {name!r} is not a valid IAM user name (1-64 of letters, digits and +=,.@_-)")
    return name, Path(path)


def create_iam_users(endpoint: str, users: list[tuple[str, Path]]) -> dict[str, Any]:
    """Each user with its policy document as a customer managed policy attached to it
    (a user's inline policies are limited to 2,048 characters in all), and one access
    key. Created with the administrator's credentials."""
    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
    )
    out: dict[str, Any] = {}
    for name, path in users:
        try:
            text = path.read_text()
        except OSError as e:
            raise SeedError(f"--iam-user {name}: cannot read {path}: {e.strerror}") from None
        try:
            json.loads(text)
        except ValueError as e:
            raise SeedError(f"--iam-user {name}: {path} is not JSON: {e}") from None
        size = len(re.sub(r"\s", "", text))
        if size > MANAGED_POLICY_MAX_CHARS:
            raise SeedError(
                f"--iam-user {name}: {path} has {size} characters without white space; "
                f"IAM allows {MANAGED_POLICY_MAX_CHARS} in a managed policy"
            )
        # The policy first: IAM validates it, and a refused document leaves no user.
        policy = iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=text)["Policy"]
        user = iam.create_user(UserName=name)["User"]
        iam.attach_user_policy(UserName=name, PolicyArn=policy["Arn"])
        key = iam.create_access_key(UserName=name)["AccessKey"]
        out[name] = {
            "arn": user["Arn"],
            "policy_arn": policy["Arn"],
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos/emulator/seed", description=__doc__)
    parser.add_argument(
        "topology",
        nargs="?",
        help="TOML topology, e.g. chaos/emulator/topologies/prod.toml (without one, only --iam-user users are created)",
    )
    parser.add_argument("--endpoint", required=True, help="the emulator's URL, as printed by start")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for resources to become available")
    parser.add_argument(
        "--iam-user",
        action="append",
        default=[],
        metavar="NAME=POLICY.json",
        help="create IAM user NAME with that policy document and an access key (repeatable); "
        "printed as iam_users.NAME.access_key_id / .secret_access_key",
    )
    args = parser.parse_args(argv)
    if not args.topology and not args.iam_user:
        parser.error("give a topology, --iam-user NAME=POLICY.json, or both")
    try:
        users = [parse_iam_user(u) for u in args.iam_user]
        names = [n for n, _ in users]
        if len(set(names)) != len(names):
            raise SeedError("--iam-user: a user name is given twice")
        if args.topology:
            result = seed(load_topology(args.topology), args.endpoint, args.timeout)
        else:
            result = {"endpoint": args.endpoint.rstrip("/"), "account_id": None}
        if users:
            result["iam_users"] = create_iam_users(args.endpoint.rstrip("/"), users)
            if not result.get("account_id"):
                result["account_id"] = next(iter(result["iam_users"].values()))["arn"].split(":")[4]
    except (SeedError, OSError, KeyError, tomllib.TOMLDecodeError, ClientError, BotoCoreError) as e:
        print(f"seed: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
