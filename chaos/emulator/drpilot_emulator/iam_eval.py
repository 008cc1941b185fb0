"""IAM policy evaluation for identity-based policies, as AWS documents it.

Pure (no moto, no I/O) except `principal_for_access_key` and `principal_policies`, which
read moto's IAM backends. The request enforcement (`--enforce-iam`) and the IAM
extension's `SimulatePrincipalPolicy` both decide with `evaluate`, so a simulation
predicts what the emulator will do with the real request.

The rules, each from the IAM User Guide (section named in quotes):

- "Policy evaluation logic" / "The difference between explicit and implicit denies": a
  request is denied by default; a matching `Deny` statement in any applicable policy
  wins over every `Allow` (explicitDeny); otherwise a matching `Allow` in an
  identity-based policy allows; otherwise implicitDeny. A permissions boundary, a
  session policy and each level of service control policies only limit: when one is
  present the request also needs an `Allow` in it ("Permissions boundaries for IAM
  entities", "Session policies", "Policy evaluation logic"). The root user is allowed
  everything (it has no identity-based policies; the caller decides when a request is
  the root's).
- "IAM JSON policy elements: Action" / "NotAction": "The prefix and the action name are
  case insensitive"; `*` and `?` wildcards anywhere (`rds:Describe*`). `NotAction`
  matches every action not listed.
- "IAM JSON policy elements: Resource" / "NotResource": case-sensitive ("In the Resource
  element, the IAM user name is case sensitive"); `*` alone is every resource. An ARN is
  matched segment by segment ("You can use wildcard characters (* and ?) within the
  individual segments of an ARN (the parts separated by colons)"): a wildcard in the
  partition, service, Region or account segment stays inside it; in the resource part
  (everything after the fifth colon) `*` matches any characters, `/` and `:` included.
  The same page says "If the * wildcard is the last character of a resource ARN segment,
  it can expand to match beyond the colon boundaries": we apply that to a pattern with
  fewer than six segments whose last segment ends in `*` (`arn:aws:s3:*` matches every
  S3 ARN), not to the Region or account segment of a full six-segment pattern (the brief
  and the page's own examples keep those inside their segment).
- "IAM policy elements: Variables and tags": in policies of `"Version": "2012-10-17"`,
  `${key}` is replaced by the request context's value of `key` (key names
  case-insensitive; `aws:username`, `aws:userid`, `aws:PrincipalAccount`,
  `aws:PrincipalArn`, `aws:PrincipalType` and `aws:PrincipalTag/...` come from the
  principal when the context does not give them); `${key, 'default'}` falls back to the
  default; `${*}`, `${?}`, `${$}` are a literal `*`, `?`, `$`. A substituted value is
  literal (a `*` in it is not a wildcard). Variables work "only in the resource portion
  of the ARN" of a Resource (after the fifth colon) and in condition values of the
  String, ARN and Bool operators ("Condition operators": "You can use a policy variable
  with the ... condition operator" / "You can not use ..."). A variable that cannot be
  resolved (absent key, or a key with several values: "you can't use multivalued context
  keys as policy variables") makes that Resource value, or that condition value, match
  nothing. With `"Version": "2008-10-17"` or no Version, `${...}` is literal text
  ("IAM JSON policy elements: Version").
- "IAM JSON policy elements: Condition" / "Condition operators" / "Conditions with
  multiple context keys or values": operators are ANDed, keys under one operator are
  ANDed, the values of one key are ORed; for a negated operator (`StringNotEquals`,
  `StringNotEqualsIgnoreCase`, `StringNotLike`, `NumericNotEquals`, `DateNotEquals`,
  `NotIpAddress`, `ArnNotEquals`, `ArnNotLike`) the values are NORed ("If a single
  negated matching condition operator includes multiple values for a context key, those
  values are evaluated using a logical NOR"). A key absent from the request context
  makes the condition false, except for a negated operator, which is then true ("If the
  policy condition requires that the key is not matched, such as StringNotLike or
  ArnNotLike, and the right key is not present, the condition is true. This logic
  applies to all condition operators except ...IfExists and Null check"); `...IfExists`
  is true when the key is absent ("If the key is not present, evaluate the condition
  element as true"); `Null` tests presence (`true`: the key is absent). Condition key
  names are case-insensitive; values compare as the operator says.
- "Single-valued vs. multivalued context keys": `ForAllValues:` is true when every
  request value matches (each under the operator, negated operators NOR over the policy
  values) and also when the key is absent or empty ("If there are no context keys in
  the request ... it also returns true"); `ForAnyValue:` is true when at least one
  request value matches, false when the key is absent.

Unknown condition operators: a statement using one does not apply (neither its Allow
nor its Deny). IAM never lets such a policy exist: `PutUserPolicy`, `CreatePolicy`, ...
refuse it with `MalformedPolicyDocument` (moto's validator refuses any unknown operator
that has conditions under it), so there is no AWS behaviour to copy; not applying is
the reading that neither grants nor takes away anything on the strength of text IAM
would have rejected. The same holds for a statement with neither or both of
`Action`/`NotAction` or `Resource`/`NotResource`, or an `Effect` other than Allow/Deny
(compared case-insensitively, as moto's validator accepts `allow`).
"""

from __future__ import annotations

import base64
import datetime
import functools
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Principal:
    arn: str  # arn:aws:iam::ACC:user/path/name | arn:aws:iam::ACC:role/path/name | arn:aws:iam::ACC:root
    account: str
    name: str | None  # the user name, for ${aws:username}; None for roles, groups and root
    userid: str  # AIDA... for users; AROA...:session for role sessions; the account for root
    kind: str  # "user" | "role" | "root" (| "group", only as a SimulatePrincipalPolicy source)
    # For a role session (temporary credentials from AssumeRole): its
    # arn:aws:sts::ACC:assumed-role/ROLE/SESSION, the ARN AWS names in an access-denied
    # message. `arn` stays the role's (the value of aws:PrincipalArn).
    session_arn: str | None = None
    # The principal's IAM tags, for aws:PrincipalTag/<key>.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Policy:
    source_id: str  # SimulatePrincipalPolicy's MatchedStatements.SourcePolicyId
    source_type: str  # "user" | "group" | "role" | "aws-managed" | "user-managed" | "IAM Policy"
    document: dict
    text: str  # the JSON text (MatchedStatements' StartPosition/EndPosition come from it)
    # "identity" (grants); "boundary" (a permissions boundary), "session" (a session
    # policy), "scp/N" (the service control policies of level N of an organization) only
    # limit. See evaluate().
    kind: str = "identity"


@dataclass
class Decision:
    decision: str  # "allowed" | "explicitDeny" | "implicitDeny"
    matched: list[tuple[Policy, int]]  # the statements that decided it: (policy, statement index)
    missing_context: list[str]  # context keys a condition or variable needed that were absent
    # Whether the permissions boundary allows the request (None: no boundary applied).
    boundary_allowed: bool | None = None
    # For a deny: the kind of policy that decided it ("identity", "boundary", "session",
    # "scp/N").
    denied_by: str | None = None
    # Per kind of policy present: whether it allows (an Allow applies, none of its Denies).
    allowed_by: dict[str, bool] = field(default_factory=dict)


ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY = "allowed", "explicitDeny", "implicitDeny"

PRINCIPAL_TYPES = {"user": "User", "role": "AssumedRole", "root": "Account"}

# --------------------------------------------------------------------------- helpers


def _strings(value: Any) -> list[str] | None:
    """A policy element that is a string or a list of strings; None if malformed."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _condition_values(value: Any) -> list[str] | None:
    """Condition values: a scalar or a list of scalars (JSON true/false/numbers are
    accepted by IAM and compared as their text)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, (str, int, float)):
            out.append(str(v))
        else:
            return None
    return out


def statements(document: Any) -> list[Any]:
    """The Statement element as a list (a single statement object or a list); items
    keep their index, whatever they are."""
    if not isinstance(document, dict):
        return []
    st = document.get("Statement")
    if isinstance(st, dict):
        return [st]
    if isinstance(st, list):
        return st
    return []


def variables_enabled(document: Any) -> bool:
    return isinstance(document, dict) and document.get("Version") == "2012-10-17"


class _Unresolved(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


_VAR_BODY = re.compile(r"^\s*([^,\s]+)\s*(?:,\s*'([^']*)'\s*)?$")


def _find_variable(text: str, i: int) -> tuple[int, str] | None:
    """If a policy variable `${...}` starts at text[i], (index after it, its body)."""
    if not text.startswith("${", i):
        return None
    j = text.find("}", i + 2)
    if j < 0:
        return None
    return j + 1, text[i + 2 : j]


def _pattern_regex(text: str, wildcards: bool, resolve: Callable[[str], str | None] | None) -> str:
    """A regex source (without anchors) for a policy string: `*` and `?` wildcards when
    `wildcards`, `${...}` variables substituted literally when `resolve` is given.
    Raises _Unresolved for a variable without a value."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if resolve is not None:
            var = _find_variable(text, i)
            if var is not None:
                end, body = var
                if body in ("*", "?", "$"):
                    out.append(re.escape(body))
                    i = end
                    continue
                m = _VAR_BODY.match(body)
                if m:
                    value = resolve(m.group(1))
                    if value is None:
                        value = m.group(2)
                    if value is None:
                        raise _Unresolved(m.group(1))
                    out.append(re.escape(value))
                    i = end
                    continue
        c = text[i]
        if wildcards and c == "*":
            out.append(".*")
        elif wildcards and c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(source, flags | re.DOTALL)


def _glob(pattern: str, value: str, *, ignore_case: bool = False, resolve: Any = None, wildcards: bool = True) -> bool:
    src = _pattern_regex(pattern, wildcards, resolve)
    return _compiled(src, re.IGNORECASE if ignore_case else 0).fullmatch(value) is not None


def _split_arn(text: str, keep_variables: bool) -> list[str]:
    """Split on ':' into at most six parts; with keep_variables a ':' inside `${...}`
    does not split (`${aws:username}`)."""
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if len(parts) == 5:
            cur.append(text[i:])
            break
        if keep_variables:
            var = _find_variable(text, i)
            if var is not None:
                cur.append(text[i : var[0]])
                i = var[0]
                continue
        c = text[i]
        if c == ":":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def arn_matches(pattern: str, value: str, resolve: Any = None, variables_in_all_segments: bool = False) -> bool:
    """Resource / ArnLike matching. `*` alone matches anything. An ARN pattern is
    matched segment by segment (partition, service, Region, account: a wildcard stays in
    its segment); the resource part (after the fifth colon) is matched whole, `*`
    crossing `/` and `:`. Variables (when `resolve` is given) are substituted only in the
    resource part for Resource, in every segment for the ARN condition operators.
    Raises _Unresolved."""
    if pattern == "*":
        return True
    if not pattern.startswith("arn:"):
        return _glob(pattern, value, resolve=resolve)
    pparts = _split_arn(pattern, resolve is not None)
    vparts = value.split(":", 5)
    if len(vparts) < 6 or vparts[0] != "arn":
        return False
    seg_resolve = resolve if variables_in_all_segments else None
    # The request ARN is split on its first five colons, so a wildcard in one of the
    # first five pattern segments can only match inside the corresponding segment.
    if len(pparts) == 6:
        for p, v in zip(pparts[:5], vparts[:5]):
            if not _glob(p, v, resolve=seg_resolve):
                return False
        return _glob(pparts[5], vparts[5], resolve=resolve)
    # A short pattern: its last segment, if it ends with '*', covers the rest.
    k = len(pparts)
    if not pparts[-1].endswith("*"):
        return False
    for p, v in zip(pparts[: k - 1], vparts[: k - 1]):
        if not _glob(p, v, resolve=seg_resolve):
            return False
    return _glob(pparts[-1], ":".join(vparts[k - 1 :]), resolve=seg_resolve)


def action_matches(pattern: str, action: str) -> bool:
    """Action / NotAction: case-insensitive, `*` and `?` wildcards."""
    if pattern == "*":
        return True
    return _glob(pattern, action, ignore_case=True)


# --------------------------------------------------------------------------- context


class _Context:
    """The request context: keys lower-cased, principal keys filled in when absent."""

    def __init__(self, context: dict[str, list[str]] | None, principal: Principal | None) -> None:
        self.values: dict[str, list[str]] = {}
        for k, v in (context or {}).items():
            if v is None:
                continue
            vals = [v] if isinstance(v, str) else [str(x) for x in v]
            self.values[k.lower()] = vals
        if principal is not None:
            for k, v in principal_context(principal).items():
                self.values.setdefault(k.lower(), v)
        self.missing: list[str] = []

    def get(self, key: str) -> list[str] | None:
        v = self.values.get(key.lower())
        if not v:
            return None
        return v

    def note_missing(self, key: str) -> None:
        if key.lower() not in (m.lower() for m in self.missing):
            self.missing.append(key)

    def resolve(self, key: str) -> str | None:
        v = self.get(key)
        if v is None:
            self.note_missing(key)
            return None
        if len(v) != 1:
            return None  # a multivalued key is no policy variable
        return v[0]


def principal_context(principal: Principal) -> dict[str, list[str]]:
    """The context keys a principal carries (IAM User Guide, "Policy variables",
    "Principal key values", and "AWS global condition context keys")."""
    out: dict[str, list[str]] = {}
    if principal.kind in PRINCIPAL_TYPES:
        out["aws:PrincipalType"] = [PRINCIPAL_TYPES[principal.kind]]
    if principal.kind in ("user", "role", "root"):
        out["aws:PrincipalArn"] = [principal.arn]
        out["aws:PrincipalAccount"] = [principal.account]
        out["aws:userid"] = [principal.userid]
    if principal.kind == "user" and principal.name:
        out["aws:username"] = [principal.name]
    for k, v in principal.tags:
        out[f"aws:PrincipalTag/{k}"] = [v]
    return out


# --------------------------------------------------------------------------- conditions

NEGATED = {
    "stringnotequals",
    "stringnotequalsignorecase",
    "stringnotlike",
    "numericnotequals",
    "datenotequals",
    "notipaddress",
    "arnnotequals",
    "arnnotlike",
}

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_W3C = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?)?)?"
)


def _number(s: str) -> float | None:
    s = s.strip()
    return float(s) if _NUMBER.fullmatch(s) else None


def _date(s: str) -> float | None:
    """A W3C ISO 8601 date/time (the formats of the W3C note the Condition operators
    page links) or epoch seconds, as epoch seconds. No time zone: UTC."""
    s = s.strip()
    if _NUMBER.fullmatch(s):
        return float(s)
    m = _W3C.fullmatch(s)
    if m:
        year, month, day, hh, mm, ss, frac, tz = m.groups()
        try:
            dt = datetime.datetime(
                int(year), int(month or 1), int(day or 1), int(hh or 0), int(mm or 0), int(ss or 0),
                tzinfo=datetime.timezone.utc,
            )
        except ValueError:
            return None
        ts = dt.timestamp() + (float("0." + frac) if frac else 0.0)
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            ts -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return ts
    try:
        dt = datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _ip_network(s: str) -> Any:
    try:
        return ipaddress.ip_network(s.strip(), strict=False)
    except ValueError:
        return None


def _b64(s: str) -> bytes | None:
    try:
        return base64.b64decode(s, validate=True)
    except (ValueError, TypeError):
        return None


def _cmp(a: float | None, b: float | None, op: str) -> bool:
    if a is None or b is None:
        return False
    return {
        "equals": a == b,
        "notequals": a == b,  # negation is applied by the caller
        "lessthan": a < b,
        "lessthanequals": a <= b,
        "greaterthan": a > b,
        "greaterthanequals": a >= b,
    }[op]


def _base_match(op: str, ctx_value: str, policy_value: str, resolve: Any) -> bool:
    """Whether one request value matches one policy value under the *positive* form of
    `op` (the caller negates). Raises _Unresolved for an unresolved variable."""
    if op in ("stringequals", "stringnotequals"):
        return _glob(policy_value, ctx_value, resolve=resolve, wildcards=False)
    if op in ("stringequalsignorecase", "stringnotequalsignorecase"):
        return _glob(policy_value, ctx_value, resolve=resolve, wildcards=False, ignore_case=True)
    if op in ("stringlike", "stringnotlike"):
        return _glob(policy_value, ctx_value, resolve=resolve)
    if op.startswith("numeric"):
        return _cmp(_number(ctx_value), _number(policy_value), op[len("numeric"):])
    if op.startswith("date"):
        return _cmp(_date(ctx_value), _date(policy_value), op[len("date"):])
    if op == "bool":
        if resolve is not None:
            policy_value = "".join(
                _resolved_literal(policy_value, resolve)
            )
        return ctx_value.strip().lower() == policy_value.strip().lower()
    if op == "binaryequals":
        a, b = _b64(ctx_value), _b64(policy_value)
        if a is None or b is None:
            return ctx_value == policy_value
        return a == b
    if op in ("ipaddress", "notipaddress"):
        net, val = _ip_network(policy_value), _ip_network(ctx_value)
        if net is None or val is None or net.version != val.version:
            return False
        return val.subnet_of(net)
    if op in ("arnequals", "arnlike", "arnnotequals", "arnnotlike"):
        return arn_matches(policy_value, ctx_value, resolve=resolve, variables_in_all_segments=True)
    raise KeyError(op)


def _resolved_literal(text: str, resolve: Any) -> list[str]:
    """Policy variables of a Bool value substituted (no wildcards)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        var = _find_variable(text, i)
        if var is not None:
            end, body = var
            if body in ("*", "?", "$"):
                out.append(body)
                i = end
                continue
            m = _VAR_BODY.match(body)
            if m:
                value = resolve(m.group(1))
                if value is None:
                    value = m.group(2)
                if value is None:
                    raise _Unresolved(m.group(1))
                out.append(value)
                i = end
                continue
        out.append(text[i])
        i += 1
    return out


BASE_OPERATORS = {
    "stringequals", "stringnotequals", "stringequalsignorecase", "stringnotequalsignorecase",
    "stringlike", "stringnotlike",
    "numericequals", "numericnotequals", "numericlessthan", "numericlessthanequals",
    "numericgreaterthan", "numericgreaterthanequals",
    "dateequals", "datenotequals", "datelessthan", "datelessthanequals",
    "dategreaterthan", "dategreaterthanequals",
    "bool", "binaryequals", "ipaddress", "notipaddress",
    "arnequals", "arnlike", "arnnotequals", "arnnotlike",
    "null",
}
# Operators whose values may hold policy variables (Condition operators page).
VARIABLE_OPERATORS = {
    "stringequals", "stringnotequals", "stringequalsignorecase", "stringnotequalsignorecase",
    "stringlike", "stringnotlike", "bool", "arnequals", "arnlike", "arnnotequals", "arnnotlike",
}


def parse_operator(name: str) -> tuple[str | None, str, bool] | None:
    """`ForAnyValue:StringLikeIfExists` -> ("foranyvalue", "stringlike", True); None
    for an operator IAM does not know."""
    lowered = name.lower()
    qualifier = None
    for q in ("forallvalues:", "foranyvalue:"):
        if lowered.startswith(q):
            qualifier = q[:-1]
            lowered = lowered[len(q):]
            break
    if_exists = False
    if lowered.endswith("ifexists"):
        if_exists = True
        lowered = lowered[: -len("ifexists")]
    if lowered not in BASE_OPERATORS:
        return None
    if lowered == "null" and if_exists:
        return None  # "You can add IfExists to the end of any condition operator name except the Null condition"
    return qualifier, lowered, if_exists


class _BadStatement(Exception):
    """A statement IAM would have refused (see the module docstring): it does not apply."""


def _condition_holds(
    qualifier: str | None, op: str, if_exists: bool, key: str, policy_values: list[str], ctx: _Context, vars_on: bool
) -> bool:
    request_values = ctx.get(key)
    if request_values is None:
        ctx.note_missing(key)
    if op == "null":
        present = request_values is not None
        return any(v.strip().lower() == ("false" if present else "true") for v in policy_values)
    negated = op in NEGATED
    resolve = ctx.resolve if (vars_on and op in VARIABLE_OPERATORS) else None

    def single(value: str) -> bool:
        # One request value against every policy value: OR for a positive operator,
        # NOR for a negated one. An unresolvable variable is a value that matches
        # nothing: it never makes the condition true (the User Guide: "any attempt to
        # match it fails").
        if not negated:
            for pv in policy_values:
                try:
                    if _base_match(op, value, pv, resolve):
                        return True
                except _Unresolved:
                    continue
            return False
        for pv in policy_values:
            try:
                if _base_match(op, value, pv, resolve):
                    return False
            except _Unresolved:
                return False
        return True

    if qualifier == "forallvalues":
        if request_values is None or all(v == "" for v in request_values):
            # "If there are no context keys in the request ... it also returns true";
            # an empty string is an empty data set.
            return True
        return all(single(v) for v in request_values)
    if qualifier == "foranyvalue":
        if request_values is None or all(v == "" for v in request_values):
            return if_exists and request_values is None
        return any(single(v) for v in request_values)
    if request_values is None:
        # "...IfExists": true when absent. A negated operator: true when absent (the
        # Condition operators page, "Important"); a positive one: false.
        return if_exists or negated
    # Several request values without a set operator (the User Guide says a multivalued
    # key needs ForAllValues/ForAnyValue and does not say what happens otherwise): a
    # positive operator holds if any request value matches, a negated one if none
    # matches any policy value, so a negated operator is always the negation of its
    # positive form.
    if negated:
        return all(single(v) for v in request_values)
    return any(single(v) for v in request_values)


def _conditions_hold(condition: Any, ctx: _Context, vars_on: bool) -> bool:
    """All operators ANDed, all keys of an operator ANDed. Evaluates every condition
    (no short cut) so every missing key is recorded. Raises _BadStatement."""
    if condition is None:
        return True
    if not isinstance(condition, dict):
        raise _BadStatement()
    parsed = []
    for op_name, block in condition.items():
        op = parse_operator(op_name)
        if op is None or not isinstance(block, dict):
            raise _BadStatement()
        for key, raw in block.items():
            values = _condition_values(raw)
            if values is None:
                raise _BadStatement()
            parsed.append((op, key, values))
    ok = True
    for (qualifier, base, if_exists), key, values in parsed:
        if not _condition_holds(qualifier, base, if_exists, key, values, ctx, vars_on):
            ok = False
    return ok


# --------------------------------------------------------------------------- statements


def _statement_applies(st: Any, action: str, resource: str, ctx: _Context, vars_on: bool) -> str | None:
    """The statement's effect ("Allow"/"Deny") if it applies to the request, else None."""
    if not isinstance(st, dict):
        return None
    effect = st.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        return None
    effect = "Allow" if effect.lower() == "allow" else "Deny"
    has_a, has_na = "Action" in st, "NotAction" in st
    has_r, has_nr = "Resource" in st, "NotResource" in st
    if has_a == has_na or has_r == has_nr:
        return None
    actions = _strings(st["Action"] if has_a else st["NotAction"])
    resources = _strings(st["Resource"] if has_r else st["NotResource"])
    if actions is None or resources is None:
        return None
    hit = any(action_matches(p, action) for p in actions)
    if hit != has_a:
        return None
    resolve = ctx.resolve if vars_on else None
    hit = False
    for p in resources:
        try:
            if arn_matches(p, resource, resolve=resolve):
                hit = True
                break
        except _Unresolved:
            continue  # that Resource value matches nothing
    if hit != has_r:
        return None
    try:
        if not _conditions_hold(st.get("Condition"), ctx, vars_on):
            return None
    except _BadStatement:
        return None
    return effect


def evaluate(
    policies: list[Policy],
    action: str,
    resource: str,
    context: dict[str, list[str]] | None,
    principal: Principal,
) -> Decision:
    """The decision for one action on one resource (IAM's evaluation logic for
    identity-based policies, with permissions boundaries and session policies as
    limits; see the module docstring)."""
    if principal.kind == "root":
        return Decision(ALLOWED, [], [])
    ctx = _Context(context, principal)
    allows: dict[str, list[tuple[Policy, int]]] = {}
    denies: list[tuple[Policy, int]] = []
    kinds: set[str] = set()
    for policy in policies:
        kinds.add(policy.kind)
        vars_on = variables_enabled(policy.document)
        for i, st in enumerate(statements(policy.document)):
            effect = _statement_applies(st, action, resource, ctx, vars_on)
            if effect == "Deny":
                denies.append((policy, i))
            elif effect == "Allow":
                allows.setdefault(policy.kind, []).append((policy, i))
    # Per kind of policy: does it allow (an Allow applies and no Deny of its own)?
    allowed_by = {
        kind: bool(allows.get(kind)) and not any(p.kind == kind for p, _ in denies) for kind in kinds
    }
    boundary_allowed = allowed_by.get("boundary")
    if denies:
        return Decision(EXPLICIT_DENY, denies, ctx.missing, boundary_allowed, denies[0][0].kind, allowed_by)
    # The identity-based policies must allow; every other kind of policy (service
    # control policies level by level, permissions boundary, session policy) only
    # limits: it must allow too. Checked in the order of the User Guide's evaluation
    # flow chart (SCPs, identity-based, boundary, session), which decides the message.
    order = sorted(k for k in kinds if k.startswith("scp/")) + ["identity"]
    order += [k for k in ("boundary", "session") if k in kinds]
    order += sorted(k for k in kinds if k not in order)
    for kind in order:
        if not allows.get(kind):
            return Decision(IMPLICIT_DENY, [], ctx.missing, boundary_allowed, kind, allowed_by)
    return Decision(ALLOWED, allows["identity"], ctx.missing, boundary_allowed, None, allowed_by)


_DENY_WORDS = {
    "identity": "an identity-based policy",
    "boundary": "a permissions boundary",
    "session": "a session policy",
    "scp": "a service control policy",
}
_NO_ALLOW_WORDS = {
    "identity": "no identity-based policy",
    "boundary": "no permissions boundary",
    "session": "no session policy",
    "scp": "no service control policy",
}


def denial_message(principal: Principal, action: str, resource: str, decision: Decision) -> str:
    """AWS's access-denied wording (the IAM User Guide, "Troubleshooting access denied
    error messages")."""
    who = principal.session_arn or principal.arn
    head = f"User: {who} is not authorized to perform: {action} on resource: {resource} "
    kind = decision.denied_by or "identity"
    if kind.startswith("scp/"):
        kind = "scp"
    if decision.decision == EXPLICIT_DENY:
        return head + f"with an explicit deny in {_DENY_WORDS.get(kind, _DENY_WORDS['identity'])}"
    return head + f"because {_NO_ALLOW_WORDS.get(kind, _NO_ALLOW_WORDS['identity'])} allows the {action} action"


def authorize(
    policies: list[Policy],
    action: str,
    resources: list[str],
    context: dict[str, list[str]] | None,
    principal: Principal,
) -> tuple[bool, str | None]:
    """Allowed only if every resource is allowed (an empty list is taken as ["*"], never
    as vacuously allowed). On a deny, AWS's message for the first explicitly denied
    resource, else the first implicitly denied one."""
    first_implicit: tuple[str, Decision] | None = None
    for resource in resources or ["*"]:
        d = evaluate(policies, action, resource, context, principal)
        if d.decision == EXPLICIT_DENY:
            return False, denial_message(principal, action, resource, d)
        if d.decision == IMPLICIT_DENY and first_implicit is None:
            first_implicit = (resource, d)
    if first_implicit is not None:
        return False, denial_message(principal, action, first_implicit[0], first_implicit[1])
    return True, None


# --------------------------------------------------------------------------- context keys


def context_keys(policies: Iterable[Policy]) -> list[str]:
    """Every context key the policies' statements reference: condition keys and the
    keys of policy variables (in Resource/NotResource and condition values of
    2012-10-17 documents), as GetContextKeysForPrincipalPolicy lists them; first spelling
    kept, deduplicated case-insensitively."""
    seen: dict[str, str] = {}

    def add(key: str) -> None:
        seen.setdefault(key.lower(), key)

    def variables(text: str) -> None:
        i = 0
        while i < len(text):
            var = _find_variable(text, i)
            if var is None:
                i += 1
                continue
            end, body = var
            m = _VAR_BODY.match(body)
            if m and body not in ("*", "?", "$"):
                add(m.group(1))
            i = end

    for policy in policies:
        vars_on = variables_enabled(policy.document)
        for st in statements(policy.document):
            if not isinstance(st, dict):
                continue
            if vars_on:
                for el in ("Resource", "NotResource"):
                    for r in _strings(st.get(el)) or []:
                        variables(r)
            cond = st.get("Condition")
            if not isinstance(cond, dict):
                continue
            for op_name, block in cond.items():
                if not isinstance(block, dict):
                    continue
                parsed = parse_operator(op_name)
                for key, raw in block.items():
                    add(key)
                    if vars_on and parsed is not None and parsed[1] in VARIABLE_OPERATORS:
                        for v in _condition_values(raw) or []:
                            variables(v)
    return list(seen.values())


# --------------------------------------------------------------------------- positions


class _Scan:
    def __init__(self, text: str) -> None:
        self.t = text
        self.i = 0

    def ws(self) -> None:
        while self.i < len(self.t) and self.t[self.i] in " \t\r\n":
            self.i += 1

    def peek(self) -> str:
        return self.t[self.i] if self.i < len(self.t) else ""

    def string(self) -> str:
        if self.peek() != '"':
            raise ValueError("string expected")
        start = self.i
        self.i += 1
        while self.i < len(self.t):
            c = self.t[self.i]
            if c == "\\":
                self.i += 2
                continue
            self.i += 1
            if c == '"':
                return json.loads(self.t[start : self.i])
        raise ValueError("unterminated string")

    def value(self) -> None:
        self.ws()
        c = self.peek()
        if c == '"':
            self.string()
        elif c in "{[":
            close = "}" if c == "{" else "]"
            self.i += 1
            while True:
                self.ws()
                if self.peek() == close:
                    self.i += 1
                    return
                if c == "{":
                    self.string()
                    self.ws()
                    if self.peek() != ":":
                        raise ValueError(": expected")
                    self.i += 1
                self.value()
                self.ws()
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != close:
                    raise ValueError("bad container")
        else:
            start = self.i
            while self.i < len(self.t) and self.t[self.i] not in ",}] \t\r\n":
                self.i += 1
            if self.i == start:
                raise ValueError("value expected")


def statement_positions(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """For each statement of the document, the 1-based (line, column) of its opening
    `{` and of its closing `}`; [] when the text cannot be scanned."""
    s = _Scan(text)
    spans: list[tuple[int, int]] = []
    try:
        s.ws()
        if s.peek() != "{":
            return []
        s.i += 1
        while True:
            s.ws()
            if s.peek() == "}":
                break
            key = s.string()
            s.ws()
            if s.peek() != ":":
                return []
            s.i += 1
            s.ws()
            if key == "Statement":
                if s.peek() == "[":
                    s.i += 1
                    items = []
                    while True:
                        s.ws()
                        if s.peek() == "]":
                            s.i += 1
                            break
                        start = s.i
                        s.value()
                        items.append((start, s.i - 1))
                        s.ws()
                        if s.peek() == ",":
                            s.i += 1
                    spans = items
                else:
                    start = s.i
                    s.value()
                    spans = [(start, s.i - 1)]
            else:
                s.value()
            s.ws()
            if s.peek() == ",":
                s.i += 1
    except (ValueError, IndexError):
        return []

    def line_col(offset: int) -> tuple[int, int]:
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return line, col

    return [(line_col(a), line_col(b)) for a, b in spans]


# --------------------------------------------------------------------------- moto


def _backends(account_id: str) -> list[Any]:
    """The IAM backends of the account, one per partition that exists (creating the
    `aws` one if needed; other partitions' only if moto already made them)."""
    from moto.iam.models import iam_backends

    acct = iam_backends[account_id]
    out = [acct["aws"]]
    for partition, backend in dict.items(acct):
        if partition != "aws":
            out.append(backend)
    return out


def _parse(text: str) -> dict:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _managed(policy: Any) -> Policy:
    version = next((v for v in policy.versions if v.is_default), policy.versions[0] if policy.versions else None)
    text = version.document if version is not None else ""
    if not isinstance(text, str):
        text = json.dumps(text)
    kind = "aws-managed" if ":iam::aws:policy" in policy.arn else "user-managed"
    return Policy(policy.name, kind, _parse(text), text)


def _inline(name: str, text: Any, source_type: str) -> Policy:
    if not isinstance(text, str):
        text = json.dumps(text)
    return Policy(name, source_type, _parse(text), text)


def _group_policies(group: Any) -> list[Policy]:
    out = [_inline(n, t, "group") for n, t in group.policies.items()]
    out += [_managed(p) for p in group.managed_policies.values()]
    return out


def _user(backend: Any, user: Any) -> tuple[Principal, list[Policy]]:
    tags = tuple((t["Key"], t["Value"]) for t in (user.tags or []))
    principal = Principal(user.arn, backend.account_id, user.name, user.id, "user", tags=tags)
    policies = [_inline(n, t, "user") for n, t in user.policies.items()]
    policies += [_managed(p) for p in user.managed_policies.values()]
    for group in backend.get_groups_for_user(user.name):
        policies += _group_policies(group)
    return principal, policies


def _boundary(backend: Any, arn: str | None) -> list[Policy]:
    if not arn:
        return []
    policy = backend.managed_policies.get(arn)
    if policy is None:
        return []
    p = _managed(policy)
    return [Policy(p.source_id, p.source_type, p.document, p.text, kind="boundary")]


def _role(backend: Any, role: Any, session: Any = None) -> tuple[Principal, list[Policy]]:
    tags = tuple((t["Key"], t["Value"]) for t in (role.tags or []))
    if session is not None:
        principal = Principal(
            role.arn, backend.account_id, None, f"{role.id}:{session.session_name}", "role",
            session_arn=session.arn, tags=tags,
        )
    else:
        principal = Principal(role.arn, backend.account_id, None, role.id, "role", tags=tags)
    policies = [_inline(n, t, "role") for n, t in role.policies.items()]
    policies += [_managed(p) for p in role.managed_policies.values()]
    policies += _boundary(backend, role.permissions_boundary_arn)
    if session is not None and getattr(session, "policy", None):
        text = session.policy if isinstance(session.policy, str) else json.dumps(session.policy)
        policies.append(Policy("SessionPolicy", "IAM Policy", _parse(text), text, kind="session"))
    return principal, policies


def principal_for_access_key(account_id: str, access_key_id: str) -> tuple[Principal, list[Policy]] | None:
    """The principal owning an Active access key of the account and its policies: for
    an IAM user its inline and attached managed policies (default version) and those of
    its groups; for temporary credentials of an assumed role (moto's STS), the role's
    inline and attached policies, its permissions boundary and the session policy.
    None if the key is unknown or not Active. (Expiry of temporary credentials is not
    checked here.)"""
    for backend in _backends(account_id):
        key = backend.access_keys.get(access_key_id)
        if key is None or key.status != "Active":
            continue
        if key.user_name:
            user = backend.users.get(key.user_name)
            if user is None or key not in user.access_keys:
                return None
            return _user(backend, user)
        if key.role_arn:
            role = next((r for r in backend.roles.values() if r.arn == key.role_arn), None)
            if role is None:
                return None
            from moto.sts.models import sts_backends

            session = None
            for sts in dict.values(sts_backends[account_id]):
                session = sts.get_assumed_role_from_access_key(access_key_id)
                if session is not None:
                    break
            return _role(backend, role, session)
        return None
    return None


def principal_policies(account_id: str, principal_arn: str) -> tuple[Principal, list[Policy]] | None:
    """For SimulatePrincipalPolicy's PolicySourceArn (or CallerArn): an IAM user (its
    policies and its groups'), a group (its policies; the principal is the group, with
    no aws:username), or a role (inline and attached policies, and its permissions
    boundary). None when no such entity exists (the ARN must be the entity's exact ARN,
    path included)."""
    parts = principal_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or parts[4] != account_id:
        return None
    resource = parts[5]
    kind, _, rest = resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    for backend in _backends(account_id):
        if kind == "user":
            user = backend.users.get(name)
            if user is not None and user.arn == principal_arn:
                return _user(backend, user)
        elif kind == "role":
            role = next((r for r in backend.roles.values() if r.name == name), None)
            if role is not None and role.arn == principal_arn:
                return _role(backend, role)
        elif kind == "group":
            group = backend.groups.get(name)
            if group is not None and group.arn == principal_arn:
                principal = Principal(group.arn, backend.account_id, None, group.id, "group")
                return principal, _group_policies(group)
    return None
