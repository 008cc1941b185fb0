//! The field sets several catalogue entries share, and the shorthands the entries
//! are written with.

use super::{FieldKind, FieldSpec, opt, req};

pub(super) const DURATION: FieldKind = FieldKind::Duration;
pub(super) const STR: FieldKind = FieldKind::Str;
pub(super) const BOOL: FieldKind = FieldKind::Bool;
pub(super) const PORT: FieldKind = FieldKind::Int { min: 1, max: 65535 };
/// A size of an Auto Scaling group: an `Integer` of the API, never negative.
pub(super) const ASG_SIZE: FieldKind = FieldKind::Int {
    min: 0,
    max: i32::MAX as i64,
};

pub(super) const RECORD_FIELDS: &[FieldSpec] = &[
    req("name", STR, "Record name, e.g. \"api.example.com.\""),
    req(
        "type",
        FieldKind::Enum(&["A", "AAAA", "CNAME", "TXT", "MX", "SRV", "CAA", "NS", "PTR"]),
        "Record type",
    ),
    opt(
        "set_identifier",
        STR,
        "SetIdentifier of a routing-policy record (failover, weighted, ...)",
    ),
    opt(
        "ttl",
        FieldKind::Int {
            min: 0,
            max: 2_147_483_647,
        },
        "TTL in seconds (not for alias records)",
    ),
    opt(
        "values",
        FieldKind::StrList,
        "Resource record values; give values or alias_dns_name",
    ),
    opt("alias_dns_name", STR, "Alias target DNS name"),
    opt("alias_zone_id", STR, "Alias target hosted zone id"),
    opt(
        "evaluate_target_health",
        BOOL,
        "Alias EvaluateTargetHealth (default false)",
    ),
    opt(
        "weight",
        FieldKind::Int { min: 0, max: 255 },
        "Weighted routing weight",
    ),
    opt(
        "failover",
        FieldKind::Enum(&["PRIMARY", "SECONDARY"]),
        "Failover routing role",
    ),
    opt(
        "health_check_id",
        STR,
        "Health check attached to the record",
    ),
];

pub(super) const PASSWORD_ENV: FieldSpec = opt(
    "password_env",
    STR,
    "Name of the environment variable holding the password; never the password itself",
);
pub(super) const SSLMODE: FieldSpec = opt(
    "sslmode",
    FieldKind::Enum(&["disable", "prefer", "require"]),
    "\"require\": TLS, the server's certificate verified (system roots, or SSL_CERT_FILE); \
     \"prefer\" (the default): TLS whenever the server offers it (certificate verified too), \
     else plaintext; \"disable\": no TLS",
);
pub(super) const BEAT_INTERVAL: FieldSpec = opt(
    "interval",
    DURATION,
    "How often the writer (`drpilot heartbeat`, a drill) writes: the measurement's resolution (default 1s)",
);
pub(super) const BEAT_WAIT: FieldSpec = opt(
    "wait",
    DURATION,
    "How long the step waits for a heartbeat written after it started (default 30s)",
);

pub(super) const VALKEY_CLUSTER: FieldSpec = opt(
    "cluster",
    BOOL,
    "Cluster mode: true probes the endpoint as a cluster (topology from CLUSTER SHARDS, or \
     CLUSTER SLOTS before 7.0; MOVED/ASK followed; every shard's primary checked; canary \
     and heartbeats written per shard behind a hash tag in its slots, so the RPO is measured \
     per shard and is the worst shard's), false as one node; default: detected from `INFO \
     cluster` (`cluster_enabled:1`; set it for an ACL user that may not run INFO)",
);

pub(super) const PG_FIELDS: &[FieldSpec] = &[
    req("host", STR, "Endpoint host name"),
    opt("port", PORT, "Port (default 5432)"),
    opt("database", STR, "Database (default \"postgres\")"),
    req("user", STR, "User name"),
    PASSWORD_ENV,
    req(
        "expect",
        FieldKind::Enum(&["writer", "reader"]),
        "writer: pg_is_in_recovery() is false; reader: true",
    ),
    opt(
        "canary",
        BOOL,
        "Write and read back a canary row (writers only; default false)",
    ),
    SSLMODE,
];

pub(super) const VALKEY_DATA_FIELDS: &[FieldSpec] = &[
    req("host", STR, "Endpoint host name"),
    opt("port", PORT, "Port (default 6379)"),
    opt("username", STR, "ACL user name"),
    PASSWORD_ENV,
    req(
        "expect",
        FieldKind::Enum(&["primary", "replica"]),
        "Expected ROLE of the node (of every shard's primary, for a cluster)",
    ),
    opt(
        "canary",
        BOOL,
        "SET and GET a canary key with a TTL (primary only; in every shard of a cluster; default false)",
    ),
    opt("tls", BOOL, "Use TLS (default false)"),
    VALKEY_CLUSTER,
];

pub(super) const PG_HEARTBEAT_FIELDS: &[FieldSpec] = &[
    req(
        "host",
        STR,
        "The endpoint applications write to (the writer endpoint a failover moves)",
    ),
    opt("port", PORT, "Port (default 5432)"),
    opt("database", STR, "Database (default \"postgres\")"),
    req("user", STR, "User name"),
    PASSWORD_ENV,
    SSLMODE,
    opt(
        "table",
        STR,
        "Heartbeat table, `name` or `schema.name` (default \"drpilot_heartbeat\"; created by the writer)",
    ),
    BEAT_INTERVAL,
    BEAT_WAIT,
];

pub(super) const VALKEY_HEARTBEAT_FIELDS: &[FieldSpec] = &[
    req(
        "host",
        STR,
        "The endpoint applications write to (the primary endpoint a failover moves)",
    ),
    opt("port", PORT, "Port (default 6379)"),
    opt("username", STR, "ACL user name"),
    PASSWORD_ENV,
    opt("tls", BOOL, "Use TLS (default false)"),
    opt(
        "key",
        STR,
        "Sorted set holding the heartbeats (default \"drpilot:heartbeat\"); in a cluster, one per shard, behind the shard's hash tag",
    ),
    VALKEY_CLUSTER,
    BEAT_INTERVAL,
    BEAT_WAIT,
];

pub(super) const HTTP_FIELDS: &[FieldSpec] = &[
    req("url", FieldKind::Url, "URL to request"),
    opt(
        "method",
        FieldKind::Enum(&["GET", "HEAD", "POST"]),
        "HTTP method (default GET)",
    ),
    opt(
        "expect_status",
        FieldKind::Int { min: 100, max: 599 },
        "Expected status (default 200)",
    ),
    opt("body_contains", STR, "Text the body must contain"),
    opt("max_latency", DURATION, "Slowest acceptable response time"),
];

/// The values of a routing control's state, as the ARC API spells them.
pub const ROUTING_CONTROL_STATES: &[&str] = &["On", "Off"];

pub(super) const CLUSTER_ENDPOINT_FIELDS: &[FieldSpec] = &[
    req(
        "url",
        FieldKind::Url,
        "The endpoint's URL, as DescribeCluster lists it (ClusterEndpoints[].Endpoint)",
    ),
    req(
        "region",
        FieldKind::Region,
        "The endpoint's region; requests to it are signed for this region",
    ),
];

pub(super) const CLUSTER_ENDPOINTS: FieldSpec = req(
    "cluster_endpoints",
    FieldKind::TableList(CLUSTER_ENDPOINT_FIELDS),
    "The ARC cluster's regional endpoints, tried in this order until one answers",
);

pub(super) const ROUTING_CONTROL_UPDATE_FIELDS: &[FieldSpec] = &[
    req("routing_control_arn", STR, "Routing control ARN"),
    req(
        "state",
        FieldKind::Enum(ROUTING_CONTROL_STATES),
        "State to set: On lets traffic flow to the cell the control guards",
    ),
];

pub(super) const DNS_FIELDS: &[FieldSpec] = &[
    req("name", STR, "Name to resolve"),
    opt(
        "type",
        FieldKind::Enum(&["A", "AAAA", "CNAME"]),
        "Record type (default A)",
    ),
    req(
        "expect",
        FieldKind::StrList,
        "Addresses or CNAME targets the answer must equal (as a set)",
    ),
    opt(
        "resolvers",
        FieldKind::StrList,
        "Resolver addresses (ip or ip:port); default: the system's",
    ),
];
