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

use super::catalogue::{CATALOGUE, FieldKind, FieldSpec, Spec, Usage};

/// Version of the schema's shape; bumped when a runbook valid before becomes invalid.
pub const SCHEMA_VERSION: u32 = 1;

const TEMPLATE_PATTERN: &str = r"\{\{[^}]*\}\}";
const REGION_PATTERN: &str = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$";
const CLUSTER_ARN_PATTERN: &str =
    r"^arn:aws[a-z-]*:rds:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:cluster:.+$";
const ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";
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
        "description": "A failover runbook: a dependency graph of steps. See `drpilot validate` for the checks a schema cannot express (ids unique, `after` refers to steps, no cycles, params exist).",
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
                    "rpo": {"$ref": "#/$defs/duration", "description": "Recovery point objective"}
                }
            },
            "params": {
                "type": "object",
                "description": "Values for {{name}} templates in string fields",
                "propertyNames": {"pattern": "^[A-Za-z0-9_-]+$"},
                "additionalProperties": {"type": ["string", "integer", "boolean"]}
            },
            "defaults": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "retry": {"$ref": "#/$defs/retry"},
                    "timeout": {"$ref": "#/$defs/duration", "description": "Per-step timeout (default 10m)"}
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
    props.insert(
        "approval".into(),
        json!({"type": "boolean", "description": "An operator must approve before the step runs"}),
    );
    props.insert("timeout".into(), d.clone());
    props.insert("expected".into(), json!({"$ref": "#/$defs/duration", "description": "Expected duration, for the critical path"}));
    props.insert("retry".into(), json!({"$ref": "#/$defs/retry"}));
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
