"""IAM: the policy simulator, answered by the same evaluation as `--enforce-iam`
(`drpilot_emulator/iam_eval.py`). moto has none of these operations.

Served here (botocore model iam 2010-05-08, awsQuery):
- SimulatePrincipalPolicy: the policies of the user (its own and its groups'), group or
  role named by PolicySourceArn (NoSuchEntity, 404, when it does not exist in the
  caller's account; InvalidInput for an ARN that is not a user, group or role ARN),
  plus PolicyInputList (extra identity-based policies, "PolicyInputList.N", type
  "IAM Policy"), with the entity's permissions boundary or the one of
  PermissionsBoundaryPolicyInputList (at most one; it replaces the entity's, as the API
  reference says), evaluated as CallerArn (default: the source entity) for every action
  of ActionNames on every resource of ResourceArns (default `*`), with ContextEntries as
  the request context.
- SimulateCustomPolicy: PolicyInputList (required), PermissionsBoundaryPolicyInputList,
  OrderedOrganizationPolicyInputList (service control policies, one entry per level of
  the organization, each level must allow), as CallerArn if given.
- GetContextKeysForPrincipalPolicy / GetContextKeysForCustomPolicy: the context keys the
  policies reference (condition keys and policy-variable keys).

Result shape (the model's current documentation of SimulatePolicyResponse): one
EvaluationResult per action, whatever the number of resources. Its EvalDecision is the
most restrictive decision over the resources (explicitDeny, then implicitDeny, then
allowed); its MatchedStatements the union of the statements that decided that decision;
its MissingContextValues the union of the resources'. With ResourceArns, each resource's
own decision is in ResourceSpecificResults (EvalResourceName, EvalResourceDecision,
MatchedStatements, MissingContextValues). EvalResourceName is `*`: the model says it is
the ARN template of the action's resource type "or * if no ARN format is defined for the
action", and the emulator has no table of ARN formats per action (the Service
Authorization Reference). Paging (MaxItems 1-1000, default 100; Marker; IsTruncated)
counts EvaluationResults. MatchedStatements carry SourcePolicyId (the policy's name, or
"PolicyInputList.N"), SourcePolicyType and the line/column of the statement's `{` and
`}` in the policy text. Statements of service control policies are never listed (the
model: "This field doesn't include statements from service control policies").

MissingContextValues: the context keys the simulated policies reference anywhere that
neither ContextEntries nor the simulated caller supplies. That is what AWS answers (it
lists keys of statements for other actions too: boto/boto3#3111), and what the model
says ("context keys that are required by the included input policies but that were not
provided by one of the input parameters"). The caller's own keys (aws:username,
aws:userid, aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
aws:PrincipalTag/...) are supplied from the simulated caller, as a real request would
carry them, so a simulation predicts the enforced decision; ContextEntries override
them. *Assumed*: AWS does not document whether its simulator fills them in.

Not modelled: ResourcePolicy, ResourceOwner, ResourceHandlingOption and
PolicyExclusionList are accepted and ignored (no resource-based policy takes part in the
decision); OrganizationsDecisionDetail is only reported for SimulateCustomPolicy with
OrderedOrganizationPolicyInputList; EvalDecisionDetails (cross-account) is never
reported. Whoever calls SimulatePrincipalPolicy needs iam:SimulatePrincipalPolicy on the
PolicySourceArn: that check belongs to the request enforcement, not to this module.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse

from .. import iam_eval
from ..iam_eval import EXPLICIT_DENY, IMPLICIT_DENY, ALLOWED, Policy, Principal
from .base import Extension, HttpError, aws_error, parse_arn

_RESTRICTIVENESS = {ALLOWED: 0, IMPLICIT_DENY: 1, EXPLICIT_DENY: 2}
_ENTITY_KINDS = ("user", "group", "role")


def _validation_error(field: str, value: Any, constraint: str) -> Exception:
    # The wording of AWS's request validation ("1 validation error detected: ...").
    shown = "null" if value is None else f"'{value}'"
    return aws_error(
        "ValidationError",
        f"1 validation error detected: Value {shown} at '{field}' failed to satisfy constraint: {constraint}",
    )


def _documents(texts: list[str] | None, field: str, source_type: str = "IAM Policy", kind: str = "identity") -> list[Policy]:
    out = []
    for i, text in enumerate(texts or [], start=1):
        try:
            doc = json.loads(text)
        except (TypeError, ValueError):
            doc = None
        if not isinstance(doc, dict):
            raise aws_error("InvalidInput", f"Syntax errors in policy: {field}.{i} is not a JSON policy document.")
        out.append(Policy(f"{field}.{i}", source_type, doc, text, kind=kind))
    return out


class DrIamResponse(IamResponse):
    ext: "IamExtension"

    # ------------------------------------------------------------------ helpers
    def _entity(self, arn: str | None, field: str) -> tuple[Principal, list[Policy]]:
        if arn is None:
            raise _validation_error(field[0].lower() + field[1:], None, "Member must not be null")
        parts = parse_arn(arn)
        kind, _, rest = (parts or {}).get("resource", "").partition("/")
        if parts is None or parts["service"] != "iam" or kind not in _ENTITY_KINDS or not rest:
            raise aws_error("InvalidInput", f"ARN {arn} is not valid.")
        found = iam_eval.principal_policies(self.current_account, arn)
        if found is None:
            name = rest.rsplit("/", 1)[-1]
            raise aws_error("NoSuchEntity", f"The {kind} with name {name} cannot be found.")
        return found

    def _context(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for entry in self._get_param("ContextEntries") or []:
            name = entry.get("ContextKeyName")
            if not name:
                raise aws_error("InvalidInput", "ContextKeyName is required in a ContextEntry.")
            out[name] = [str(v) for v in entry.get("ContextKeyValues") or []]
        return out

    def _actions(self) -> list[str]:
        actions = self._get_param("ActionNames")
        if actions is None:
            raise _validation_error("actionNames", None, "Member must not be null")
        for a in actions:
            service, sep, name = a.partition(":")
            if not sep or not service or not name:
                raise aws_error("InvalidInput", f"Action {a} is not valid: actions must include the service identifier, such as iam:CreateUser.")
        return list(actions)

    def _boundary(self) -> list[Policy] | None:
        texts = self._get_param("PermissionsBoundaryPolicyInputList")
        if not texts:
            return None
        if len(texts) > 1:
            raise aws_error("InvalidInput", "Only one permissions boundary policy can be simulated.")
        return _documents(texts, "PermissionsBoundaryPolicyInputList", kind="boundary")

    def _page_size(self) -> int:
        max_items = self._get_param("MaxItems")
        if max_items is None:
            return 100
        if not 1 <= int(max_items) <= 1000:
            constraint = "Member must have value " + ("greater than or equal to 1" if int(max_items) < 1 else "less than or equal to 1000")
            raise _validation_error("maxItems", max_items, constraint)
        return int(max_items)

    def _start(self) -> int:
        marker = self._get_param("Marker")
        if marker is None:
            return 0
        try:
            start = json.loads(base64.urlsafe_b64decode(marker.encode()).decode())["next"]
            if not isinstance(start, int) or start < 0:
                raise ValueError(marker)
        except (ValueError, KeyError, TypeError):
            raise aws_error("InvalidInput", f"Invalid Marker: {marker}")
        return start

    # ------------------------------------------------------------------ operations
    def simulate_principal_policy(self) -> ActionResult:
        principal, policies = self._entity(self._get_param("PolicySourceArn"), "PolicySourceArn")
        caller_arn = self._get_param("CallerArn")
        if caller_arn:
            principal, _ = self._entity(caller_arn, "CallerArn")
        policies += _documents(self._get_param("PolicyInputList"), "PolicyInputList")
        boundary = self._boundary()
        if boundary is not None:
            policies = [p for p in policies if p.kind != "boundary"] + boundary
        return self._simulate(principal, policies)

    def simulate_custom_policy(self) -> ActionResult:
        texts = self._get_param("PolicyInputList")
        if texts is None:
            raise _validation_error("policyInputList", None, "Member must not be null")
        policies = _documents(texts, "PolicyInputList")
        policies += self._boundary() or []
        for level, entry in enumerate(self._get_param("OrderedOrganizationPolicyInputList") or []):
            scps = _documents(
                (entry or {}).get("ServiceControlPolicyInputList"),
                f"OrderedOrganizationPolicyInputList.{level + 1}.ServiceControlPolicyInputList",
                kind=f"scp/{level}",
            )
            if not scps:
                raise aws_error("InvalidInput", "Each level of OrderedOrganizationPolicyInputList needs at least one service control policy.")
            policies += scps
        caller_arn = self._get_param("CallerArn")
        if caller_arn:
            principal, _ = self._entity(caller_arn, "CallerArn")
        else:
            # No caller: a principal that carries no context keys of its own.
            principal = Principal("", self.current_account, None, "", "none")
        return self._simulate(principal, policies)

    def get_context_keys_for_principal_policy(self) -> ActionResult:
        _, policies = self._entity(self._get_param("PolicySourceArn"), "PolicySourceArn")
        policies += _documents(self._get_param("PolicyInputList"), "PolicyInputList")
        return ActionResult({"ContextKeyNames": iam_eval.context_keys(policies)})

    def get_context_keys_for_custom_policy(self) -> ActionResult:
        texts = self._get_param("PolicyInputList")
        if texts is None:
            raise _validation_error("policyInputList", None, "Member must not be null")
        return ActionResult({"ContextKeyNames": iam_eval.context_keys(_documents(texts, "PolicyInputList"))})

    # ------------------------------------------------------------------ the simulation
    def _simulate(self, principal: Principal, policies: list[Policy]) -> ActionResult:
        actions = self._actions()
        page_size = self._page_size()
        start = self._start()
        given = self._get_param("ResourceArns")
        resources = list(given) if given else ["*"]
        context = self._context()
        # Keys the policies reference and nobody supplies (SCPs excluded, as the model
        # says of MissingContextValues).
        supplied = {k.lower() for k in context}
        supplied |= {k.lower() for k in iam_eval.principal_context(principal)}
        missing = [
            k for k in iam_eval.context_keys(p for p in policies if not p.kind.startswith("scp/"))
            if k.lower() not in supplied
        ]
        boundary = any(p.kind == "boundary" for p in policies)
        scps = any(p.kind.startswith("scp/") for p in policies)
        positions: dict[int, list[tuple[tuple[int, int], tuple[int, int]]]] = {}

        def statement(policy: Policy, index: int) -> dict[str, Any]:
            out: dict[str, Any] = {"SourcePolicyId": policy.source_id, "SourcePolicyType": policy.source_type}
            spans = positions.setdefault(id(policy), iam_eval.statement_positions(policy.text))
            if index < len(spans):
                (l1, c1), (l2, c2) = spans[index]
                out["StartPosition"] = {"Line": l1, "Column": c1}
                out["EndPosition"] = {"Line": l2, "Column": c2}
            return out

        def matched(decision: iam_eval.Decision) -> list[dict[str, Any]]:
            return [statement(p, i) for p, i in decision.matched if not p.kind.startswith("scp/")]

        results = []
        for action in actions[start : start + page_size]:
            decisions = [(r, iam_eval.evaluate(policies, action, r, context, principal)) for r in resources]
            top = max((d.decision for _, d in decisions), key=_RESTRICTIVENESS.__getitem__)
            union: list[dict[str, Any]] = []
            for _, d in decisions:
                if d.decision == top:
                    for s in matched(d):
                        if s not in union:
                            union.append(s)
            result: dict[str, Any] = {
                "EvalActionName": action,
                "EvalResourceName": "*",
                "EvalDecision": top,
                "MatchedStatements": union,
                "MissingContextValues": missing,
            }
            if boundary:
                result["PermissionsBoundaryDecisionDetail"] = {
                    "AllowedByPermissionsBoundary": all(d.allowed_by.get("boundary", False) for _, d in decisions)
                }
            if scps:
                result["OrganizationsDecisionDetail"] = {
                    "AllowedByOrganizations": all(
                        all(v for k, v in d.allowed_by.items() if k.startswith("scp/")) for _, d in decisions
                    )
                }
            if given:
                specific = []
                for r, d in decisions:
                    entry: dict[str, Any] = {
                        "EvalResourceName": r,
                        "EvalResourceDecision": d.decision,
                        "MatchedStatements": matched(d),
                        "MissingContextValues": missing,
                    }
                    if boundary:
                        entry["PermissionsBoundaryDecisionDetail"] = {
                            "AllowedByPermissionsBoundary": d.allowed_by.get("boundary", False)
                        }
                    specific.append(entry)
                result["ResourceSpecificResults"] = specific
            results.append(result)
        out: dict[str, Any] = {"EvaluationResults": results, "IsTruncated": start + page_size < len(actions)}
        if out["IsTruncated"]:
            out["Marker"] = base64.urlsafe_b64encode(json.dumps({"next": start + page_size}).encode()).decode()
        return ActionResult(out)


class IamExtension(Extension):
    name = "iam"
    service = "iam"
    ops = frozenset(
        {
            "SimulatePrincipalPolicy",
            "SimulateCustomPolicy",
            "GetContextKeysForPrincipalPolicy",
            "GetContextKeysForCustomPolicy",
        }
    )
    response_class = DrIamResponse

    def __init__(self, emu: Any) -> None:
        super().__init__(emu)
        DrIamResponse.ext = self

    def reset(self) -> None:
        pass  # no state of its own: users, groups, roles and policies are moto's

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/iam/principal", self._get_principal)]

    def _get_principal(self, body: Any) -> dict[str, Any]:
        """`GET /_drpilot/iam/principal?access_key_id=AKIA...` (or `?arn=` of a user,
        group or role): who the evaluation sees, with its policies; 404 when unknown
        (for an access key: unknown or not Active)."""
        body = body or {}
        with self.emu.lock:
            if body.get("access_key_id"):
                found = iam_eval.principal_for_access_key(self.account_id, body["access_key_id"])
            elif body.get("arn"):
                found = iam_eval.principal_policies(self.account_id, body["arn"])
            else:
                raise HttpError(400, "give access_key_id or arn")
        if found is None:
            raise HttpError(404, "no such principal (or the access key is not Active)")
        principal, policies = found
        return {
            "principal": {
                "arn": principal.arn,
                "account": principal.account,
                "name": principal.name,
                "userid": principal.userid,
                "kind": principal.kind,
                "session_arn": principal.session_arn,
                "tags": dict(principal.tags),
            },
            "policies": [
                {"source_id": p.source_id, "source_type": p.source_type, "kind": p.kind, "document": p.document}
                for p in policies
            ],
        }
