"""drpilot_emulator.iam_eval: IAM's evaluation rules, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from drpilot_emulator.iam_eval import (
    Policy,
    Principal,
    arn_matches,
    authorize,
    context_keys,
    evaluate,
    statement_positions,
)

ACC = "111122223333"
ALICE = Principal(f"arn:aws:iam::{ACC}:user/ops/alice", ACC, "alice", "AIDAEXAMPLEALICE", "user", tags=(("team", "dr"),))
ROLE = Principal(
    f"arn:aws:iam::{ACC}:role/drpilot", ACC, None, "AROAEXAMPLEROLE:run-1", "role",
    session_arn=f"arn:aws:sts::{ACC}:assumed-role/drpilot/run-1",
)
ROOT = Principal(f"arn:aws:iam::{ACC}:root", ACC, None, ACC, "root")
CLUSTER = f"arn:aws:rds:us-east-1:{ACC}:cluster:prod"


def pol(*statements: dict[str, Any], version: str | None = "2012-10-17", name: str = "p", kind: str = "identity", single: bool = False) -> Policy:
    doc: dict[str, Any] = {}
    if version is not None:
        doc["Version"] = version
    doc["Statement"] = statements[0] if single else list(statements)
    return Policy(name, "user", doc, json.dumps(doc, indent=2), kind=kind)


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(policies: list[Policy] | Policy, action: str = "rds:DescribeDBClusters", resource: str = CLUSTER,
           context: dict[str, list[str]] | None = None, principal: Principal = ALICE) -> str:
    if isinstance(policies, Policy):
        policies = [policies]
    return evaluate(policies, action, resource, context or {}, principal).decision


def cond(condition: dict[str, Any], effect: str = "Allow") -> Policy:
    return pol({"Effect": effect, "Action": "*", "Resource": "*", "Condition": condition})


# --------------------------------------------------------------------------- evaluation logic


def test_no_policy_is_an_implicit_deny() -> None:
    d = evaluate([], "rds:DescribeDBClusters", CLUSTER, {}, ALICE)
    assert (d.decision, d.matched) == ("implicitDeny", [])


def test_allow_allows_and_names_its_statement() -> None:
    p = pol(allow("rds:Describe*"), allow("s3:*"))
    d = evaluate([p], "rds:DescribeDBClusters", CLUSTER, {}, ALICE)
    assert d.decision == "allowed"
    assert d.matched == [(p, 0)]


def test_explicit_deny_wins_over_allow_in_another_policy() -> None:
    a = pol(allow("rds:*"), name="a")
    b = pol(deny("rds:DescribeDBClusters", CLUSTER), name="b")
    d = evaluate([a, b], "rds:DescribeDBClusters", CLUSTER, {}, ALICE)
    assert d.decision == "explicitDeny"
    assert d.matched == [(b, 0)]  # the deny statement is the only one reported


def test_deny_of_another_resource_does_not_apply() -> None:
    p = pol(allow("rds:*"), deny("rds:*", f"arn:aws:rds:us-east-1:{ACC}:cluster:other"))
    assert decide(p) == "allowed"


def test_root_is_allowed_everything() -> None:
    assert decide(pol(deny()), principal=ROOT) == "allowed"


def test_statement_and_element_forms() -> None:
    # A single statement object (not a list), Action and Resource as lists.
    p = pol(allow(["s3:GetObject", "rds:DescribeDBClusters"], ["arn:aws:s3:::x", CLUSTER]), single=True)
    assert decide(p) == "allowed"
    assert decide(p, action="rds:DeleteDBCluster") == "implicitDeny"


# --------------------------------------------------------------------------- Action / NotAction


def test_action_is_case_insensitive_with_wildcards() -> None:
    p = pol(allow("RDS:describe*"))
    assert decide(p, action="rds:DescribeDBClusters") == "allowed"
    assert decide(pol(allow("rds:DescribeDBCluster?")), action="rds:describedbclusters") == "allowed"
    assert decide(pol(allow("rds:DescribeDBCluster?")), action="rds:DescribeDBCluster") == "implicitDeny"
    assert decide(pol(allow("rds:Describe*")), action="ec2:DescribeInstances") == "implicitDeny"


def test_not_action() -> None:
    p = pol({"Effect": "Allow", "NotAction": ["iam:*", "rds:Delete*"], "Resource": "*"})
    assert decide(p, action="rds:DescribeDBClusters") == "allowed"
    assert decide(p, action="rds:DeleteDBCluster") == "implicitDeny"
    assert decide(p, action="IAM:CreateUser") == "implicitDeny"
    d = pol(allow(), {"Effect": "Deny", "NotAction": "rds:Describe*", "Resource": "*"})
    assert decide(d, action="rds:DescribeDBClusters") == "allowed"
    assert decide(d, action="rds:FailoverGlobalCluster") == "explicitDeny"


# --------------------------------------------------------------------------- Resource / NotResource


def test_resource_is_case_sensitive() -> None:
    assert decide(pol(allow("*", f"arn:aws:rds:us-east-1:{ACC}:cluster:Prod"))) == "implicitDeny"
    assert decide(pol(allow("*", CLUSTER))) == "allowed"


def test_not_resource() -> None:
    p = pol({"Effect": "Allow", "Action": "rds:*", "NotResource": f"arn:aws:rds:*:{ACC}:cluster:prod"})
    assert decide(p) == "implicitDeny"
    assert decide(p, resource=f"arn:aws:rds:us-east-1:{ACC}:cluster:dev") == "allowed"


def test_star_matches_everything_even_non_arns() -> None:
    assert arn_matches("*", "*")
    assert arn_matches("*", CLUSTER)
    assert not arn_matches("arn:aws:rds:*:*:*", "*")


def test_wildcards_stay_inside_the_first_arn_segments() -> None:
    # The Condition operators page's example: the region '*' matches only "us-east-2".
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    assert arn_matches(pattern, "arn:aws:someservice:us-east-2:111122223333:finance/document.txt")
    assert not arn_matches(pattern, "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt")
    assert not arn_matches("arn:aws:rds:us-*:*:cluster:prod", "arn:aws:rds:us-east-1:x:y:cluster:prod")
    assert arn_matches("arn:aws:rds:us-?ast-1:*:cluster:prod", CLUSTER)
    assert not arn_matches("arn:aws:rds:us-?ast-1:*:cluster:prod", f"arn:aws:rds:us-west-1:{ACC}:cluster:prod")


def test_resource_part_wildcard_crosses_slash_and_colon() -> None:
    assert arn_matches("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c.txt")
    assert arn_matches(f"arn:aws:rds:us-east-1:{ACC}:*", CLUSTER)  # cluster:prod has a ':'
    assert arn_matches(f"arn:aws:rds:us-east-1:{ACC}:c*:prod", CLUSTER)
    assert not arn_matches("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket")


def test_short_pattern_ending_in_star_covers_the_rest() -> None:
    assert arn_matches("arn:aws:s3:*", "arn:aws:s3:::bucket/key")
    assert arn_matches("arn:aws:rds:us-east-1:*", CLUSTER)
    assert not arn_matches("arn:aws:rds:us-west-2:*", CLUSTER)
    assert not arn_matches("arn:aws:rds:us-east-1", CLUSTER)


# --------------------------------------------------------------------------- policy variables


def test_username_variable_in_resource() -> None:
    p = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    assert decide(p, "s3:GetObject", "arn:aws:s3:::home/alice/notes.txt") == "allowed"
    assert decide(p, "s3:GetObject", "arn:aws:s3:::home/bob/notes.txt") == "implicitDeny"


def test_absent_variable_makes_the_resource_value_match_nothing() -> None:
    # A role session has no aws:username: the value matches nothing, even the literal
    # text, and the key is reported missing.
    p = pol(allow("s3:*", ["arn:aws:s3:::home/${aws:username}/*", "arn:aws:s3:::public/*"]))
    d = evaluate([p], "s3:GetObject", "arn:aws:s3:::home/${aws:username}/x", {}, ROLE)
    assert d.decision == "implicitDeny"
    assert "aws:username" in d.missing_context
    assert decide(p, "s3:GetObject", "arn:aws:s3:::public/x", principal=ROLE) == "allowed"
    # ... and an absent variable in a Deny does not deny.
    q = pol(allow(), deny("s3:*", "arn:aws:s3:::home/${aws:username}/*"))
    assert decide(q, "s3:GetObject", "arn:aws:s3:::home/x/y", principal=ROLE) == "allowed"


def test_variable_default_and_special_characters() -> None:
    p = pol(allow("s3:*", "arn:aws:s3:::b/${aws:username, 'anonymous'}/*"))
    assert decide(p, "s3:GetObject", "arn:aws:s3:::b/anonymous/x", principal=ROLE) == "allowed"
    assert decide(p, "s3:GetObject", "arn:aws:s3:::b/alice/x") == "allowed"
    star = pol(allow("s3:*", "arn:aws:s3:::b/${*}"))
    assert decide(star, "s3:GetObject", "arn:aws:s3:::b/*") == "allowed"
    assert decide(star, "s3:GetObject", "arn:aws:s3:::b/anything") == "implicitDeny"
    assert decide(pol(allow("s3:*", "arn:aws:s3:::b/${?}${$}")), "s3:GetObject", "arn:aws:s3:::b/?$") == "allowed"


def test_substituted_values_are_literal() -> None:
    tagged = Principal(ALICE.arn, ACC, "alice", ALICE.userid, "user", tags=(("prefix", "a*"),))
    p = pol(allow("s3:*", "arn:aws:s3:::b/${aws:PrincipalTag/prefix}"))
    assert decide(p, "s3:GetObject", "arn:aws:s3:::b/a*", principal=tagged) == "allowed"
    assert decide(p, "s3:GetObject", "arn:aws:s3:::b/abc", principal=tagged) == "implicitDeny"


def test_principal_variables_and_context_override() -> None:
    p = pol(allow("rds:*", "arn:aws:rds:us-east-1:111122223333:cluster:${aws:PrincipalAccount}"))
    assert decide(p, resource=f"arn:aws:rds:us-east-1:{ACC}:cluster:{ACC}") == "allowed"
    u = pol(allow("iam:*", "arn:aws:iam::111122223333:user/*", Condition={"StringEquals": {"aws:userid": "${aws:userid}"}}))
    assert decide(u, "iam:GetUser", f"arn:aws:iam::{ACC}:user/x") == "allowed"
    # The request context wins over what the principal carries.
    home = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}"))
    assert decide(home, "s3:GetObject", "arn:aws:s3:::home/eve", {"aws:username": ["eve"]}) == "allowed"


def test_variables_only_in_the_resource_part_of_a_resource() -> None:
    # "You can't use a variable to replace parts of the ARN before the fifth colon."
    p = pol(allow("rds:*", "arn:aws:rds:us-east-1:${aws:PrincipalAccount}:cluster:prod"))
    assert decide(p) == "implicitDeny"


def test_version_2008_treats_variables_as_text() -> None:
    p = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}"), version="2008-10-17")
    assert decide(p, "s3:GetObject", "arn:aws:s3:::home/alice") == "implicitDeny"
    assert decide(p, "s3:GetObject", "arn:aws:s3:::home/${aws:username}") == "allowed"
    no_version = pol(allow("s3:*", "arn:aws:s3:::home/${aws:username}"), version=None)
    assert decide(no_version, "s3:GetObject", "arn:aws:s3:::home/alice") == "implicitDeny"
    c = pol(allow(Condition={"StringEquals": {"s3:prefix": "${aws:username}"}}), version="2008-10-17")
    assert decide(c, context={"s3:prefix": ["alice"]}) == "implicitDeny"
    assert decide(c, context={"s3:prefix": ["${aws:username}"]}) == "allowed"


def test_variable_in_condition_value() -> None:
    p = cond({"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}})
    assert decide(p, context={"s3:prefix": ["home/alice/x"]}) == "allowed"
    assert decide(p, context={"s3:prefix": ["home/bob/x"]}) == "implicitDeny"
    # Numeric operators take no variables: the text is compared as a number and fails.
    n = cond({"NumericEquals": {"s3:max-keys": "${aws:username}"}})
    assert decide(n, context={"s3:max-keys": ["1"]}) == "implicitDeny"


# --------------------------------------------------------------------------- conditions: logic


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    p = cond({"StringEquals": {"AWS:RequestedRegion": "us-east-1"}})
    assert decide(p, context={"aws:requestedregion": ["us-east-1"]}) == "allowed"
    assert decide(p, context={"aws:RequestedRegion": ["US-EAST-1"]}) == "implicitDeny"
    assert decide(cond({"StringEqualsIgnoreCase": {"aws:RequestedRegion": "us-east-1"}}),
                  context={"aws:RequestedRegion": ["US-EAST-1"]}) == "allowed"


def test_operators_and_keys_are_anded_values_ored() -> None:
    p = cond({
        "StringEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"], "rds:DatabaseEngine": "aurora-postgresql"},
        "Bool": {"aws:SecureTransport": "true"},
    })
    ok = {"aws:RequestedRegion": ["us-west-2"], "rds:DatabaseEngine": ["aurora-postgresql"], "aws:SecureTransport": ["true"]}
    assert decide(p, context=ok) == "allowed"
    assert decide(p, context={**ok, "aws:RequestedRegion": ["eu-west-1"]}) == "implicitDeny"
    assert decide(p, context={**ok, "aws:SecureTransport": ["false"]}) == "implicitDeny"
    assert decide(p, context={k: v for k, v in ok.items() if k != "rds:DatabaseEngine"}) == "implicitDeny"


def test_missing_key_is_false_and_recorded() -> None:
    p = cond({"StringEquals": {"aws:RequestedRegion": "us-east-1"}})
    d = evaluate([p], "rds:DescribeDBClusters", CLUSTER, {}, ALICE)
    assert d.decision == "implicitDeny"
    assert d.missing_context == ["aws:RequestedRegion"]


def test_negated_operator_with_several_values_is_a_nor() -> None:
    p = cond({"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}}, effect="Deny")
    both = [allow(), *p.document["Statement"]]
    q = pol(*both)
    assert decide(q, context={"aws:RequestedRegion": ["us-east-1"]}) == "allowed"
    assert decide(q, context={"aws:RequestedRegion": ["us-west-2"]}) == "allowed"
    assert decide(q, context={"aws:RequestedRegion": ["eu-west-1"]}) == "explicitDeny"


def test_negated_operator_with_missing_key_is_true() -> None:
    # "If the policy condition requires that the key is not matched, such as
    # StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
    q = pol(allow(), deny(Condition={"StringNotLike": {"aws:PrincipalTag/env": "prod*"}}))
    assert decide(q, principal=ROLE) == "explicitDeny"
    assert decide(pol(allow(Condition={"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:t"}}))) == "allowed"


def test_if_exists() -> None:
    p = cond({"StringEqualsIfExists": {"rds:DatabaseEngine": "aurora-postgresql"}})
    assert decide(p) == "allowed"  # absent: true
    assert decide(p, context={"rds:DatabaseEngine": ["aurora-postgresql"]}) == "allowed"
    assert decide(p, context={"rds:DatabaseEngine": ["aurora-mysql"]}) == "implicitDeny"
    # "If you are using an "Effect": "Deny" element with a negated condition operator like
    # StringNotEqualsIfExists, the request is still denied even if the tag is missing."
    q = pol(allow(), deny(Condition={"StringNotEqualsIfExists": {"aws:ResourceTag/env": "dev"}}))
    assert decide(q) == "explicitDeny"
    assert decide(q, context={"aws:ResourceTag/env": ["dev"]}) == "allowed"


def test_null() -> None:
    absent = cond({"Null": {"aws:TokenIssueTime": "true"}})
    assert decide(absent) == "allowed"
    assert decide(absent, context={"aws:TokenIssueTime": ["2024-01-01T00:00:00Z"]}) == "implicitDeny"
    present = cond({"Null": {"aws:ResourceTag/env": "false"}})
    assert decide(present) == "implicitDeny"
    assert decide(present, context={"aws:ResourceTag/env": ["x"]}) == "allowed"


def test_for_any_value_and_for_all_values() -> None:
    any_ = cond({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}})
    all_ = cond({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}})
    assert decide(any_, context={"aws:TagKeys": ["env", "cost"]}) == "allowed"
    assert decide(any_, context={"aws:TagKeys": ["cost"]}) == "implicitDeny"
    assert decide(all_, context={"aws:TagKeys": ["env", "team"]}) == "allowed"
    assert decide(all_, context={"aws:TagKeys": ["env", "cost"]}) == "implicitDeny"


def test_set_operators_with_a_missing_key() -> None:
    # ForAllValues: true when the key is absent ("If there are no context keys in the
    # request ... it also returns true"); ForAnyValue: false.
    assert decide(cond({"ForAllValues:StringLike": {"aws:TagKeys": "app-*"}})) == "allowed"
    assert decide(cond({"ForAnyValue:StringLike": {"aws:TagKeys": "app-*"}})) == "implicitDeny"
    assert decide(cond({"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": "app-*"}})) == "allowed"
    # So a Deny with ForAnyValue does not fire on an absent key.
    q = pol(allow(), deny(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}}))
    assert decide(q) == "allowed"
    assert decide(q, context={"aws:TagKeys": ["owner"]}) == "explicitDeny"


def test_set_operators_with_negated_operators() -> None:
    # ForAllValues:StringNotEquals: no request value is any of the listed values.
    p = cond({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["owner", "cost"]}})
    assert decide(p, context={"aws:TagKeys": ["env", "team"]}) == "allowed"
    assert decide(p, context={"aws:TagKeys": ["env", "owner"]}) == "implicitDeny"
    # ForAnyValue:StringNotEquals: some request value is none of the listed values.
    q = cond({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["owner", "cost"]}})
    assert decide(q, context={"aws:TagKeys": ["owner", "env"]}) == "allowed"
    assert decide(q, context={"aws:TagKeys": ["owner", "cost"]}) == "implicitDeny"
    assert decide(q) == "implicitDeny"  # absent: ForAnyValue is false even negated


def test_unknown_operator_makes_the_statement_not_apply() -> None:
    assert decide(pol(allow(Condition={"StringFuzzy": {"aws:RequestedRegion": "us-east-1"}})),
                  context={"aws:RequestedRegion": ["us-east-1"]}) == "implicitDeny"
    q = pol(allow(), deny(Condition={"StringFuzzy": {"aws:RequestedRegion": "us-east-1"}}))
    assert decide(q, context={"aws:RequestedRegion": ["us-east-1"]}) == "allowed"
    # Null has no IfExists form.
    assert decide(cond({"NullIfExists": {"aws:TokenIssueTime": "true"}})) == "implicitDeny"


def test_malformed_statements_do_not_apply() -> None:
    for st in (
        {"Effect": "Allow", "Resource": "*"},  # no Action
        {"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*"},  # no Resource
        {"Effect": "Maybe", "Action": "*", "Resource": "*"},
    ):
        assert decide(pol(st)) == "implicitDeny", st
    assert decide(pol({"Effect": "allow", "Action": "*", "Resource": "*"})) == "allowed"


# --------------------------------------------------------------------------- conditions: operators


def test_numeric_operators() -> None:
    ctx = {"s3:max-keys": ["10"]}
    assert decide(cond({"NumericLessThanEquals": {"s3:max-keys": "10"}}), context=ctx) == "allowed"
    assert decide(cond({"NumericLessThan": {"s3:max-keys": "10"}}), context=ctx) == "implicitDeny"
    assert decide(cond({"NumericGreaterThan": {"s3:max-keys": "9.5"}}), context=ctx) == "allowed"
    assert decide(cond({"NumericGreaterThanEquals": {"s3:max-keys": 11}}), context=ctx) == "implicitDeny"
    assert decide(cond({"NumericEquals": {"s3:max-keys": "10.0"}}), context=ctx) == "allowed"
    assert decide(cond({"NumericNotEquals": {"s3:max-keys": ["10", "20"]}}), context=ctx) == "implicitDeny"
    assert decide(cond({"NumericEquals": {"s3:max-keys": "10"}}), context={"s3:max-keys": ["ten"]}) == "implicitDeny"


def test_date_operators() -> None:
    ctx = {"aws:CurrentTime": ["2024-06-01T12:00:00Z"]}
    assert decide(cond({"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}), context=ctx) == "allowed"
    assert decide(cond({"DateLessThan": {"aws:CurrentTime": "2024-01-01"}}), context=ctx) == "implicitDeny"
    assert decide(cond({"DateEquals": {"aws:CurrentTime": "2024-06-01T14:00:00+02:00"}}), context=ctx) == "allowed"
    # Epoch seconds on either side.
    assert decide(cond({"DateLessThanEquals": {"aws:CurrentTime": "1717243200"}}), context=ctx) == "allowed"
    assert decide(cond({"DateNotEquals": {"aws:EpochTime": "2024-06-01T12:00:00Z"}}),
                  context={"aws:EpochTime": ["1717243200"]}) == "implicitDeny"


def test_bool_binary_ip_and_arn_operators() -> None:
    assert decide(cond({"Bool": {"aws:SecureTransport": False}}), context={"aws:SecureTransport": ["false"]}) == "allowed"
    assert decide(cond({"Bool": {"aws:SecureTransport": "true"}}), context={"aws:SecureTransport": ["false"]}) == "implicitDeny"
    b = base64.b64encode(b"binary value").decode()
    assert decide(cond({"BinaryEquals": {"k:bin": b}}), context={"k:bin": [b]}) == "allowed"
    assert decide(cond({"BinaryEquals": {"k:bin": b}}), context={"k:bin": [base64.b64encode(b"x").decode()]}) == "implicitDeny"
    ip = cond({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}})
    assert decide(ip, context={"aws:SourceIp": ["203.0.113.7"]}) == "allowed"
    assert decide(ip, context={"aws:SourceIp": ["2001:db8:1234:5678::1"]}) == "allowed"
    assert decide(ip, context={"aws:SourceIp": ["198.51.100.1"]}) == "implicitDeny"
    assert decide(cond({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}), context={"aws:SourceIp": ["203.0.113.7"]}) == "allowed"
    assert decide(cond({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), context={"aws:SourceIp": ["203.0.113.7"]}) == "implicitDeny"
    arn = cond({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:topic-*"}})
    assert decide(arn, context={"aws:SourceArn": ["arn:aws:sns:us-east-1:111122223333:topic-a"]}) == "allowed"
    assert decide(arn, context={"aws:SourceArn": ["arn:aws:sns:us-east-1:999:x:111122223333:topic-a"]}) == "implicitDeny"
    assert decide(cond({"ArnEquals": {"aws:PrincipalArn": "${aws:PrincipalArn}"}})) == "allowed"
    assert decide(cond({"StringLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:topic-*"}}),
                  context={"aws:SourceArn": ["arn:aws:sns:us-east-1:999:x:111122223333:topic-a"]}) == "allowed"


# --------------------------------------------------------------------------- limits


def test_permissions_boundary_limits() -> None:
    identity = pol(allow("rds:*"))
    boundary = pol(allow("rds:Describe*"), kind="boundary", name="b")
    d = evaluate([identity, boundary], "rds:DeleteDBCluster", CLUSTER, {}, ALICE)
    assert (d.decision, d.boundary_allowed, d.denied_by) == ("implicitDeny", False, "boundary")
    d = evaluate([identity, boundary], "rds:DescribeDBClusters", CLUSTER, {}, ALICE)
    assert (d.decision, d.boundary_allowed) == ("allowed", True)
    assert d.matched == [(identity, 0)]  # the boundary grants nothing by itself
    assert decide([boundary], "rds:DescribeDBClusters") == "implicitDeny"
    ok, msg = authorize([identity, boundary], "rds:DeleteDBCluster", [CLUSTER], {}, ALICE)
    assert not ok and msg.endswith("because no permissions boundary allows the rds:DeleteDBCluster action")


def test_session_policy_limits_and_denies() -> None:
    identity = pol(allow())
    session = pol(allow("s3:*"), deny("s3:DeleteObject"), kind="session", name="s")
    assert decide([identity, session], "s3:GetObject", "arn:aws:s3:::b/k", principal=ROLE) == "allowed"
    assert decide([identity, session], "rds:DescribeDBClusters", principal=ROLE) == "implicitDeny"
    ok, msg = authorize([identity, session], "s3:DeleteObject", ["arn:aws:s3:::b/k"], {}, ROLE)
    assert not ok and msg.endswith("with an explicit deny in a session policy")


# --------------------------------------------------------------------------- authorize


def test_authorize_messages() -> None:
    p = pol(allow("rds:Describe*"), deny("rds:DescribeDBClusters", CLUSTER))
    ok, msg = authorize([p], "rds:DescribeDBClusters", [CLUSTER], {}, ALICE)
    assert not ok
    assert msg == (
        f"User: arn:aws:iam::{ACC}:user/ops/alice is not authorized to perform: rds:DescribeDBClusters "
        f"on resource: {CLUSTER} with an explicit deny in an identity-based policy"
    )
    ok, msg = authorize([p], "rds:FailoverGlobalCluster", ["arn:aws:rds::111122223333:global-cluster:g"], {}, ROLE)
    assert not ok
    assert msg == (
        f"User: arn:aws:sts::{ACC}:assumed-role/drpilot/run-1 is not authorized to perform: rds:FailoverGlobalCluster "
        "on resource: arn:aws:rds::111122223333:global-cluster:g because no identity-based policy allows the "
        "rds:FailoverGlobalCluster action"
    )
    assert authorize([p], "rds:DescribeGlobalClusters", ["*"], {}, ALICE) == (True, None)


def test_authorize_needs_every_resource() -> None:
    dev = f"arn:aws:rds:us-east-1:{ACC}:cluster:dev"
    p = pol(allow("rds:*", dev))
    assert authorize([p], "rds:ModifyDBCluster", [dev], {}, ALICE)[0]
    ok, msg = authorize([p], "rds:ModifyDBCluster", [dev, CLUSTER], {}, ALICE)
    assert not ok and f"on resource: {CLUSTER} because" in msg
    # An explicit deny is reported before an earlier implicit one.
    q = pol(allow("rds:*", dev), deny("rds:*", CLUSTER))
    other = f"arn:aws:rds:us-east-1:{ACC}:cluster:other"
    ok, msg = authorize([q], "rds:ModifyDBCluster", [other, CLUSTER], {}, ALICE)
    assert not ok and f"on resource: {CLUSTER} with an explicit deny" in msg
    # No resource is "*", never a vacuous allow.
    assert not authorize([p], "rds:ModifyDBCluster", [], {}, ALICE)[0]


# --------------------------------------------------------------------------- positions, keys


def test_statement_positions() -> None:
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [\n    {"Effect": "Allow",\n     "Action": "*", "Resource": "*"},\n    {"Effect": "Deny", "Action": "x:y", "Resource": "*"}\n  ]\n}'
    assert statement_positions(text) == [((4, 5), (5, 36)), ((6, 5), (6, 56))]
    single = '{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}'
    assert statement_positions(single) == [((1, 15), (1, 65))]
    assert statement_positions("not json") == []


def test_context_keys() -> None:
    p = pol(
        allow("s3:*", "arn:aws:s3:::b/${aws:username}/*", Condition={"StringEquals": {"aws:RequestedRegion": "${aws:PrincipalTag/region}"}}),
        deny(Condition={"Bool": {"AWS:SecureTransport": "false"}, "NumericLessThan": {"s3:max-keys": "${x:not-a-variable-here}"}}),
        allow(Condition={"Bool": {"aws:securetransport": "true"}}),
    )
    assert context_keys([p]) == ["aws:username", "aws:RequestedRegion", "aws:PrincipalTag/region", "AWS:SecureTransport", "s3:max-keys"]
    assert context_keys([pol(allow("s3:*", "arn:aws:s3:::b/${aws:username}"), version="2008-10-17")]) == []


@pytest.mark.parametrize(
    "pattern,value,expected",
    [
        ("arn:aws:iam::*:user/*", "arn:aws:iam::111122223333:user/alice", True),
        ("arn:aws:iam::*:user/*", "arn:aws:iam::111122223333:role/alice", False),
        ("arn:aws:s3:::b/${aws:username}", "arn:aws:s3:::b/alice", True),
        ("arn:aws-cn:s3:::b/*", "arn:aws:s3:::b/x", False),
    ],
)
def test_arn_matches_table(pattern: str, value: str, expected: bool) -> None:
    assert arn_matches(pattern, value, resolve=lambda k: "alice" if k.lower() == "aws:username" else None) is expected
