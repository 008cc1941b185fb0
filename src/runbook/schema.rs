//! The runbook JSON Schema (`drpilot schema`), generated from the catalogue.
//!
//! The schema is built from the same tables the validator reads (the catalogue and the
//! key lists of each section), so an editor's squiggles and `drpilot validate` agree by
//! construction. A step is described once per action and chosen with `if`/`then` on
//! `action`, which gives editors precise messages (a `oneOf` would report every branch).
//! It is written as JSON rather than derived from Rust types because a step's fields are
//! data in the catalogue, not a Rust struct. Templated strings (`"{{to}}"`) are accepted
//! wherever a string is, since their value is only known once `[params]` is applied.

use serde_json::{Map, Value, json};

use super::catalogue::{CATALOGUE, FieldKind, FieldSpec, Kind, Spec, Usage};
use super::model::OnUnreachable;
use super::parse::{ACCOUNT_KEYS, EXTERNAL_ID, SESSION_NAME};

/// Version of the schema's shape; bumped when a runbook valid before becomes invalid.
pub const SCHEMA_VERSION: u32 = 1;

const TEMPLATE_PATTERN: &str = r"\{\{[^}]*\}\}";
const REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$";
const CLUSTER_ARN_PATTERN: &str =
    r"^arn:aws[a-z-]*:rds:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:cluster:.+$";
const ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
/// `[params]` keys and `[accounts]` names.
const NAME_PATTERN: &str = r"^[A-Za-z0-9_-]+$";
const ACCOUNT_ID_PATTERN: &str = r"^[0-9]{12}$";
const ROLE_ARN_PATTERN: &str =
    r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([!-~]+/)?[A-Za-z0-9_+=,.@-]{1,64}$";
const DURATION_DOC: &str =
    "A duration such as \"90s\", \"5m\" or \"1h 30m\" (units: ms, s, m, h, d)";

/// The whole schema as a JSON value.
pub fn runbook_schema() -> Value {
    let mut defs = Map::new();
    defs.insert(
        "duration".into(),
        templated(json!({"type": "string", "minLength": 2}), DURATION_DOC),
    );
    defs.insert("retry".into(), retry());
    for spec in CATALOGUE {
        defs.insert(format!("step.{}", spec.name), step(spec));
        if spec.usage == Usage::Check {
            defs.insert(format!("gate.{}", spec.name), gate(spec));
        }
        if spec.is_mutating() {
            defs.insert(format!("rollback.{}", spec.name), rollback(spec));
        }
    }
    let actions: Vec<&str> = CATALOGUE.iter().map(|s| s.name).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:drpilot:runbook:v{SCHEMA_VERSION}"),
        "title": "drpilot runbook",
        "description": "A failover runbook: a dependency graph of steps. See `drpilot validate` for the checks a schema cannot express (ids unique, `after` refers to steps, no cycles, params exist, a step's `account` is declared, a role is in its account's id).",
        "type": "object",
        "additionalProperties": false,
        "required": ["runbook", "step"],
        "properties": {
            "runbook": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "mode"],
                "properties": {
                    "name": {"type": "string", "pattern": ID_PATTERN, "description": "Name; also the name of the run's lock"},
                    "description": {"type": "string"},
                    "mode": {"enum": ["planned", "unplanned"], "description": "planned = switchover, no data loss; unplanned = failover during an outage"}
                }
            },
            "objectives": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "rto": {"$ref": "#/$defs/duration", "description": "Recovery time objective"},
                    "rpo": {"$ref": "#/$defs/duration", "description": "Recovery point objective"},
                    "recovered_when": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": ID_PATTERN},
                        "description": "Step ids whose success means service is restored (typically the verification checks): the RTO ends when the last of them is done. Default: the run's last step"
                    }
                }
            },
            "params": {
                "type": "object",
                "description": "Values for {{name}} templates in string fields",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": ["string", "integer", "boolean"]}
            },
            "accounts": accounts(),
            "state": {
                "type": "object",
                "additionalProperties": false,
                "required": ["stores"],
                "description": "Where this runbook's runs and lock live unless --state or DRPILOT_STATE say otherwise (docs/state.md)",
                "properties": {
                    "stores": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "minLength": 1},
                        "description": "s3://bucket/prefix[?region=R] URLs, one bucket per region (every record goes to each; acknowledged once one has it), or a single directory"
                    }
                }
            },
            "notify": {
                "type": "object",
                "additionalProperties": false,
                "required": ["urls_env"],
                "description": "Who hears of this runbook's runs, beside --notify and DRPILOT_NOTIFY (docs/runbook.md). A receiver's URL is a secret: name the environment variables that hold the URLs, never a URL",
                "properties": {
                    "urls_env": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                        "description": "Environment variables, each holding one or more receiver URLs (http(s):// JSON webhook, slack+https:// Slack webhook, sns:arn:aws:sns:REGION:ACCOUNT:TOPIC), separated by whitespace or commas. An unset one is a preflight warning"
                    }
                }
            },
            "defaults": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "retry": {"$ref": "#/$defs/retry"},
                    "timeout": {"$ref": "#/$defs/duration", "description": "Per-step timeout (default 10m)"},
                    "read_timeout": {"$ref": "#/$defs/duration", "description": "Deadline of one read or poll of a cloud API, SDK retries included (default 10s, at most 10m); a region that holds it is probed and, when silent, refused at once afterwards"},
                    "probe_timeout": {"$ref": "#/$defs/duration", "description": "How long a region has to answer the probe sent at the run's start (and the half-open probes after) before it counts as unreachable (default 3s, at most 1m, not longer than read_timeout)"}
                }
            },
            "step": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "action"],
                    "properties": {"action": {"enum": actions}},
                    "allOf": CATALOGUE.iter().map(|s| json!({
                        "if": {"properties": {"action": {"const": s.name}}, "required": ["action"]},
                        "then": {"$ref": format!("#/$defs/step.{}", s.name)}
                    })).collect::<Vec<_>>()
                }
            }
        },
        "$defs": defs
    })
}

fn templated(strict: Value, doc: &str) -> Value {
    json!({
        "description": doc,
        "anyOf": [strict, {"type": "string", "pattern": TEMPLATE_PATTERN}]
    })
}

/// `[accounts]`: one closed table per account name.
fn accounts() -> Value {
    let mut props = Map::new();
    for key in ACCOUNT_KEYS {
        let (strict, doc) = match *key {
            "id" => (
                json!({"type": "string", "pattern": ACCOUNT_ID_PATTERN}),
                "The 12-digit AWS account id".to_string(),
            ),
            "role_arn" => (
                json!({"type": "string", "pattern": ROLE_ARN_PATTERN}),
                "Role to assume (sts:AssumeRole) with the caller's credentials; a role in this \
                 account. Without it the caller's own credentials are for this account"
                    .to_string(),
            ),
            "external_id" => (
                json!({"type": "string", "pattern": EXTERNAL_ID.pattern()}),
                "ExternalId of the AssumeRole call, when the role's trust policy asks for one"
                    .to_string(),
            ),
            "session_name" => (
                json!({"type": "string", "pattern": SESSION_NAME.pattern()}),
                "RoleSessionName, shown in CloudTrail (default drpilot-<runbook name>)".to_string(),
            ),
            other => unreachable!("account key `{other}` has no schema"),
        };
        props.insert((*key).into(), templated(strict, &doc));
    }
    json!({
        "type": "object",
        "description": "AWS accounts the steps act in, by name; a step names one with `account`. Credentials come from the caller and the roles it assumes, never from the runbook",
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {
            "type": "object",
            "additionalProperties": false,
            "required": ["id"],
            "properties": props,
            "dependentRequired": {"external_id": ["role_arn"], "session_name": ["role_arn"]}
        }
    })
}

fn retry() -> Value {
    let d = json!({"$ref": "#/$defs/duration"});
    json!({
        "type": "object",
        "additionalProperties": false,
        "description": "Exponential backoff; keys not given inherit from [defaults].retry",
        "properties": {
            "attempts": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Total attempts, the first included"},
            "initial": d, "max": d, "max_elapsed": d,
            "jitter": {"type": "boolean"}
        }
    })
}

fn field_schema(f: &FieldSpec) -> Value {
    match f.kind {
        FieldKind::Str => templated(json!({"type": "string", "minLength": 1}), f.doc),
        FieldKind::Region => templated(json!({"type": "string", "pattern": REGION_PATTERN}), f.doc),
        FieldKind::ClusterArn => templated(
            json!({"type": "string", "pattern": CLUSTER_ARN_PATTERN}),
            f.doc,
        ),
        FieldKind::ClusterArnOrAuto => templated(
            json!({"anyOf": [{"const": "auto"}, {"type": "string", "pattern": CLUSTER_ARN_PATTERN}]}),
            f.doc,
        ),
        FieldKind::Duration => json!({"$ref": "#/$defs/duration", "description": f.doc}),
        FieldKind::Bool => json!({"type": "boolean", "description": f.doc}),
        FieldKind::Int { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max, "description": f.doc})
        }
        FieldKind::Acu { min, max } => json!({
            "type": "number", "minimum": min, "maximum": max, "multipleOf": 0.5,
            "description": f.doc
        }),
        FieldKind::Enum(values) => templated(json!({"enum": values}), f.doc),
        FieldKind::StrList => json!({
            "type": "array", "minItems": 1, "items": {"type": "string"}, "description": f.doc
        }),
        FieldKind::Url => templated(
            json!({"type": "string", "pattern": "^https?://[^/]"}),
            f.doc,
        ),
        FieldKind::TableList(sub) => json!({
            "type": "array", "minItems": 1, "description": f.doc,
            "items": object(sub, Map::new(), &[])
        }),
    }
}

/// An object with `fields` plus `extra` properties, closed to anything else.
fn object(fields: &[FieldSpec], mut props: Map<String, Value>, required: &[&str]) -> Value {
    let mut req: Vec<&str> = required.to_vec();
    for f in fields {
        props.insert(f.name.into(), field_schema(f));
        if f.required {
            req.push(f.name);
        }
    }
    json!({"type": "object", "additionalProperties": false, "required": req, "properties": props})
}

fn step(spec: &Spec) -> Value {
    let d = json!({"$ref": "#/$defs/duration"});
    let mut props = Map::new();
    props.insert(
        "id".into(),
        json!({"type": "string", "pattern": ID_PATTERN, "description": "Unique step id"}),
    );
    props.insert(
        "action".into(),
        json!({"const": spec.name, "description": spec.doc}),
    );
    props.insert("description".into(), json!({"type": "string"}));
    props.insert("after".into(), json!({"type": "array", "items": {"type": "string"}, "description": "Steps that must succeed first"}));
    props.insert("account".into(), json!({"type": "string", "pattern": NAME_PATTERN, "description": "The [accounts] entry whose credentials the step, its gate and its rollback use (default: the caller's own)"}));
    props.insert(
        "approval".into(),
        json!({"type": "boolean", "description": "An operator must approve before the step runs"}),
    );
    props.insert(
        "approvers".into(),
        json!({"type": "integer", "minimum": 1, "maximum": crate::runbook::model::MAX_APPROVERS, "description": "How many distinct people must approve (a step that needs approval; default 1): the run's operator counts once, the others approve with `drpilot approve`"}),
    );
    props.insert("timeout".into(), d.clone());
    props.insert("expected".into(), json!({"$ref": "#/$defs/duration", "description": "Expected duration, for the critical path"}));
    props.insert("retry".into(), json!({"$ref": "#/$defs/retry"}));
    let on_unreachable: Vec<&str> = OnUnreachable::NAMES
        .iter()
        .copied()
        .filter(|n| !(spec.is_mutating() || spec.kind == Kind::Approval) || *n != "skip")
        .collect();
    props.insert(
        "on_unreachable".into(),
        json!({
            "enum": on_unreachable,
            "description": "When a region the step calls is known to be unreachable: skip (read-only steps; the default in an unplanned runbook), fail (the default for read-only steps of a planned one), defer (leave it for `drpilot resume`; the default for steps after recovered_when, and only for them), retry (the default for steps that change something)"
        }),
    );
    let checks: Vec<&str> = CATALOGUE
        .iter()
        .filter(|s| s.usage == Usage::Check)
        .map(|s| s.name)
        .collect();
    props.insert(
        "gate".into(),
        json!({
            "type": "object",
            "required": ["check"],
            "properties": {"check": {"enum": checks}},
            "allOf": checks.iter().map(|c| json!({
                "if": {"properties": {"check": {"const": c}}, "required": ["check"]},
                "then": {"$ref": format!("#/$defs/gate.{c}")}
            })).collect::<Vec<_>>()
        }),
    );
    let mutating: Vec<&str> = CATALOGUE
        .iter()
        .filter(|s| s.is_mutating())
        .map(|s| s.name)
        .collect();
    let mut rollback_rules: Vec<Value> = mutating
        .iter()
        .map(|a| {
            json!({
                "if": {"properties": {"action": {"const": a}}, "required": ["action"]},
                "then": {"$ref": format!("#/$defs/rollback.{a}")}
            })
        })
        .collect();
    // Without `action`, the rollback is the step action's inverse and takes no keys.
    rollback_rules
        .push(json!({"if": {"not": {"required": ["action"]}}, "then": {"maxProperties": 0}}));
    props.insert(
        "rollback".into(),
        json!({
            "type": "object",
            "description": match spec.inverse {
                Some(inv) => format!("Compensation. Empty: {inv}"),
                None => "Compensation: an action with its fields".to_string(),
            },
            "properties": {"action": {"enum": mutating}},
            "allOf": rollback_rules
        }),
    );
    let mut s = object(spec.fields, props, &["id", "action"]);
    s["description"] = json!(spec.doc);
    s
}

fn gate(spec: &Spec) -> Value {
    let mut props = Map::new();
    props.insert(
        "check".into(),
        json!({"const": spec.name, "description": spec.doc}),
    );
    props.insert("timeout".into(), json!({"$ref": "#/$defs/duration", "description": "Give up after (default: the step's timeout)"}));
    props.insert(
        "interval".into(),
        json!({"$ref": "#/$defs/duration", "description": "Time between polls (default 5s)"}),
    );
    object(spec.fields, props, &["check"])
}

fn rollback(spec: &Spec) -> Value {
    let mut props = Map::new();
    props.insert(
        "action".into(),
        json!({"const": spec.name, "description": spec.doc}),
    );
    object(spec.fields, props, &["action"])
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The schema's account rules and the parser's agree on every value here: an editor
    /// never accepts an account that `drpilot validate` refuses, or the reverse, except
    /// for what only the validator can see (the role's account against `id`).
    #[test]
    fn account_schema_agrees_with_the_parser() {
        let schema = runbook_schema();
        let account = &schema["properties"]["accounts"]["additionalProperties"];
        let keys: Vec<&str> = account["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ACCOUNT_KEYS);
        let v = jsonschema::validator_for(account).expect("the account schema compiles");
        let role = "arn:aws:iam::444455556666:role/drpilot";
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("id", "444455556666")], true),
            (&[("id", "4444")], false),
            (&[("id", "44445555666a")], false),
            (&[("id", "444455556666"), ("role_arn", role)], true),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", "arn:aws-us-gov:iam::444455556666:role/dr/ops/x"),
                ],
                true,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", "arn:aws:iam::444455556666:user/x"),
                ],
                false,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", "arn:aws:iam:us-east-1:444455556666:role/x"),
                ],
                false,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", role),
                    ("external_id", "acme:dr/7f3a@x"),
                ],
                true,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", role),
                    ("external_id", "a"),
                ],
                false,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", role),
                    ("external_id", "a b"),
                ],
                false,
            ),
            (&[("id", "444455556666"), ("external_id", "acme")], false),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", role),
                    ("session_name", "drpilot-dr.1"),
                ],
                true,
            ),
            (
                &[
                    ("id", "444455556666"),
                    ("role_arn", role),
                    ("session_name", "dr:1"),
                ],
                false,
            ),
            (
                &[("id", "444455556666"), ("session_name", "drpilot")],
                false,
            ),
            (&[("id", "444455556666"), ("secret_access_key", "x")], false),
        ];
        for (entries, valid) in cases {
            let mut json = Map::new();
            let mut toml =
                String::from("[runbook]\nname = \"rb\"\nmode = \"planned\"\n[accounts.dns]\n");
            for (k, value) in *entries {
                json.insert((*k).into(), json!(value));
                toml.push_str(&format!("{k} = \"{value}\"\n"));
            }
            toml.push_str("[[step]]\nid = \"a\"\naction = \"wait\"\nduration = \"1s\"\n");
            let parsed = crate::runbook::load_str(Path::new("a.toml"), &toml).is_ok();
            assert_eq!(parsed, *valid, "parser on {entries:?}");
            assert_eq!(
                v.is_valid(&Value::Object(json)),
                *valid,
                "schema on {entries:?}"
            );
        }
    }
}
