"""IAM's policy simulator (ext/iam.py) through boto3, and who an access key belongs to
(iam_eval.principal_for_access_key) in the emulator and in-process."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

ACC = "111122223333"
CLUSTER = f"arn:aws:rds:us-east-1:{ACC}:cluster:prod"
OTHER_CLUSTER = f"arn:aws:rds:us-east-1:{ACC}:cluster:dev"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


@pytest.fixture
def iam(emu: Any) -> Any:
    return emu.client("iam")


@pytest.fixture
def alice(iam: Any) -> str:
    """A user with an inline policy, an attached customer managed policy and a group
    (with an inline and an attached policy of its own)."""
    arn = iam.create_user(UserName="alice", Path="/ops/")["User"]["Arn"]
    iam.put_user_policy(
        UserName="alice",
        PolicyName="alice-inline",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"},
            {"Effect": "Allow", "Action": "rds:FailoverGlobalCluster", "Resource": CLUSTER},
            {"Effect": "Deny", "Action": "rds:DeleteDBCluster", "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
        ),
    )
    managed = iam.create_policy(
        PolicyName="route53-read",
        PolicyDocument=doc({"Effect": "Allow", "Action": ["route53:GetChange", "route53:GetHealthCheckStatus"], "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.attach_user_policy(UserName="alice", PolicyArn=managed)
    iam.create_group(GroupName="dr-operators")
    iam.add_user_to_group(GroupName="dr-operators", UserName="alice")
    iam.put_group_policy(
        GroupName="dr-operators",
        PolicyName="arc",
        PolicyDocument=doc(
            {"Effect": "Allow", "Action": "route53-recovery-cluster:UpdateRoutingControlState", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}}},
        ),
    )
    group_managed = iam.create_policy(
        PolicyName="no-cloudwatch-writes",
        PolicyDocument=doc({"Effect": "Deny", "Action": "cloudwatch:Put*", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="dr-operators", PolicyArn=group_managed)
    return arn


def simulate(iam: Any, arn: str, actions: list[str], **kw: Any) -> dict[str, dict[str, Any]]:
    out = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions, **kw)
    return {r["EvalActionName"]: r for r in out["EvaluationResults"]}


def test_decisions_from_inline_managed_and_group_policies(iam: Any, alice: str) -> None:
    assert alice == f"arn:aws:iam::{ACC}:user/ops/alice"
    r = simulate(
        iam, alice,
        ["rds:DescribeGlobalClusters", "route53:GetChange", "cloudwatch:PutMetricData", "rds:DeleteDBCluster", "rds:RebootDBCluster", "RDS:describedbclusters"],
    )
    assert {a: x["EvalDecision"] for a, x in r.items()} == {
        "rds:DescribeGlobalClusters": "allowed",  # user inline
        "route53:GetChange": "allowed",  # attached customer managed
        "cloudwatch:PutMetricData": "explicitDeny",  # the group's managed policy
        "rds:DeleteDBCluster": "explicitDeny",  # user inline Deny
        "rds:RebootDBCluster": "implicitDeny",
        "RDS:describedbclusters": "allowed",  # actions are case-insensitive; the name is echoed
    }
    assert all(x["EvalResourceName"] == "*" for x in r.values())
    assert "ResourceSpecificResults" not in r["rds:DescribeGlobalClusters"]
    (stmt,) = r["rds:DescribeGlobalClusters"]["MatchedStatements"]
    assert (stmt["SourcePolicyId"], stmt["SourcePolicyType"]) == ("alice-inline", "user")
    assert stmt["StartPosition"] == {"Line": 4, "Column": 5} and stmt["EndPosition"] == {"Line": 8, "Column": 5}
    (stmt,) = r["route53:GetChange"]["MatchedStatements"]
    assert (stmt["SourcePolicyId"], stmt["SourcePolicyType"]) == ("route53-read", "user-managed")
    (stmt,) = r["cloudwatch:PutMetricData"]["MatchedStatements"]
    assert (stmt["SourcePolicyId"], stmt["SourcePolicyType"]) == ("no-cloudwatch-writes", "user-managed")
    assert r["rds:RebootDBCluster"]["MatchedStatements"] == []


def test_group_policy_with_context_entries(iam: Any, alice: str) -> None:
    action = "route53-recovery-cluster:UpdateRoutingControlState"
    r = simulate(iam, alice, [action])[action]
    assert r["EvalDecision"] == "implicitDeny"
    assert "aws:RequestedRegion" in r["MissingContextValues"]
    entry = {"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": ["us-west-2"], "ContextKeyType": "string"}
    r = simulate(iam, alice, [action], ContextEntries=[entry])[action]
    assert r["EvalDecision"] == "allowed"
    assert "aws:RequestedRegion" not in r["MissingContextValues"]
    assert r["MatchedStatements"][0]["SourcePolicyType"] == "group"
    entry["ContextKeyValues"] = ["eu-west-1"]
    assert simulate(iam, alice, [action], ContextEntries=[entry])[action]["EvalDecision"] == "implicitDeny"


def test_resource_arns_give_resource_specific_results(iam: Any, alice: str) -> None:
    r = simulate(iam, alice, ["rds:FailoverGlobalCluster"], ResourceArns=[CLUSTER, OTHER_CLUSTER])["rds:FailoverGlobalCluster"]
    # One result per action; the most restrictive decision at the top.
    assert r["EvalDecision"] == "implicitDeny"
    assert r["MatchedStatements"] == []
    assert [(x["EvalResourceName"], x["EvalResourceDecision"]) for x in r["ResourceSpecificResults"]] == [
        (CLUSTER, "allowed"),
        (OTHER_CLUSTER, "implicitDeny"),
    ]
    assert r["ResourceSpecificResults"][0]["MatchedStatements"][0]["SourcePolicyId"] == "alice-inline"
    # One resource (what drpilot's preflight sends).
    r = simulate(iam, alice, ["rds:FailoverGlobalCluster", "rds:DeleteDBCluster"], ResourceArns=[CLUSTER])
    assert r["rds:FailoverGlobalCluster"]["EvalDecision"] == "allowed"
    assert r["rds:DeleteDBCluster"]["EvalDecision"] == "explicitDeny"
    assert r["rds:DeleteDBCluster"]["ResourceSpecificResults"][0]["EvalResourceDecision"] == "explicitDeny"


def test_policy_variables_use_the_simulated_caller(iam: Any, alice: str) -> None:
    r = simulate(iam, alice, ["s3:GetObject"], ResourceArns=["arn:aws:s3:::home/alice/x", "arn:aws:s3:::home/bob/x"])
    assert [x["EvalResourceDecision"] for x in r["s3:GetObject"]["ResourceSpecificResults"]] == ["allowed", "implicitDeny"]
    # CallerArn: bob with alice's policies.
    iam.create_user(UserName="bob")
    r = simulate(iam, alice, ["s3:GetObject"], ResourceArns=["arn:aws:s3:::home/bob/x"], CallerArn=f"arn:aws:iam::{ACC}:user/bob")
    assert r["s3:GetObject"]["EvalDecision"] == "allowed"


def test_paging_with_max_items(iam: Any, alice: str) -> None:
    actions = ["rds:DescribeDBClusters", "rds:DeleteDBCluster", "rds:RebootDBCluster"]
    page = iam.simulate_principal_policy(PolicySourceArn=alice, ActionNames=actions, MaxItems=1)
    assert page["IsTruncated"] is True
    assert [r["EvalActionName"] for r in page["EvaluationResults"]] == ["rds:DescribeDBClusters"]
    seen, decisions = [], []
    marker = None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = iam.simulate_principal_policy(PolicySourceArn=alice, ActionNames=actions, MaxItems=1, **kw)
        assert len(page["EvaluationResults"]) == 1
        seen += [r["EvalActionName"] for r in page["EvaluationResults"]]
        decisions += [r["EvalDecision"] for r in page["EvaluationResults"]]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        marker = page["Marker"]
    assert seen == actions
    assert decisions == ["allowed", "explicitDeny", "implicitDeny"]
    # boto3's paginator follows Marker/IsTruncated the same way.
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=alice, ActionNames=actions, PaginationConfig={"PageSize": 2}
    )
    assert [len(p["EvaluationResults"]) for p in pages] == [2, 1]


def test_unknown_entity_and_bad_arn(iam: Any, alice: str) -> None:
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACC}:user/nobody", ActionNames=["s3:GetObject"])
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # The path is part of the ARN.
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACC}:user/alice", ActionNames=["s3:GetObject"])
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{ACC}:role/none", ActionNames=["s3:GetObject"])
    assert e.value.response["Error"]["Code"] == "NoSuchEntity"
    for bad in ("arn:aws:s3:::some-bucket-name", "not an arn at all, really"):
        with pytest.raises(ClientError) as e:
            iam.simulate_principal_policy(PolicySourceArn=bad, ActionNames=["s3:GetObject"])
        assert e.value.response["Error"]["Code"] == "InvalidInput"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        iam.simulate_principal_policy(PolicySourceArn=alice, ActionNames=["GetObject"])
    assert e.value.response["Error"]["Code"] == "InvalidInput"


def test_required_action_names_and_max_items_range(emu: Any, alice: str) -> None:
    raw = emu.client("iam", parameter_validation=False)
    with pytest.raises(ClientError) as e:
        raw.simulate_principal_policy(PolicySourceArn=alice)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as e:
        raw.simulate_principal_policy(PolicySourceArn=alice, ActionNames=["s3:GetObject"], MaxItems=0)
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_role_with_permissions_boundary_and_input_policies(iam: Any) -> None:
    trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    boundary = iam.create_policy(PolicyName="boundary", PolicyDocument=doc({"Effect": "Allow", "Action": "rds:*", "Resource": "*"}))["Policy"]["Arn"]
    role = iam.create_role(RoleName="drpilot", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary)["Role"]["Arn"]
    iam.put_role_policy(RoleName="drpilot", PolicyName="ops", PolicyDocument=doc({"Effect": "Allow", "Action": ["rds:*", "s3:*"], "Resource": "*"}))
    r = simulate(iam, role, ["rds:FailoverGlobalCluster", "s3:GetObject"])
    assert r["rds:FailoverGlobalCluster"]["EvalDecision"] == "allowed"
    assert r["rds:FailoverGlobalCluster"]["MatchedStatements"][0]["SourcePolicyType"] == "role"
    assert r["rds:FailoverGlobalCluster"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert r["s3:GetObject"]["EvalDecision"] == "implicitDeny"  # outside the boundary
    assert r["s3:GetObject"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    # A boundary given in the request replaces the role's.
    r = simulate(iam, role, ["s3:GetObject", "rds:FailoverGlobalCluster"], PermissionsBoundaryPolicyInputList=[doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})])
    assert r["s3:GetObject"]["EvalDecision"] == "allowed"
    assert r["rds:FailoverGlobalCluster"]["EvalDecision"] == "implicitDeny"  # the role's own boundary no longer counts
    # PolicyInputList: extra identity policies.
    r = simulate(iam, role, ["rds:DeleteDBCluster"], PolicyInputList=[doc({"Effect": "Deny", "Action": "rds:Delete*", "Resource": "*"})])
    (stmt,) = r["rds:DeleteDBCluster"]["MatchedStatements"]
    assert r["rds:DeleteDBCluster"]["EvalDecision"] == "explicitDeny"
    assert (stmt["SourcePolicyId"], stmt["SourcePolicyType"]) == ("PolicyInputList.1", "IAM Policy")


def test_group_as_policy_source(iam: Any, alice: str) -> None:
    r = simulate(iam, f"arn:aws:iam::{ACC}:group/dr-operators", ["cloudwatch:PutMetricData", "rds:DescribeDBClusters"])
    assert r["cloudwatch:PutMetricData"]["EvalDecision"] == "explicitDeny"
    assert r["rds:DescribeDBClusters"]["EvalDecision"] == "implicitDeny"  # alice's own policy is not the group's


def test_simulate_custom_policy_and_context_keys(iam: Any, alice: str) -> None:
    policy = doc(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2018-08-16T12:00:00Z"}}}
    )
    out = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["dynamodb:CreateBackup"],
        ContextEntries=[{"ContextKeyName": "aws:CurrentTime", "ContextKeyValues": ["2019-04-25T11:00:00Z"], "ContextKeyType": "date"}],
    )
    (r,) = out["EvaluationResults"]
    assert (r["EvalDecision"], r["MatchedStatements"][0]["SourcePolicyId"]) == ("allowed", "PolicyInputList.1")
    out = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=["dynamodb:CreateBackup"])
    (r,) = out["EvaluationResults"]
    assert (r["EvalDecision"], r["MissingContextValues"]) == ("implicitDeny", ["aws:CurrentTime"])
    # Service control policies: each level must allow.
    scp_root = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    scp_account = doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    out = iam.simulate_custom_policy(
        PolicyInputList=[doc({"Effect": "Allow", "Action": "*", "Resource": "*"})],
        ActionNames=["s3:GetObject", "dynamodb:CreateBackup"],
        OrderedOrganizationPolicyInputList=[
            {"ServiceControlPolicyInputList": [scp_root]},
            {"ServiceControlPolicyInputList": [scp_account]},
        ],
    )
    r = {x["EvalActionName"]: x for x in out["EvaluationResults"]}
    assert r["s3:GetObject"]["EvalDecision"] == "allowed"
    assert r["s3:GetObject"]["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": True}
    assert r["dynamodb:CreateBackup"]["EvalDecision"] == "implicitDeny"
    assert r["dynamodb:CreateBackup"]["OrganizationsDecisionDetail"] == {"AllowedByOrganizations": False}
    keys = iam.get_context_keys_for_principal_policy(PolicySourceArn=alice)["ContextKeyNames"]
    assert {k.lower() for k in keys} == {"aws:username", "aws:requestedregion"}


# --------------------------------------------------------------------------- principal_for_access_key


def test_principal_for_access_key_in_the_emulator(emu: Any, iam: Any, alice: str) -> None:
    key = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    got = emu.control("GET", f"/_drpilot/iam/principal?access_key_id={key}")
    assert got["principal"]["arn"] == alice
    assert (got["principal"]["kind"], got["principal"]["name"]) == ("user", "alice")
    assert got["principal"]["userid"] == iam.get_user(UserName="alice")["User"]["UserId"]
    assert [(p["source_id"], p["source_type"]) for p in got["policies"]] == [
        ("alice-inline", "user"),
        ("route53-read", "user-managed"),
        ("arc", "group"),
        ("no-cloudwatch-writes", "user-managed"),
    ]
    iam.update_access_key(UserName="alice", AccessKeyId=key, Status="Inactive")
    emu.control("GET", f"/_drpilot/iam/principal?access_key_id={key}", expect=404)
    emu.control("GET", "/_drpilot/iam/principal?access_key_id=AKIAUNKNOWNKEY000000", expect=404)
    got = emu.control("GET", f"/_drpilot/iam/principal?arn=arn:aws:iam::{ACC}:group/dr-operators")
    assert got["principal"]["kind"] == "group"


def test_principal_for_access_key_in_process() -> None:
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID

    from drpilot_emulator.iam_eval import authorize, principal_for_access_key, principal_policies

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="carol")
        iam.put_user_policy(UserName="carol", PolicyName="p", PolicyDocument=doc({"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}))
        key = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
        found = principal_for_access_key(DEFAULT_ACCOUNT_ID, key)
        assert found is not None
        principal, policies = found
        assert (principal.kind, principal.name, principal.arn) == ("user", "carol", f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/carol")
        assert authorize(policies, "rds:DescribeDBClusters", ["*"], {}, principal) == (True, None)
        assert not authorize(policies, "rds:DeleteDBCluster", ["*"], {}, principal)[0]
        assert principal_for_access_key(DEFAULT_ACCOUNT_ID, "AKIAUNKNOWNKEY000000") is None
        iam.update_access_key(UserName="carol", AccessKeyId=key, Status="Inactive")
        assert principal_for_access_key(DEFAULT_ACCOUNT_ID, key) is None
        # A role session from STS: the role's policies, the session ARN for messages.
        trust = doc({"Effect": "Allow", "Principal": {"AWS": DEFAULT_ACCOUNT_ID}, "Action": "sts:AssumeRole"})
        role_arn = iam.create_role(RoleName="runner", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam.put_role_policy(RoleName="runner", PolicyName="r", PolicyDocument=doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
        creds = boto3.client("sts", region_name="us-east-1").assume_role(RoleArn=role_arn, RoleSessionName="run-7")["Credentials"]
        principal, policies = principal_for_access_key(DEFAULT_ACCOUNT_ID, creds["AccessKeyId"])  # type: ignore[misc]
        assert (principal.kind, principal.arn) == ("role", role_arn)
        assert principal.session_arn == f"arn:aws:sts::{DEFAULT_ACCOUNT_ID}:assumed-role/runner/run-7"
        assert principal.userid.endswith(":run-7")
        ok, msg = authorize(policies, "rds:DescribeDBClusters", ["*"], {}, principal)
        assert not ok and msg.startswith(f"User: {principal.session_arn} is not authorized")
        assert principal_policies(DEFAULT_ACCOUNT_ID, role_arn)[0].kind == "role"  # type: ignore[index]
        assert principal_policies(DEFAULT_ACCOUNT_ID, f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:user/nobody") is None
