"""IAM enforcement (`start --enforce-iam`, config `iam.enforce`): every AWS request
authorized against its caller's policies; the administrator key acts as root; unknown
keys refused as AWS refuses them; `seed --iam-user`."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCOUNT, EMULATOR_DIR

GLOBAL = f"arn:aws:rds::{ACCOUNT}:global-cluster:acme-prod"


def client(emu: Any, service: str, key: dict[str, str], region: str = "us-east-1") -> Any:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=emu.url,
        aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=key["secret_access_key"],
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def user(emu: Any, name: str, *statements: dict[str, Any]) -> dict[str, str]:
    """An IAM user holding these statements (a managed policy), and its access key."""
    iam = emu.client("iam")
    policy = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    arn = iam.create_policy(PolicyName=f"{name}-p", PolicyDocument=policy)["Policy"]["Arn"]
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}


def code(e: pytest.ExceptionInfo) -> tuple[str, int, str]:
    err = e.value.response["Error"]  # type: ignore[attr-defined]
    return err["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"], err.get("Message", "")  # type: ignore[attr-defined]


@pytest.fixture
def enforcing(emu: Any, stack: dict) -> Any:
    emu.config({"iam": {"enforce": True}})
    return emu


def test_off_by_default_any_key_is_served(emu: Any, stack: dict) -> None:
    rds = client(emu, "rds", {"access_key_id": "AKIDANYONE", "secret_access_key": "x"})
    assert rds.describe_global_clusters()["GlobalClusters"]


def test_unknown_keys_are_refused_with_each_services_code(enforcing: Any) -> None:
    nobody = {"access_key_id": "AKIDNOBODY0000000000", "secret_access_key": "x"}
    with pytest.raises(ClientError) as e:
        client(enforcing, "rds", nobody).describe_db_clusters()
    assert code(e)[:2] == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as e:
        client(enforcing, "s3", nobody).list_buckets()
    assert code(e)[:2] == ("InvalidAccessKeyId", 403)
    with pytest.raises(ClientError) as e:
        client(enforcing, "route53-recovery-cluster", nobody, "us-west-2").get_routing_control_state(
            RoutingControlArn=f"arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/x/routingcontrol/y"
        )
    assert code(e)[:2] == ("UnrecognizedClientException", 403)


def test_the_administrator_acts_as_root(enforcing: Any) -> None:
    assert enforcing.client("rds").describe_db_clusters()["DBClusters"]
    arn = enforcing.client("sts").get_caller_identity()["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:root"


def test_a_user_may_do_what_its_policy_allows_on_the_resources_it_names(enforcing: Any) -> None:
    key = user(
        enforcing,
        "reader",
        {"Effect": "Allow", "Action": "rds:describeglobalclusters", "Resource": GLOBAL},
        {"Effect": "Allow", "Action": "rds:DescribeDBClusters", "Resource": f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:*"},
        {"Effect": "Deny", "Action": "rds:DescribeDBClusters", "Resource": f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:acme-prod-usw2"},
    )
    # Action names are case-insensitive; the named global cluster is readable...
    rds = client(enforcing, "rds", key)
    assert rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"]
    # ...listing every global cluster is another resource (global-cluster:*).
    with pytest.raises(ClientError) as e:
        rds.describe_global_clusters()
    c, status, message = code(e)
    assert (c, status) == ("AccessDenied", 403)
    assert f"user/reader is not authorized to perform: rds:DescribeGlobalClusters on resource: arn:aws:rds::{ACCOUNT}:global-cluster:*" in message
    # Region-scoped: us-west-2 listing allowed, us-east-1 not; an explicit deny wins.
    west = client(enforcing, "rds", key, "us-west-2")
    assert west.describe_db_clusters()["DBClusters"]
    with pytest.raises(ClientError) as e:
        west.describe_db_clusters(DBClusterIdentifier="acme-prod-usw2")
    assert "explicit deny" in code(e)[2]
    with pytest.raises(ClientError) as e:
        rds.describe_db_clusters()
    assert code(e)[0] == "AccessDenied"
    # GetCallerIdentity needs no permission.
    assert client(enforcing, "sts", key).get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/reader"


def test_a_mutation_needs_every_resource_it_touches(enforcing: Any, stack: dict) -> None:
    target = f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:acme-prod-usw2"
    only_global = user(enforcing, "half", {"Effect": "Allow", "Action": "rds:FailoverGlobalCluster", "Resource": GLOBAL})
    with pytest.raises(ClientError) as e:
        client(enforcing, "rds", only_global, "us-west-2").failover_global_cluster(
            GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True
        )
    assert code(e)[0] == "AccessDenied" and target in code(e)[2]
    both = user(enforcing, "whole", {"Effect": "Allow", "Action": "rds:FailoverGlobalCluster", "Resource": [GLOBAL, target]})
    out = client(enforcing, "rds", both, "us-west-2").failover_global_cluster(
        GlobalClusterIdentifier="acme-prod", TargetDbClusterIdentifier=target, AllowDataLoss=True
    )
    assert out["GlobalCluster"]["GlobalClusterIdentifier"] == "acme-prod"


def test_a_capacity_range_needs_modify_db_cluster_on_the_cluster(enforcing: Any, stack: dict) -> None:
    west = f"arn:aws:rds:us-west-2:{ACCOUNT}:cluster:acme-prod-usw2"
    east = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:acme-prod-use1"
    key = user(
        enforcing,
        "scaler",
        {"Effect": "Allow", "Action": "rds:ModifyDBCluster", "Resource": west},
        {"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": f"arn:aws:rds:us-west-2:{ACCOUNT}:db:*"},
    )
    config = {"MinCapacity": 2, "MaxCapacity": 64}
    rds = client(enforcing, "rds", key, "us-west-2")
    out = rds.modify_db_cluster(DBClusterIdentifier=west, ServerlessV2ScalingConfiguration=config, ApplyImmediately=True)
    assert out["DBCluster"]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 2.0, "MaxCapacity": 64.0}
    # By identifier too: the resource is the cluster of the request's Region.
    rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [west]}])
    with pytest.raises(ClientError) as e:
        client(enforcing, "rds", key, "us-east-1").modify_db_cluster(DBClusterIdentifier=east, ServerlessV2ScalingConfiguration=config)
    assert code(e)[0] == "AccessDenied" and east in code(e)[2]
    with pytest.raises(ClientError) as e:
        client(enforcing, "rds", key, "us-east-1").describe_db_instances()
    assert code(e)[0] == "AccessDenied"


def test_s3_actions_follow_the_authorization_reference_not_the_operation_names(enforcing: Any, stack: dict) -> None:
    bucket = "acme-prod-assets-use1"
    enforcing.client("s3").put_object(Bucket=bucket, Key="k", Body=b"x")
    reader = user(enforcing, "s3reader", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3 = client(enforcing, "s3", reader)
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1
    # Without s3:ListBucket a missing key is 403, not 404 (S3 does not say what exists).
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket)
    assert code(e)[:2] == ("AccessDenied", 403)
    lister = user(
        enforcing,
        "s3lister",
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
    )
    s3 = client(enforcing, "s3", lister)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="missing")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] >= 1
    # GetBucketReplication is s3:GetReplicationConfiguration.
    with pytest.raises(ClientError) as e:
        s3.get_bucket_replication(Bucket=bucket)
    assert "s3:GetReplicationConfiguration" in code(e)[2]
    # A versioned delete is s3:DeleteObjectVersion, per key of DeleteObjects.
    deleter = user(enforcing, "s3deleter", {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/*"})
    s3 = client(enforcing, "s3", deleter)
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "VersionId": "v1"}]})
    assert "s3:DeleteObjectVersion" in code(e)[2]


def test_ecs_actions_are_authorized_on_the_service_and_cluster_arns(enforcing: Any, stack: dict) -> None:
    west = f"arn:aws:ecs:us-west-2:{ACCOUNT}"
    key = user(
        enforcing,
        "scaler",
        {"Effect": "Allow", "Action": ["ecs:DescribeServices", "ecs:UpdateService"], "Resource": f"{west}:service/acme-prod/*"},
        {"Effect": "Deny", "Action": "ecs:UpdateService", "Resource": f"{west}:service/acme-prod/api"},
        {"Effect": "Allow", "Action": "ecs:DescribeClusters", "Resource": f"{west}:cluster/acme-prod"},
    )
    ecs = client(enforcing, "ecs", key, "us-west-2")
    assert ecs.describe_services(cluster="acme-prod", services=["worker", "api"])["services"]
    assert ecs.describe_services(cluster=f"{west}:cluster/acme-prod", services=[f"{west}:service/acme-prod/worker"])["services"]
    assert ecs.update_service(cluster="acme-prod", service="worker", desiredCount=6)["service"]["desiredCount"] == 6
    assert ecs.describe_clusters(clusters=["acme-prod"])["clusters"]
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster="acme-prod", service="api", desiredCount=4)
    c, status, message = code(e)
    assert (c, status) == ("AccessDeniedException", 400)
    assert f"ecs:UpdateService on resource: {west}:service/acme-prod/api" in message and "explicit deny" in message
    # Another Region's services and another cluster are other resources.
    with pytest.raises(ClientError) as e:
        client(enforcing, "ecs", key).describe_services(cluster="acme-prod", services=["worker"])
    assert code(e)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        ecs.describe_clusters(clusters=["other"])
    assert f"ecs:DescribeClusters on resource: {west}:cluster/other" in code(e)[2]
    # DescribeClusters without clusters is the default cluster.
    with pytest.raises(ClientError) as e:
        ecs.describe_clusters()
    assert f"{west}:cluster/default" in code(e)[2]


def test_update_auto_scaling_group_is_authorized_on_the_groups_arn_with_its_id(enforcing: Any, stack: dict) -> None:
    key = user(
        enforcing,
        "asg",
        {
            "Effect": "Allow",
            "Action": "autoscaling:UpdateAutoScalingGroup",
            "Resource": f"arn:aws:autoscaling:us-west-2:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/acme-prod-ecs-usw2",
        },
        {"Effect": "Allow", "Action": "autoscaling:DescribeAutoScalingGroups", "Resource": "*"},
    )
    west = client(enforcing, "autoscaling", key, "us-west-2")
    west.update_auto_scaling_group(AutoScalingGroupName="acme-prod-ecs-usw2", MinSize=3, DesiredCapacity=6)
    [g] = west.describe_auto_scaling_groups(AutoScalingGroupNames=["acme-prod-ecs-usw2"])["AutoScalingGroups"]
    assert g["DesiredCapacity"] == 6
    # The request is checked against the group's ARN, its id (a UUID) included.
    east = client(enforcing, "autoscaling", key)
    with pytest.raises(ClientError) as e:
        east.update_auto_scaling_group(AutoScalingGroupName="acme-prod-ecs-use1", DesiredCapacity=8)
    c, status, message = code(e)
    assert (c, status) == ("AccessDenied", 403)
    arn = stack["autoscaling"]["groups"]["acme-prod-ecs-use1"]["arn"]
    assert f"autoscaling:UpdateAutoScalingGroup on resource: {arn}" in message
    assert east.describe_auto_scaling_groups()["AutoScalingGroups"]
    only_update = user(
        enforcing,
        "asg2",
        {"Effect": "Allow", "Action": "autoscaling:UpdateAutoScalingGroup", "Resource": "*"},
    )
    with pytest.raises(ClientError) as e:
        client(enforcing, "autoscaling", only_update).describe_auto_scaling_groups()
    assert "autoscaling:DescribeAutoScalingGroups on resource: *" in code(e)[2]


def test_simulating_a_principal_needs_iam_simulate_principal_policy_on_it(enforcing: Any) -> None:
    key = user(
        enforcing,
        "sim",
        {"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": f"arn:aws:iam::{ACCOUNT}:user/sim"},
        {"Effect": "Allow", "Action": "rds:DescribeDBClusters", "Resource": "*"},
    )
    iam = client(enforcing, "iam", key)
    me = f"arn:aws:iam::{ACCOUNT}:user/sim"
    out = iam.simulate_principal_policy(PolicySourceArn=me, ActionNames=["rds:DescribeDBClusters", "rds:DeleteDBCluster"])
    decisions = {r["EvalActionName"]: r["EvalDecision"] for r in out["EvaluationResults"]}
    assert decisions == {"rds:DescribeDBClusters": "allowed", "rds:DeleteDBCluster": "implicitDeny"}
    user(enforcing, "other", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/other", ActionNames=["s3:GetObject"])
    assert code(e)[:2] == ("AccessDenied", 403)


def test_a_reset_keeps_enforcement_only_when_it_was_set_at_start(enforcing: Any) -> None:
    enforcing.control("POST", "/_drpilot/reset")
    assert enforcing.control("GET", "/_drpilot/config")["iam"]["enforce"] is False


# ---------------------------------------------------------------------- seed --iam-user
def seed_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EMULATOR_DIR / "seed"), "--endpoint", url, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "MOTO_ACCOUNT_ID": ACCOUNT},
        timeout=120,
    )


def test_seed_creates_users_holding_the_given_policies(enforcing: Any, tmp_path: Any) -> None:
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "rds:DescribeGlobalClusters", "Resource": GLOBAL}],
    }))
    out = seed_cli(enforcing.url, "--iam-user", f"drpilot={policy}", "--iam-user", f"second={policy}")
    assert out.returncode == 0, out.stderr
    users = json.loads(out.stdout)["iam_users"]
    assert set(users) == {"drpilot", "second"}
    assert json.loads(out.stdout)["account_id"] == ACCOUNT
    rds = client(enforcing, "rds", users["drpilot"])
    assert rds.describe_global_clusters(GlobalClusterIdentifier="acme-prod")["GlobalClusters"]
    with pytest.raises(ClientError):
        rds.describe_db_clusters()


def test_seed_refuses_bad_users_and_policies_and_creates_nothing(enforcing: Any, tmp_path: Any) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}))
    out = seed_cli(enforcing.url, "--iam-user", f"nobody={bad}")
    assert out.returncode == 1 and "MalformedPolicyDocument" in out.stderr, out.stderr
    names = [u["UserName"] for u in enforcing.client("iam").list_users()["Users"]]
    assert "nobody" not in names
    big = tmp_path / "big.json"
    big.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::b/{i:04}-{'x' * 40}" for i in range(200)]}],
    }))
    out = seed_cli(enforcing.url, "--iam-user", f"big={big}")
    assert out.returncode == 1 and "6144" in out.stderr, out.stderr
    out = seed_cli(enforcing.url, "--iam-user", "no-equals-sign")
    assert out.returncode == 1 and "NAME=POLICY.json" in out.stderr
    out = seed_cli(enforcing.url)
    assert out.returncode == 2 and "give a topology" in out.stderr
