"""`start --enforce-iam`: every AWS request authorized against its caller's IAM policies.

Who is calling: the access key id of the request's SigV4 credential scope. The
emulator's administrator (`ADMIN_ACCESS_KEY_ID`, the key `seed` uses) acts as the
account's root user: everything is allowed, as for a real root user. Any other key must
be an active access key of an IAM user created in the emulator (`seed --iam-user`, or
IAM's CreateUser/CreateAccessKey); an unknown key is refused as AWS refuses it
(InvalidClientTokenId; S3: InvalidAccessKeyId). Signatures are not verified: the
secret only matters to the SDK that signs (see README, "IAM enforcement").

What is asked: each operation maps to the IAM action(s) and resource ARN(s) the
Service Authorization Reference lists for it (`checks`), evaluated by `iam_eval` with
the request's global condition keys. An operation this table does not know is checked
as `service:Operation` on `*` (the form of actions without resource-level
permissions), so a policy scoped to ARNs denies it rather than letting it through;
S3, whose action names differ from its operation names, refuses an unknown operation
outright, naming it.
"""

from __future__ import annotations

import datetime
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import iam_eval
from .faults import error_response
from .wsgi import read_body

ADMIN_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"

# SigV4 signing name -> IAM service prefix.
IAM_PREFIX = {"monitoring": "cloudwatch"}

# Operations any authenticated caller may make whatever its policies say.
ALWAYS_ALLOWED = {("sts", "GetCallerIdentity")}  # IAM User Guide: GetCallerIdentity needs no permission


@dataclass
class Check:
    action: str
    resources: list[str]


@dataclass
class Caller:
    principal: Any  # iam_eval.Principal
    policies: list[Any]  # iam_eval.Policy
    context: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.principal.kind == "root"


class Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def partition_of(region: str | None) -> str:
    region = region or "us-east-1"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def access_key_id(environ: dict) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    marker = "Credential="
    if marker in auth:
        return auth.split(marker, 1)[1].split("/", 1)[0].strip() or None
    from urllib.parse import parse_qs

    cred = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
    if cred:
        return cred[0].split("/", 1)[0] or None
    return None


# ---------------------------------------------------------------------- the caller
def caller_for(account: str, environ: dict, ctx: Any) -> Caller:
    akid = access_key_id(environ)
    if not akid:
        raise Denied(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
    partition = partition_of(ctx.region)
    if akid == ADMIN_ACCESS_KEY_ID:
        principal = iam_eval.Principal(
            arn=f"arn:{partition}:iam::{account}:root", account=account, name=None, userid=account, kind="root"
        )
        policies: list[Any] = []
    else:
        found = iam_eval.principal_for_access_key(account, akid)
        if found is None:
            if ctx.service == "s3":
                raise Denied(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
            if ctx.protocol in ("json", "cbor", "rest-json") and ctx.service != "monitoring":
                raise Denied(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
            raise Denied(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        principal, policies = found
    return Caller(principal, policies, request_context(principal, ctx, environ))


def request_context(principal: Any, ctx: Any, environ: dict) -> dict[str, list[str]]:
    """The global condition keys AWS puts in every request's context (IAM User Guide,
    "AWS global condition context keys"), for what the emulator can know."""
    now = datetime.datetime.now(datetime.timezone.utc)
    keys: dict[str, list[str]] = {
        "aws:PrincipalArn": [principal.arn],
        "aws:PrincipalAccount": [principal.account],
        "aws:PrincipalType": [{"user": "User", "role": "AssumedRole", "root": "Account"}.get(principal.kind, "User")],
        "aws:userid": [principal.userid],
        "aws:SecureTransport": ["true" if environ.get("wsgi.url_scheme") == "https" else "false"],
        "aws:CurrentTime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:EpochTime": [str(int(time.time()))],
        "aws:SourceIp": [environ.get("REMOTE_ADDR") or "127.0.0.1"],
        "aws:RequestedRegion": [ctx.region or "us-east-1"],
    }
    if principal.kind == "user" and principal.name:
        keys["aws:username"] = [principal.name]
    return keys


def authorize(caller: Caller, checks: list[Check]) -> None:
    if caller.is_root:
        return
    for check in checks:
        ok, message = iam_eval.authorize(caller.policies, check.action, check.resources, caller.context, caller.principal)
        if not ok:
            raise Denied(403, "AccessDenied", message or f"not authorized to perform: {check.action}")


def allowed(caller: Caller, check: Check) -> bool:
    if caller.is_root:
        return True
    ok, _ = iam_eval.authorize(caller.policies, check.action, check.resources, caller.context, caller.principal)
    return ok


def denial(ctx: Any, e: Denied) -> tuple[int, list[tuple[str, str]], bytes]:
    protocol = ctx.protocol or "query"
    code = e.code
    status = e.status
    if code == "AccessDenied" and ctx.service in ("route53-recovery-cluster",):
        code = "AccessDeniedException"
    if code == "AccessDenied" and ctx.service == "ecs":
        # ECS's model: AccessDeniedException, no HTTP status of its own (awsJson: 400).
        code, status = "AccessDeniedException", 400
    return error_response(protocol, ctx.service or "", status, code, e.message, True)


# ---------------------------------------------------------------------- what a request needs
def params_of(ctx: Any, environ: dict) -> dict[str, Any]:
    """The request's top-level parameters, for the protocols whose requests name their
    resources in the body or form (query, json)."""
    if ctx.protocol == "query":
        merged = {k: v[0] for k, v in ctx.query.items() if v}
        merged.update({k: v[0] for k, v in ctx.form.items() if v})
        return merged
    if ctx.protocol == "json":
        raw = read_body(environ)
        if not raw:
            return {}
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def checks(ctx: Any, environ: dict, account: str) -> list[Check]:
    service = ctx.service or ""
    op = ctx.operation or ""
    region = ctx.region or "us-east-1"
    p = partition_of(region)
    prefix = IAM_PREFIX.get(service, service)
    if service == "s3":
        return s3_checks(ctx, environ, p)
    params = params_of(ctx, environ)
    fn = TABLE.get((service, op))
    if fn is None:
        return [Check(f"{prefix}:{op}", ["*"])]
    return fn(Arns(p, region, account), params, ctx)


class Arns:
    def __init__(self, partition: str, region: str, account: str) -> None:
        self.p, self.region, self.account = partition, region, account

    def rds(self, kind: str, ident: str | None, region: str | None = None) -> str:
        if ident and ident.startswith("arn:"):
            return ident
        return f"arn:{self.p}:rds:{region or self.region}:{self.account}:{kind}:{ident or '*'}"

    def global_cluster(self, ident: str | None) -> str:
        if ident and ident.startswith("arn:"):
            return ident
        return f"arn:{self.p}:rds::{self.account}:global-cluster:{ident or '*'}"

    def ec(self, kind: str, ident: str | None, region: str | None = None) -> str:
        if ident and ident.startswith("arn:"):
            return ident
        reg = "" if kind == "globalreplicationgroup" else (region or self.region)
        return f"arn:{self.p}:elasticache:{reg}:{self.account}:{kind}:{ident or '*'}"

    def r53(self, kind: str, ident: str | None) -> str:
        ident = (ident or "*").rsplit("/", 1)[-1]
        return f"arn:{self.p}:route53:::{kind}/{ident}"

    def ecs_cluster(self, cluster: str | None) -> str:
        cluster = cluster or "default"
        if cluster.startswith("arn:"):
            return cluster
        return f"arn:{self.p}:ecs:{self.region}:{self.account}:cluster/{cluster}"

    def ecs_service(self, cluster: str | None, service: str | None) -> str:
        """`arn:...:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE` (Service Authorization
        Reference, Amazon ECS resource type `service`); a short-format service ARN is
        given its cluster."""
        service = service or "*"
        if service.startswith("arn:"):
            prefix, _, rest = service.partition(":service/")
            return service if "/" in rest else f"{prefix}:service/{(cluster or 'default').rsplit('/', 1)[-1]}/{rest}"
        cluster_name = (cluster or "default").rsplit("/", 1)[-1]
        return f"arn:{self.p}:ecs:{self.region}:{self.account}:service/{cluster_name}/{service}"

    def asg(self, name: str | None) -> str:
        """The group's ARN, with the id AWS gave it
        (`autoScalingGroup:UUID:autoScalingGroupName/NAME`); `*` in the id's place for a
        group that does not exist (a policy names groups as `autoScalingGroup:*:...`)."""
        if name and name.startswith("arn:"):
            return name
        try:
            from moto.autoscaling.models import autoscaling_backends

            group = autoscaling_backends[self.account][self.region].autoscaling_groups.get(name or "")
        except Exception:  # pragma: no cover - moto without the Region
            group = None
        if group is not None:
            return str(group.arn)
        return f"arn:{self.p}:autoscaling:{self.region}:{self.account}:autoScalingGroup:*:autoScalingGroupName/{name or '*'}"

    def iam(self, kind: str, name: str | None) -> str:
        return f"arn:{self.p}:iam::{self.account}:{kind}/{name or '*'}"


def _one(action: str, *resources: str) -> list[Check]:
    return [Check(action, list(resources) or ["*"])]


def _rds_clusters(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("rds:DescribeDBClusters", a.rds("cluster", q.get("DBClusterIdentifier")))


def _rds_modify_cluster(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("rds:ModifyDBCluster", a.rds("cluster", q.get("DBClusterIdentifier")))


def _rds_globals(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("rds:DescribeGlobalClusters", a.global_cluster(q.get("GlobalClusterIdentifier")))


def _rds_global_op(action: str, target_key: str) -> Any:
    def fn(a: Arns, q: dict, ctx: Any) -> list[Check]:
        res = [a.global_cluster(q.get("GlobalClusterIdentifier"))]
        if q.get(target_key):
            res.append(a.rds("cluster", q[target_key]))
        return [Check(action, res)]

    return fn


def _rds_copy_snapshot(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one(
        "rds:CopyDBClusterSnapshot",
        a.rds("cluster-snapshot", q.get("SourceDBClusterSnapshotIdentifier")),
        a.rds("cluster-snapshot", q.get("TargetDBClusterSnapshotIdentifier")),
    )


def _rds_snapshots(a: Arns, q: dict, ctx: Any) -> list[Check]:
    res = []
    if q.get("DBClusterIdentifier"):
        res.append(a.rds("cluster", q["DBClusterIdentifier"]))
    res.append(a.rds("cluster-snapshot", q.get("DBClusterSnapshotIdentifier")))
    return [Check("rds:DescribeDBClusterSnapshots", res)]


def _rds_instances(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("rds:DescribeDBInstances", a.rds("db", q.get("DBInstanceIdentifier")))


def _ec_globals(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("elasticache:DescribeGlobalReplicationGroups", a.ec("globalreplicationgroup", q.get("GlobalReplicationGroupId")))


def _ec_groups(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("elasticache:DescribeReplicationGroups", a.ec("replicationgroup", q.get("ReplicationGroupId")))


def _ec_failover(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one(
        "elasticache:FailoverGlobalReplicationGroup",
        a.ec("globalreplicationgroup", q.get("GlobalReplicationGroupId")),
        a.ec("replicationgroup", q.get("PrimaryReplicationGroupId"), q.get("PrimaryRegion")),
    )


def _ec_disassociate(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one(
        "elasticache:DisassociateGlobalReplicationGroup",
        a.ec("globalreplicationgroup", q.get("GlobalReplicationGroupId")),
        a.ec("replicationgroup", q.get("ReplicationGroupId"), q.get("ReplicationGroupRegion")),
    )


def _ecs_describe_services(a: Arns, q: dict, ctx: Any) -> list[Check]:
    services = q.get("services") if isinstance(q.get("services"), list) else []
    return _one("ecs:DescribeServices", *[a.ecs_service(q.get("cluster"), s) for s in services if isinstance(s, str)])


def _ecs_update_service(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("ecs:UpdateService", a.ecs_service(q.get("cluster"), q.get("service")))


def _ecs_describe_clusters(a: Arns, q: dict, ctx: Any) -> list[Check]:
    clusters = q.get("clusters") if isinstance(q.get("clusters"), list) else []
    return _one("ecs:DescribeClusters", *[a.ecs_cluster(c) for c in clusters if isinstance(c, str)] or [a.ecs_cluster(None)])


def _asg_update(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("autoscaling:UpdateAutoScalingGroup", a.asg(q.get("AutoScalingGroupName")))


def _r53(action: str, kind: str, key: str) -> Any:
    def fn(a: Arns, q: dict, ctx: Any) -> list[Check]:
        ident = ctx.uri_params.get(key) or q.get(key)
        return _one(action, a.r53(kind, ident))

    return fn


def _arc_get(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("route53-recovery-cluster:GetRoutingControlState", q.get("RoutingControlArn") or "*")


def _arc_update(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("route53-recovery-cluster:UpdateRoutingControlState", q.get("RoutingControlArn") or "*")


def _arc_update_many(a: Arns, q: dict, ctx: Any) -> list[Check]:
    arns = [e.get("RoutingControlArn") for e in q.get("UpdateRoutingControlStateEntries") or [] if isinstance(e, dict)]
    return _one("route53-recovery-cluster:UpdateRoutingControlStates", *[x for x in arns if x])


def _iam_simulate(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("iam:SimulatePrincipalPolicy", q.get("PolicySourceArn") or "*")


def _iam_get_role(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("iam:GetRole", a.iam("role", q.get("RoleName")))


def _sts_assume(a: Arns, q: dict, ctx: Any) -> list[Check]:
    return _one("sts:AssumeRole", q.get("RoleArn") or "*")


TABLE: dict[tuple[str, str], Any] = {
    ("rds", "DescribeDBClusters"): _rds_clusters,
    ("rds", "ModifyDBCluster"): _rds_modify_cluster,
    ("rds", "DescribeGlobalClusters"): _rds_globals,
    ("rds", "FailoverGlobalCluster"): _rds_global_op("rds:FailoverGlobalCluster", "TargetDbClusterIdentifier"),
    ("rds", "SwitchoverGlobalCluster"): _rds_global_op("rds:SwitchoverGlobalCluster", "TargetDbClusterIdentifier"),
    ("rds", "RemoveFromGlobalCluster"): _rds_global_op("rds:RemoveFromGlobalCluster", "DbClusterIdentifier"),
    ("rds", "CopyDBClusterSnapshot"): _rds_copy_snapshot,
    ("rds", "DescribeDBClusterSnapshots"): _rds_snapshots,
    ("rds", "DescribeDBInstances"): _rds_instances,
    ("elasticache", "DescribeGlobalReplicationGroups"): _ec_globals,
    ("elasticache", "DescribeReplicationGroups"): _ec_groups,
    ("elasticache", "FailoverGlobalReplicationGroup"): _ec_failover,
    ("elasticache", "DisassociateGlobalReplicationGroup"): _ec_disassociate,
    ("route53", "ChangeResourceRecordSets"): _r53("route53:ChangeResourceRecordSets", "hostedzone", "Id"),
    ("route53", "ListResourceRecordSets"): _r53("route53:ListResourceRecordSets", "hostedzone", "Id"),
    ("route53", "GetHostedZone"): _r53("route53:GetHostedZone", "hostedzone", "Id"),
    ("route53", "GetHostedZoneLimit"): _r53("route53:GetHostedZoneLimit", "hostedzone", "Id"),
    ("route53", "GetChange"): _r53("route53:GetChange", "change", "Id"),
    ("route53", "GetHealthCheck"): _r53("route53:GetHealthCheck", "healthcheck", "HealthCheckId"),
    ("route53", "UpdateHealthCheck"): _r53("route53:UpdateHealthCheck", "healthcheck", "HealthCheckId"),
    ("route53", "GetHealthCheckStatus"): _r53("route53:GetHealthCheckStatus", "healthcheck", "HealthCheckId"),
    ("route53", "DeleteHealthCheck"): _r53("route53:DeleteHealthCheck", "healthcheck", "HealthCheckId"),
    ("route53-recovery-cluster", "GetRoutingControlState"): _arc_get,
    ("route53-recovery-cluster", "UpdateRoutingControlState"): _arc_update,
    ("route53-recovery-cluster", "UpdateRoutingControlStates"): _arc_update_many,
    ("ecs", "DescribeServices"): _ecs_describe_services,
    ("ecs", "UpdateService"): _ecs_update_service,
    ("ecs", "DescribeClusters"): _ecs_describe_clusters,
    # No resource-level permissions: `*` (Service Authorization Reference).
    ("autoscaling", "DescribeAutoScalingGroups"): lambda a, q, ctx: _one("autoscaling:DescribeAutoScalingGroups", "*"),
    ("autoscaling", "UpdateAutoScalingGroup"): _asg_update,
    ("iam", "SimulatePrincipalPolicy"): _iam_simulate,
    ("iam", "GetRole"): _iam_get_role,
    ("sts", "AssumeRole"): _sts_assume,
}


# ---------------------------------------------------------------------- S3
# Operation -> (IAM action, action when a versionId is given, on the object or bucket).
S3_OBJECT_OPS = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
    "PutObject": ("s3:PutObject", "s3:PutObject"),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    "PutObjectTagging": ("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    "CreateMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "UploadPart": ("s3:PutObject", "s3:PutObject"),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload"),
}
S3_BUCKET_OPS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "GetBucketReplication": "s3:GetReplicationConfiguration",
    "PutBucketReplication": "s3:PutReplicationConfiguration",
    "DeleteBucketReplication": "s3:PutReplicationConfiguration",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetBucketLocation": "s3:GetBucketLocation",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "GetBucketTagging": "s3:GetBucketTagging",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def s3_bucket_key(ctx: Any, environ: dict) -> tuple[str | None, str | None]:
    bucket = ctx.uri_params.get("Bucket")
    key = ctx.uri_params.get("Key")
    if bucket is None:
        # Virtual-hosted style: BUCKET.s3.REGION.amazonaws.com / BUCKET.localhost.
        host = (environ.get("HTTP_HOST") or "").split(":", 1)[0]
        if host.count(".") >= 1 and not host.replace(".", "").isdigit():
            bucket = host.split(".", 1)[0]
    return bucket, (unquote(key) if isinstance(key, str) else key)


def s3_checks(ctx: Any, environ: dict, p: str) -> list[Check]:
    op = ctx.operation or ""
    bucket, key = s3_bucket_key(ctx, environ)
    version = (ctx.query.get("versionId") or [None])[0]
    if op == "ListBuckets":
        return [Check("s3:ListAllMyBuckets", ["*"])]
    if op in S3_OBJECT_OPS:
        plain, versioned = S3_OBJECT_OPS[op]
        return [Check(versioned if version else plain, [f"arn:{p}:s3:::{bucket}/{key}"])]
    if op == "CopyObject":
        source = unquote(environ.get("HTTP_X_AMZ_COPY_SOURCE") or "").lstrip("/").split("?", 1)[0]
        return [
            Check("s3:PutObject", [f"arn:{p}:s3:::{bucket}/{key}"]),
            Check("s3:GetObject", [f"arn:{p}:s3:::{source}"]),
        ]
    if op == "DeleteObjects":
        return s3_delete_objects(environ, p, bucket)
    if op in S3_BUCKET_OPS:
        return [Check(S3_BUCKET_OPS[op], [f"arn:{p}:s3:::{bucket}"])]
    raise Denied(403, "AccessDenied", f"the emulator knows no IAM action for the S3 operation {op or '(unrecognised)'}; refused")


def s3_delete_objects(environ: dict, p: str, bucket: str | None) -> list[Check]:
    """DeleteObjects is authorized per key (s3:DeleteObject, or s3:DeleteObjectVersion
    with a VersionId). AWS answers a denied key in the response's Errors; the emulator
    refuses the whole request instead (documented in the README)."""
    raw = read_body(environ)
    out: list[Check] = []
    try:
        root = ET.fromstring(raw or b"<Delete/>")
    except ET.ParseError:
        return [Check("s3:DeleteObject", [f"arn:{p}:s3:::{bucket}/*"])]
    for obj in root.iter():
        if not obj.tag.endswith("Object"):
            continue
        key = version = None
        for child in obj:
            if child.tag.endswith("Key"):
                key = child.text or ""
            elif child.tag.endswith("VersionId"):
                version = child.text
        out.append(Check("s3:DeleteObjectVersion" if version else "s3:DeleteObject", [f"arn:{p}:s3:::{bucket}/{key}"]))
    return out


def root_identity(caller: Caller) -> tuple[int, list[tuple[str, str]], bytes]:
    """GetCallerIdentity of the administrator: the account's root user, as AWS answers
    for root credentials (moto would name a user `moto`)."""
    import uuid
    from xml.sax.saxutils import escape

    p = caller.principal
    body = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<GetCallerIdentityResult><Arn>{escape(p.arn)}</Arn><UserId>{escape(p.account)}</UserId>"
        f"<Account>{escape(p.account)}</Account></GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()
    return 200, [("Content-Type", "text/xml")], body


class Enforcer:
    """The hook app.py calls around every AWS request when `iam.enforce` is on."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu

    def before(self, ctx: Any, environ: dict) -> tuple[Caller | None, tuple[int, list, bytes] | None]:
        """(the caller, None) when the request may go on; (None, error response) when not."""
        try:
            caller = caller_for(self.emu.account_id, environ, ctx)
            if caller.is_root and (ctx.service, ctx.operation) == ("sts", "GetCallerIdentity"):
                return None, root_identity(caller)
            if (ctx.service, ctx.operation) not in ALWAYS_ALLOWED:
                authorize(caller, checks(ctx, environ, self.emu.account_id))
        except Denied as e:
            return None, denial(ctx, e)
        return caller, None

    def after(self, caller: Caller, ctx: Any, environ: dict, status: int, headers: list, body: bytes) -> tuple[int, list, bytes] | None:
        """S3 answers a read of a missing key with 403, not 404, to a caller without
        s3:ListBucket on the bucket (S3 User Guide, GetObject/HeadObject permissions)."""
        if ctx.service == "s3" and ctx.operation in ("GetObject", "HeadObject") and status == 404:
            bucket, _ = s3_bucket_key(ctx, environ)
            if not allowed(caller, Check("s3:ListBucket", [f"arn:{partition_of(ctx.region)}:s3:::{bucket}"])):
                st, hdrs, out = error_response("rest-xml", "s3", 403, "AccessDenied", "Access Denied", True)
                return st, hdrs, out
        return None
