//! Request building, region routing, retry behaviour and error mapping of the SDK
//! implementation, with the SDK's own mocking interceptor (no network). The wire
//! behaviour against a real peer is proven against the AWS emulator in `tests/it`.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_types::retry::RetryConfig;
use aws_types::region::Region;

use super::route53::normalize_name;
use super::s3::bucket_name;
use super::*;
use crate::cloud::CloudErrorKind as K;
use crate::cloud::{
    ChangeAction, ChangeStatus, Ecs, FailoverStatus, PutCondition, Quota, Rds, RecordChange,
    RecordSet, Route53, RoutingControlState, RoutingControlUpdate, RoutingControls, S3,
    StateObjects,
};

fn cloud_with(rules: &[&Rule], hints: &[&str]) -> AwsCloud {
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    for r in rules {
        interceptor = interceptor.with_rule(r);
    }
    let sdk = SdkConfig::builder()
        .region(Region::new("eu-central-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .http_client(create_mock_http_client())
        .behavior_version(BehaviorVersion::latest())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    AwsCloud::from_parts(
        sdk,
        None,
        AwsOptions {
            region_hints: hints.iter().map(|s| s.to_string()).collect(),
            ..AwsOptions::default()
        },
        vec![SharedInterceptor::new(interceptor)],
    )
}

fn query_error(status: u16, code: &str) -> (u16, Option<String>) {
    (
        status,
        Some(format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{code} happened</Message></Error><RequestId>r1</RequestId></ErrorResponse>"
        )),
    )
}

const USE1: &str = "arn:aws:rds:us-east-1:111122223333:cluster:acme-prod-use1";
const USW2: &str = "arn:aws:rds:us-west-2:111122223333:cluster:acme-prod-usw2";

fn global_cluster(status: &str, wire_failover: Option<&str>) -> aws_sdk_rds::types::GlobalCluster {
    use aws_sdk_rds::types::{FailoverState, FailoverStatus, GlobalClusterMember};
    let mut g = aws_sdk_rds::types::GlobalCluster::builder()
        .global_cluster_identifier("acme-prod")
        .endpoint("acme-prod.global-0123456789ab.global.rds.amazonaws.com")
        .status(status)
        .engine_version("16.4")
        .global_cluster_members(
            GlobalClusterMember::builder()
                .db_cluster_arn(USE1)
                .is_writer(true)
                .build(),
        )
        .global_cluster_members(
            GlobalClusterMember::builder()
                .db_cluster_arn(USW2)
                .is_writer(false)
                .build(),
        );
    if let Some(s) = wire_failover {
        g = g.failover_state(
            FailoverState::builder()
                .status(FailoverStatus::from(s))
                .from_db_cluster_arn(USE1)
                .to_db_cluster_arn(USW2)
                .is_data_loss_allowed(false)
                .build(),
        );
    }
    g.build()
}

#[tokio::test]
async fn describe_global_cluster_goes_to_the_region_asked_and_reads_switching_over() {
    let rule = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .match_requests(|r| r.global_cluster_identifier() == Some("acme-prod"))
        .then_output(|| {
            aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput::builder(
            )
            .global_clusters(global_cluster("switching-over", Some("switching-over")))
            .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    let g = aws
        .describe_global_cluster("us-west-2", "acme-prod")
        .await
        .unwrap();
    assert_eq!(g.status, "switching-over");
    assert_eq!(g.writer().map(|w| w.region.as_str()), Some("us-east-1"));
    assert_eq!(g.members[1].region, "us-west-2");
    assert_eq!(
        g.endpoint.as_deref(),
        Some("acme-prod.global-0123456789ab.global.rds.amazonaws.com")
    );
    let f = g.failover_state.expect("failover state");
    assert_eq!(f.status, FailoverStatus::SwitchingOver);
    assert_eq!(f.to_cluster_arn, USW2);
    let calls = aws.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].operation, "DescribeGlobalClusters");
    assert_eq!(calls[0].region, "us-west-2");
}

#[tokio::test]
async fn an_unknown_global_cluster_is_not_found() {
    let rule = mock!(aws_sdk_rds::Client::describe_global_clusters).then_http_response(|| {
        let (s, b) = query_error(404, "GlobalClusterNotFoundFault");
        aws_smithy_runtime_api::http::Response::new(
            s.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(b.unwrap()),
        )
    });
    let aws = cloud_with(&[&rule], &[]);
    let e = aws
        .describe_global_cluster("us-east-1", "nope")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::NotFound);
    assert_eq!(e.code.as_deref(), Some("GlobalClusterNotFoundFault"));
    assert_eq!(e.operation, "DescribeGlobalClusters");
    assert_eq!(e.region.as_deref(), Some("us-east-1"));
}

#[tokio::test]
async fn unplanned_failover_sends_allow_data_loss_to_the_target_region_once() {
    let rule = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .match_requests(|r| {
            r.allow_data_loss() == Some(true)
                && r.switchover().is_none()
                && r.target_db_cluster_identifier() == Some(USW2)
                && r.global_cluster_identifier() == Some("acme-prod")
        })
        .then_output(|| {
            aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput::builder()
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    aws.failover_global_cluster("us-west-2", "acme-prod", USW2, true)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(aws.calls()[0].region, "us-west-2");
}

#[tokio::test]
async fn a_switchover_by_failover_global_cluster_sends_no_data_loss_flag() {
    let rule = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .match_requests(|r| r.allow_data_loss().is_none())
        .then_output(|| {
            aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput::builder()
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    aws.failover_global_cluster("us-east-1", "acme-prod", USW2, false)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_mutation_that_fails_with_5xx_is_not_retried_by_the_sdk() {
    let (status, body) = query_error(503, "ServiceUnavailable");
    let rule = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .sequence()
        .http_status(status, body)
        .output(|| {
            aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput::builder()
                .build()
        })
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let e = aws
        .failover_global_cluster("us-west-2", "acme-prod", USW2, true)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Transient);
    assert_eq!(rule.num_calls(), 1, "the SDK must not resend a failover");
    assert_eq!(aws.api_calls().get("rds:FailoverGlobalCluster"), Some(&1));
}

#[tokio::test]
async fn a_read_that_fails_with_5xx_is_retried_by_the_sdk() {
    let (status, body) = query_error(500, "InternalFailure");
    let rule = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .sequence()
        .http_status(status, body)
        .output(|| {
            aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput::builder(
            )
            .global_clusters(global_cluster("available", None))
            .build()
        })
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let g = aws
        .describe_global_cluster("us-east-1", "acme-prod")
        .await
        .unwrap();
    assert!(g.failover_state.is_none());
    assert_eq!(rule.num_calls(), 2);
    assert_eq!(aws.calls().len(), 2, "the call log counts every attempt");
}

#[tokio::test]
async fn throttling_and_invalid_state_keep_their_kinds() {
    let (s1, b1) = query_error(400, "Throttling");
    let (s2, b2) = query_error(400, "InvalidGlobalClusterStateFault");
    let rule = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .sequence()
        .http_status(s1, b1)
        .http_status(s2, b2)
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let e = aws
        .switchover_global_cluster("us-east-1", "acme-prod", USW2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Throttling);
    let e = aws
        .switchover_global_cluster("us-east-1", "acme-prod", USW2)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidState);
    assert_eq!(e.code.as_deref(), Some("InvalidGlobalClusterStateFault"));
    assert!(e.message.contains("happened"), "{e}");
}

#[tokio::test]
async fn a_cluster_is_described_in_the_region_of_its_arn() {
    let rule = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(USW2))
        .then_output(|| {
            use aws_sdk_rds::types::{DbCluster as C, DbClusterMember};
            aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput::builder()
                .db_clusters(
                    C::builder()
                        .db_cluster_arn(USW2)
                        .status("available")
                        .engine_version("16.4")
                        .endpoint("acme-prod-usw2.cluster-x.us-west-2.rds.amazonaws.com")
                        .db_cluster_members(
                            DbClusterMember::builder()
                                .db_instance_identifier("a")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    let c = aws.describe_cluster(USW2).await.unwrap();
    assert_eq!(c.instances, 1);
    assert_eq!(c.status, "available");
    assert_eq!(aws.calls()[0].region, "us-west-2");
    let e = aws.describe_cluster("not-an-arn").await.unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
}

/// A datapoint time `secs` seconds ago.
fn ago(secs: u64) -> std::time::SystemTime {
    std::time::SystemTime::now() - Duration::from_secs(secs)
}

/// One query of a GetMetricData request, as the fake CloudWatch saw it.
#[derive(Debug, Clone, PartialEq)]
struct SeenQuery {
    id: String,
    namespace: String,
    metric: String,
    dimensions: Vec<(String, String)>,
    period: i32,
    stat: String,
}

type SeenRequests = std::sync::Arc<std::sync::Mutex<Vec<Vec<SeenQuery>>>>;

/// CloudWatch answering GetMetricData as AWS does: each query of the request gets the
/// datapoints of its metric (newest first, with the query's Id), and a metric that is
/// not in `series` gets none. Every request's queries are recorded.
fn fake_cloudwatch(series: &[(&str, &[(std::time::SystemTime, f64)])]) -> (Rule, SeenRequests) {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_types::DateTime;
    let series: std::collections::HashMap<String, Vec<(std::time::SystemTime, f64)>> = series
        .iter()
        .map(|(name, points)| {
            let mut points = points.to_vec();
            points.sort_by_key(|p| std::cmp::Reverse(p.0));
            (name.to_string(), points)
        })
        .collect();
    let seen = SeenRequests::default();
    let record = seen.clone();
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |r| {
        let queries: Vec<SeenQuery> = r
            .metric_data_queries()
            .iter()
            .map(|q| {
                let stat = q.metric_stat();
                let m = stat.and_then(|s| s.metric());
                SeenQuery {
                    id: q.id().unwrap_or_default().to_string(),
                    namespace: m.and_then(|m| m.namespace()).unwrap_or_default().into(),
                    metric: m.and_then(|m| m.metric_name()).unwrap_or_default().into(),
                    dimensions: m
                        .map(|m| m.dimensions())
                        .unwrap_or_default()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_string(),
                                d.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    period: stat.and_then(|s| s.period()).unwrap_or_default(),
                    stat: stat.and_then(|s| s.stat()).unwrap_or_default().into(),
                }
            })
            .collect();
        let mut out = GetMetricDataOutput::builder();
        for q in &queries {
            let mut result = MetricDataResult::builder().id(&q.id);
            for (at, v) in series.get(&q.metric).into_iter().flatten() {
                result = result.timestamps(DateTime::from(*at)).values(*v);
            }
            out = out.metric_data_results(result.build());
        }
        record.lock().unwrap().push(queries);
        out.build()
    });
    (rule, seen)
}

const RPO_LAG: &str = "AuroraGlobalDBRPOLag";
const REPLICATION_LAG: &str = "AuroraGlobalDBReplicationLag";

async fn lag_of_usw2(rule: &Rule) -> Option<Duration> {
    let aws = cloud_with(&[rule], &[]);
    let lag = aws
        .replication_lag("us-west-2", "acme-prod", USW2)
        .await
        .unwrap();
    assert_eq!(aws.calls()[0].region, "us-west-2", "the secondary's region");
    lag
}

/// The metric names of each request the fake saw.
fn asked(seen: &SeenRequests) -> Vec<Vec<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| r.iter().map(|q| q.metric.clone()).collect())
        .collect()
}

#[tokio::test]
async fn lag_is_read_from_cloudwatch_in_the_secondary_region_in_milliseconds() {
    let (rule, _) = fake_cloudwatch(&[(RPO_LAG, &[(ago(30), 2500.0), (ago(90), 9000.0)])]);
    assert_eq!(
        lag_of_usw2(&rule).await,
        Some(Duration::from_millis(2500)),
        "the newest datapoint"
    );
}

#[tokio::test]
async fn lag_asks_for_both_lag_metrics_of_the_cluster_in_one_request() {
    let (rule, seen) = fake_cloudwatch(&[]);
    assert_eq!(lag_of_usw2(&rule).await, None, "no datapoint of either");
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one GetMetricData: {requests:?}");
    let mut metrics: Vec<&str> = requests[0].iter().map(|q| q.metric.as_str()).collect();
    metrics.sort();
    assert_eq!(metrics, [RPO_LAG, REPLICATION_LAG], "{requests:?}");
    for q in &requests[0] {
        assert_eq!(q.namespace, "AWS/RDS", "{q:?}");
        assert_eq!(
            q.dimensions,
            [(
                "DBClusterIdentifier".to_string(),
                "acme-prod-usw2".to_string()
            )],
            "{q:?}"
        );
        assert_eq!((q.period, q.stat.as_str()), (60, "Maximum"), "{q:?}");
    }
    assert_ne!(requests[0][0].id, requests[0][1].id, "distinct query ids");
}

#[tokio::test]
async fn a_lag_datapoint_older_than_the_bound_reads_as_unknown_not_as_its_value() {
    // The primary's region went dark ten minutes ago: the secondary's metric stopped,
    // and its last datapoint (2 s) says nothing about the lag now.
    let (rule, _) = fake_cloudwatch(&[(RPO_LAG, &[(ago(600), 2000.0), (ago(660), 1800.0)])]);
    assert_eq!(lag_of_usw2(&rule).await, None);
    // Just past the bound: unknown; just within it: the value.
    let bound = super::DATAPOINT_MAX_AGE.as_secs();
    let (rule, _) = fake_cloudwatch(&[(RPO_LAG, &[(ago(bound + 10), 2000.0)])]);
    assert_eq!(lag_of_usw2(&rule).await, None);
    let (rule, _) = fake_cloudwatch(&[(RPO_LAG, &[(ago(bound - 10), 2000.0)])]);
    assert_eq!(lag_of_usw2(&rule).await, Some(Duration::from_secs(2)));
    // The same for the fallback metric.
    let (rule, _) = fake_cloudwatch(&[(REPLICATION_LAG, &[(ago(600), 2000.0)])]);
    assert_eq!(lag_of_usw2(&rule).await, None);
}

#[tokio::test]
async fn replication_lag_is_read_when_the_cluster_publishes_no_rpo_lag() {
    // Aurora MySQL versions without AuroraGlobalDBRPOLag publish only this one.
    let (rule, seen) =
        fake_cloudwatch(&[(REPLICATION_LAG, &[(ago(20), 1500.0), (ago(80), 700.0)])]);
    assert_eq!(lag_of_usw2(&rule).await, Some(Duration::from_millis(1500)));
    assert_eq!(asked(&seen).len(), 1, "one request: {:?}", asked(&seen));
}

#[tokio::test]
async fn a_fresh_rpo_lag_wins_over_a_newer_replication_lag() {
    let (rule, seen) = fake_cloudwatch(&[
        (RPO_LAG, &[(ago(40), 800.0)]),
        (REPLICATION_LAG, &[(ago(5), 3000.0)]),
    ]);
    assert_eq!(lag_of_usw2(&rule).await, Some(Duration::from_millis(800)));
    assert_eq!(asked(&seen).len(), 1, "one request: {:?}", asked(&seen));
    assert_eq!(asked(&seen)[0].len(), 2, "both metrics were asked");
}

#[tokio::test]
async fn a_cluster_whose_rpo_lag_stopped_has_unknown_lag_even_if_replication_lag_goes_on() {
    // The cluster publishes AuroraGlobalDBRPOLag (it has datapoints in the window), so
    // that is its lag; that the other metric goes on does not make an old value current.
    let (rule, _) = fake_cloudwatch(&[
        (RPO_LAG, &[(ago(600), 800.0)]),
        (REPLICATION_LAG, &[(ago(5), 3000.0)]),
    ]);
    assert_eq!(lag_of_usw2(&rule).await, None);
}

#[tokio::test]
async fn record_changes_are_built_exactly_and_sent_without_retries() {
    use aws_sdk_route53::types::{ChangeInfo as CI, ChangeStatus as CS};
    let rule = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(|r| {
            let Some(batch) = r.change_batch() else {
                return false;
            };
            let c = &batch.changes()[0];
            let rr = c.resource_record_set().unwrap();
            r.hosted_zone_id() == Some("Z1")
                && c.action().as_str() == "UPSERT"
                && rr.name() == "db-writer.acme.internal."
                && rr.r#type().as_str() == "CNAME"
                && rr.ttl() == Some(30)
                && rr.set_identifier() == Some("usw2")
                && rr.failover().map(|f| f.as_str()) == Some("SECONDARY")
                && rr.resource_records()[0].value() == "w.us-west-2.rds.amazonaws.com"
        })
        .then_output(|| {
            aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput::builder()
                .change_info(
                    CI::builder()
                        .id("/change/C1")
                        .status(CS::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    let info = aws
        .change_record_sets(
            "Z1",
            &[RecordChange {
                action: ChangeAction::Upsert,
                record: RecordSet {
                    name: "db-writer.acme.internal.".into(),
                    record_type: "CNAME".into(),
                    set_identifier: Some("usw2".into()),
                    ttl: Some(30),
                    values: vec!["w.us-west-2.rds.amazonaws.com".into()],
                    alias: None,
                    weight: None,
                    failover: Some("SECONDARY".into()),
                    health_check_id: None,
                    routing: Default::default(),
                },
            }],
        )
        .await
        .unwrap();
    assert_eq!(info.status, ChangeStatus::Pending);
    assert_eq!(info.id, "/change/C1");
    assert_eq!(
        aws.calls()[0].region,
        "us-east-1",
        "Route 53's control plane"
    );
    assert_eq!(aws.calls()[0].service, "route53");
}

#[tokio::test]
async fn latency_geolocation_ip_and_geoproximity_fields_survive_a_read_and_a_write() {
    use aws_sdk_route53::types::{
        CidrRoutingConfig, Coordinates, GeoLocation as G, GeoProximityLocation, ResourceRecord,
        ResourceRecordSet, ResourceRecordSetRegion, RrType,
    };
    let latency = || {
        ResourceRecordSet::builder()
            .name("api.acme.example.")
            .r#type(RrType::Cname)
            .set_identifier("use1")
            .ttl(60)
            .region(ResourceRecordSetRegion::UsEast1)
            .multi_value_answer(false)
            .geo_location(G::builder().continent_code("EU").build())
            .cidr_routing_config(
                CidrRoutingConfig::builder()
                    .collection_id("c-1")
                    .location_name("office")
                    .build()
                    .unwrap(),
            )
            .geo_proximity_location(
                GeoProximityLocation::builder()
                    .coordinates(
                        Coordinates::builder()
                            .latitude("49.22")
                            .longitude("-74.01")
                            .build()
                            .unwrap(),
                    )
                    .bias(-10)
                    .build(),
            )
            .resource_records(
                ResourceRecord::builder()
                    .value("api-use1.acme.example")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let list = mock!(aws_sdk_route53::Client::list_resource_record_sets).then_output(move || {
        aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput::builder()
            .resource_record_sets(latency())
            .is_truncated(false)
            .max_items(300)
            .build()
            .unwrap()
    });
    // What is read is what a restore or a DELETE sends back: every field, as read.
    let change = mock!(aws_sdk_route53::Client::change_resource_record_sets)
        .match_requests(move |r| {
            r.change_batch().is_some_and(|b| {
                b.changes()[0].action().as_str() == "DELETE"
                    && b.changes()[0].resource_record_set() == Some(&latency())
            })
        })
        .then_output(|| {
            use aws_sdk_route53::types::{ChangeInfo as CI, ChangeStatus as CS};
            aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsOutput::builder()
                .change_info(
                    CI::builder()
                        .id("/change/C2")
                        .status(CS::Pending)
                        .submitted_at(aws_smithy_types::DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        });
    let aws = cloud_with(&[&list, &change], &[]);
    let sets = aws
        .list_record_sets("Z1", "api.acme.example.", "CNAME")
        .await
        .unwrap();
    assert_eq!(sets.len(), 1);
    let r = &sets[0].routing;
    assert_eq!(r.region.as_deref(), Some("us-east-1"));
    assert_eq!(r.multi_value_answer, Some(false));
    assert_eq!(
        r.geo_location.as_ref().unwrap().continent_code.as_deref(),
        Some("EU")
    );
    assert_eq!(r.cidr.as_ref().unwrap().location_name, "office");
    let gp = r.geo_proximity.as_ref().unwrap();
    assert_eq!(gp.coordinates, Some(("49.22".into(), "-74.01".into())));
    assert_eq!(gp.bias, Some(-10));
    // A journal keeps them (and one without them still reads).
    let json = serde_json::to_value(&sets[0]).unwrap();
    assert_eq!(json["routing"]["region"], "us-east-1");
    let back: RecordSet = serde_json::from_value(json).unwrap();
    assert_eq!(back, sets[0]);
    let mut old = serde_json::to_value(&sets[0]).unwrap();
    old.as_object_mut().unwrap().remove("routing");
    let old: RecordSet = serde_json::from_value(old).unwrap();
    assert!(old.routing.is_empty());
    aws.change_record_sets(
        "Z1",
        &[RecordChange {
            action: ChangeAction::Delete,
            record: back,
        }],
    )
    .await
    .unwrap();
    assert_eq!(change.num_calls(), 1);
}

#[tokio::test]
async fn listing_keeps_only_the_name_and_type_asked_for() {
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet as R, RrType};
    let rule = mock!(aws_sdk_route53::Client::list_resource_record_sets)
        .match_requests(|r| r.start_record_name() == Some("api.acme.example."))
        .then_output(|| {
            let rec = |name: &str, t: RrType, v: &str| {
                R::builder()
                    .name(name)
                    .r#type(t)
                    .ttl(60)
                    .resource_records(ResourceRecord::builder().value(v).build().unwrap())
                    .build()
                    .unwrap()
            };
            aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput::builder()
                .resource_record_sets(rec("API.acme.example.", RrType::Cname, "a"))
                .resource_record_sets(rec("api.acme.example.", RrType::Txt, "t"))
                .resource_record_sets(rec("b.acme.example.", RrType::Cname, "b"))
                .is_truncated(false)
                .max_items(100)
                .build()
                .unwrap()
        });
    let aws = cloud_with(&[&rule], &[]);
    let sets = aws
        .list_record_sets("Z1", "api.acme.example", "CNAME")
        .await
        .unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].values, vec!["a".to_string()]);
}

const HEALTH_STATUS: &str = "HealthCheckStatus";

/// `health_check_healthy("hc-1")` against `rule`, with the call it made.
async fn health_of(rule: &Rule) -> (CloudResult<bool>, Vec<ApiCall>) {
    let aws = cloud_with(&[rule], &["us-west-2", "eu-west-1"]);
    let got = aws.health_check_healthy("hc-1").await;
    (got, aws.calls())
}

#[tokio::test]
async fn health_is_read_from_the_health_check_status_metric_in_us_east_1() {
    let (rule, seen) = fake_cloudwatch(&[(HEALTH_STATUS, &[(ago(20), 1.0), (ago(80), 0.0)])]);
    let (got, calls) = health_of(&rule).await;
    assert!(got.unwrap(), "the newest datapoint is 1");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (
            calls[0].service.as_str(),
            calls[0].operation.as_str(),
            calls[0].region.as_str()
        ),
        ("cloudwatch", "GetMetricData", "us-east-1"),
        "Route 53 publishes its metrics in us-east-1 only, whatever the runbook's regions"
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].len(), 1, "{requests:?}");
    let q = &requests[0][0];
    assert_eq!(
        (q.namespace.as_str(), q.metric.as_str()),
        ("AWS/Route53", HEALTH_STATUS)
    );
    assert_eq!(
        q.dimensions,
        [("HealthCheckId".to_string(), "hc-1".to_string())]
    );
    assert_eq!((q.period, q.stat.as_str()), (60, "Minimum"), "{q:?}");
}

#[tokio::test]
async fn a_zero_health_check_status_is_unhealthy() {
    let (rule, _) = fake_cloudwatch(&[(HEALTH_STATUS, &[(ago(20), 0.0), (ago(80), 1.0)])]);
    assert!(
        !health_of(&rule).await.0.unwrap(),
        "the newest datapoint is 0"
    );
}

#[tokio::test]
async fn without_a_current_health_check_status_datapoint_the_health_is_unknown() {
    // No datapoint at all (a new or unknown health check), and one too old to be a
    // reading of now (us-east-1 went dark): a transient error, never a verdict.
    let bound = super::DATAPOINT_MAX_AGE.as_secs();
    for points in [
        &[][..],
        &[(ago(bound + 10), 1.0), (ago(bound + 70), 1.0)][..],
    ] {
        let (rule, _) = fake_cloudwatch(&[(HEALTH_STATUS, points)]);
        let e = health_of(&rule).await.0.unwrap_err();
        assert_eq!(e.kind, K::Transient, "{e}");
        assert_eq!(e.region.as_deref(), Some("us-east-1"), "{e}");
        assert!(
            e.message.contains("hc-1")
                && e.message.contains("no current HealthCheckStatus datapoint"),
            "{e}"
        );
    }
    // Just within the bound, its value still reads.
    let (rule, _) = fake_cloudwatch(&[(HEALTH_STATUS, &[(ago(bound - 10), 0.0)])]);
    assert!(!health_of(&rule).await.0.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_held_us_east_1_cloudwatch_makes_the_health_unreachable_and_trips_its_breaker() {
    use crate::cloud::reach::{DEFAULT_PROBE_TIMEOUT, DEFAULT_READ_TIMEOUT, Reachability};
    let never = aws_smithy_http_client::test_util::NeverClient::new();
    let aws = held_cloud(&never);
    let t = tokio::time::Instant::now();
    let e = aws.health_check_healthy("hc-1").await.unwrap_err();
    assert_eq!(e.kind, K::Unreachable, "{e}");
    assert_eq!(t.elapsed(), DEFAULT_READ_TIMEOUT, "{e}");
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + Duration::from_millis(1)).await;
    assert_eq!(
        aws.reach().status("us-east-1", Service::Cloudwatch),
        Some(Reachability::Unreachable)
    );
    assert_eq!(
        aws.reach().status("us-east-1", Service::Route53),
        None,
        "Route 53's control plane was not called"
    );
    // Known down: the next read is refused at once, unsent.
    let sent = never.num_calls();
    let t = tokio::time::Instant::now();
    let e = aws.health_check_healthy("hc-1").await.unwrap_err();
    assert!(crate::cloud::reach::is_region_unreachable(&e), "{e:?}");
    assert_eq!(t.elapsed(), Duration::ZERO);
    assert_eq!(never.num_calls(), sent);
}

#[tokio::test]
async fn a_bucket_without_replication_has_no_rules_and_the_region_is_found_past_an_outage() {
    use aws_sdk_s3::types::BucketLocationConstraint;
    // The first hinted region does not answer (HTTP 503 three times, the SDK's
    // attempts); the second says where the bucket is.
    let (s, b) = (
        503,
        Some("<Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>".to_string()),
    );
    let location = mock!(aws_sdk_s3::Client::get_bucket_location)
        .sequence()
        .http_status(s, b)
        .times(3)
        .output(|| {
            aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput::builder()
                .location_constraint(BucketLocationConstraint::UsWest2)
                .build()
        })
        .build();
    let replication = mock!(aws_sdk_s3::Client::get_bucket_replication).then_http_response(|| {
        aws_smithy_runtime_api::http::Response::new(
            404.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(
                "<Error><Code>ReplicationConfigurationNotFoundError</Code>\
                 <Message>The replication configuration was not found</Message></Error>",
            ),
        )
    });
    let aws = cloud_with(&[&location, &replication], &["us-east-1", "us-west-2"]);
    let rules = aws
        .replication_rules("acme-prod-assets-usw2")
        .await
        .unwrap();
    assert!(rules.is_empty());
    let regions: Vec<(String, String)> = aws
        .calls()
        .into_iter()
        .map(|c| (c.operation, c.region))
        .collect();
    assert_eq!(
        regions.last(),
        Some(&("GetBucketReplication".to_string(), "us-west-2".to_string()))
    );
    // Remembered: no second location lookup.
    aws.replication_rules("acme-prod-assets-usw2")
        .await
        .unwrap();
    assert_eq!(location.num_calls(), 4);
}

/// GetBucketLocation answering us-west-2.
fn bucket_in_usw2() -> Rule {
    use aws_sdk_s3::types::BucketLocationConstraint;
    mock!(aws_sdk_s3::Client::get_bucket_location).then_output(|| {
        aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput::builder()
            .location_constraint(BucketLocationConstraint::UsWest2)
            .build()
    })
}

#[tokio::test]
async fn replication_rules_say_which_keys_they_replicate() {
    use aws_sdk_s3::types::{
        Destination, ReplicationConfiguration, ReplicationRule as Rule3,
        ReplicationRuleAndOperator, ReplicationRuleFilter, ReplicationRuleStatus, Tag,
    };
    let rule = |id: &str, filter: Option<ReplicationRuleFilter>| {
        let mut r = Rule3::builder()
            .id(id)
            .status(ReplicationRuleStatus::Enabled)
            .destination(
                Destination::builder()
                    .bucket("arn:aws:s3:::dst")
                    .build()
                    .unwrap(),
            );
        if let Some(f) = filter {
            r = r.filter(f);
        }
        r.build().unwrap()
    };
    let tag = || Tag::builder().key("k").value("v").build().unwrap();
    let replication = mock!(aws_sdk_s3::Client::get_bucket_replication).then_output(move || {
        aws_sdk_s3::operation::get_bucket_replication::GetBucketReplicationOutput::builder()
            .replication_configuration(
                ReplicationConfiguration::builder()
                    .role("arn:aws:iam::1:role/r")
                    .rules(rule(
                        "logs",
                        Some(ReplicationRuleFilter::builder().prefix("logs/").build()),
                    ))
                    .rules(rule(
                        "tagged",
                        Some(ReplicationRuleFilter::builder().tag(tag()).build()),
                    ))
                    .rules(rule(
                        "and-tags",
                        Some(
                            ReplicationRuleFilter::builder()
                                .and(
                                    ReplicationRuleAndOperator::builder()
                                        .prefix("a/")
                                        .tags(tag())
                                        .build(),
                                )
                                .build(),
                        ),
                    ))
                    .rules(rule("all", Some(ReplicationRuleFilter::builder().build())))
                    .rules(rule("v1", None))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let location = bucket_in_usw2();
    let aws = cloud_with(&[&location, &replication], &["us-west-2"]);
    let rules = aws.replication_rules("src").await.unwrap();
    let prefixes: Vec<(&str, Option<&str>)> = rules
        .iter()
        .map(|r| (r.id.as_str(), r.prefix.as_deref()))
        .collect();
    assert_eq!(
        prefixes,
        [
            ("logs", Some("logs/")),
            ("tagged", None),
            ("and-tags", None),
            ("all", Some("")),
            ("v1", Some("")),
        ]
    );
    assert!(
        rules[0].replicates_untagged("logs/drpilot-canary/x")
            && !rules[0].replicates_untagged("drpilot-canary/x")
    );
    assert!(!rules[1].replicates_untagged("drpilot-canary/x"));
}

#[tokio::test]
async fn a_backlog_is_unknown_when_any_enabled_rule_publishes_no_metric() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    // CloudWatch with a datapoint for rule "a" only, at `at` (7 operations, 700 bytes);
    // every request's queries are recorded as (Id, RuleId).
    let cloudwatch = |at: std::time::SystemTime, seen: SeenRules| {
        mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_compute_output(move |r| {
            let mut out = GetMetricDataOutput::builder();
            let mut queries = Vec::new();
            for q in r.metric_data_queries() {
                let id = q.id().unwrap_or_default().to_string();
                let rule = q
                    .metric_stat()
                    .and_then(|s| s.metric())
                    .and_then(|m| m.dimensions().iter().find(|d| d.name() == Some("RuleId")))
                    .and_then(|d| d.value())
                    .unwrap_or_default()
                    .to_string();
                let bytes = q
                    .metric_stat()
                    .and_then(|s| s.metric())
                    .and_then(|m| m.metric_name())
                    == Some("BytesPendingReplication");
                let mut result = MetricDataResult::builder().id(&id);
                if rule == "a" {
                    result = result
                        .timestamps(aws_smithy_types::DateTime::from(at))
                        .values(if bytes { 700.0 } else { 7.0 });
                }
                out = out.metric_data_results(result.build());
                queries.push((id, rule));
            }
            seen.lock().unwrap().push(queries);
            out.build()
        })
    };
    type SeenRules = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;
    let rule = |id: &str| crate::cloud::ReplicationRule {
        id: id.into(),
        enabled: true,
        destination_bucket: "dst".into(),
        prefix: Some(String::new()),
    };
    let seen = SeenRules::default();
    let metrics = cloudwatch(std::time::SystemTime::now(), seen.clone());
    let location = bucket_in_usw2();
    let aws = cloud_with(&[&location, &metrics], &["us-west-2"]);
    assert_eq!(
        aws.replication_backlog("src", &[rule("a")]).await.unwrap(),
        Some(crate::cloud::ReplicationBacklog {
            operations: 7,
            bytes: Some(700)
        })
    );
    // The second rule has no datapoint: the total is unknown, not 7. Both rules are
    // asked in one request.
    let backlog = aws
        .replication_backlog("src", &[rule("a"), rule("b")])
        .await
        .unwrap();
    assert_eq!(backlog, None);
    assert_eq!(metrics.num_calls(), 2);
    assert_eq!(
        seen.lock().unwrap()[1],
        [
            ("r0".into(), "a".into()),
            ("b0".into(), "a".into()),
            ("r1".into(), "b".into()),
            ("b1".into(), "b".into())
        ]
    );

    // A datapoint from before the metric stopped is no reading of now either.
    let stale = cloudwatch(
        std::time::SystemTime::now() - std::time::Duration::from_secs(20 * 60 - 30),
        SeenRules::default(),
    );
    let location = bucket_in_usw2();
    let aws = cloud_with(&[&location, &stale], &["us-west-2"]);
    assert_eq!(
        aws.replication_backlog("src", &[rule("a")]).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn routing_controls_go_to_the_endpoint_region_without_retries() {
    use aws_sdk_route53recoverycluster::operation::update_routing_control_states::UpdateRoutingControlStatesOutput;
    let rule = mock!(aws_sdk_route53recoverycluster::Client::update_routing_control_states)
        .match_requests(|r| {
            let e = r.update_routing_control_state_entries();
            e.len() == 2
                && e[0].routing_control_state().as_str() == "On"
                && e[1].routing_control_state().as_str() == "Off"
                && r.safety_rules_to_override() == ["arn:rule"]
        })
        .sequence()
        .http_status(
            500,
            Some(r#"{"__type":"InternalServerException","message":"boom"}"#.into()),
        )
        .output(|| UpdateRoutingControlStatesOutput::builder().build())
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let ep = ClusterEndpoint {
        url: "https://abc.route53-recovery-cluster.ap-southeast-2.amazonaws.com/v1".into(),
        region: "ap-southeast-2".into(),
    };
    let updates = [
        RoutingControlUpdate {
            arn: "arn:usw2".into(),
            state: RoutingControlState::On,
        },
        RoutingControlUpdate {
            arn: "arn:use1".into(),
            state: RoutingControlState::Off,
        },
    ];
    let e = aws
        .update_routing_control_states(&ep, &updates, &["arn:rule".to_string()])
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Transient);
    assert_eq!(rule.num_calls(), 1);
    aws.update_routing_control_states(&ep, &updates, &["arn:rule".to_string()])
        .await
        .unwrap();
    let calls = aws.calls();
    assert!(
        calls.iter().all(|c| c.region == "ap-southeast-2"),
        "{calls:?}"
    );
}

#[test]
fn names_and_locations() {
    assert_eq!(arn_name(USW2), "acme-prod-usw2");
    assert_eq!(location_region(""), "us-east-1");
    assert_eq!(location_region("EU"), "eu-west-1");
    assert_eq!(location_region("ap-south-1"), "ap-south-1");
    assert_eq!(bucket_name("arn:aws:s3:::acme-b"), "acme-b");
    assert_eq!(normalize_name("*.Acme.example"), "\\052.acme.example.");
}

#[tokio::test]
async fn the_zone_record_quota_is_read_with_get_hosted_zone_limit() {
    use aws_sdk_route53::operation::get_hosted_zone_limit::GetHostedZoneLimitOutput;
    use aws_sdk_route53::types::{HostedZoneLimit, HostedZoneLimitType};
    let rule = mock!(aws_sdk_route53::Client::get_hosted_zone_limit)
        .match_requests(|r| {
            r.hosted_zone_id() == Some("Z1")
                && r.r#type() == Some(&HostedZoneLimitType::MaxRrsetsByZone)
        })
        .then_output(|| {
            GetHostedZoneLimitOutput::builder()
                .limit(
                    HostedZoneLimit::builder()
                        .r#type(HostedZoneLimitType::MaxRrsetsByZone)
                        .value(10_000)
                        .build()
                        .unwrap(),
                )
                .count(42)
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    let q = aws.zone_record_quota("Z1").await.unwrap();
    assert_eq!(
        q,
        Quota {
            used: 42,
            limit: 10_000
        }
    );
    assert_eq!(aws.calls()[0].region, "us-east-1");
}

fn s3_error(status: u16, code: &str) -> aws_smithy_runtime_api::http::Response {
    aws_smithy_runtime_api::http::Response::new(
        status.try_into().unwrap(),
        aws_smithy_types::body::SdkBody::from(format!(
            "<Error><Code>{code}</Code><Message>{code} happened</Message></Error>"
        )),
    )
}

fn located(region: &'static str) -> Rule {
    use aws_sdk_s3::types::BucketLocationConstraint;
    mock!(aws_sdk_s3::Client::get_bucket_location).then_output(move || {
        aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    })
}

#[tokio::test]
async fn a_state_record_is_put_with_if_none_match_star_once_in_the_buckets_region() {
    let location = located("us-west-2");
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|r| {
            r.bucket() == Some("team-state")
                && r.key() == Some("p/runs/r1/journal/0000000000.json")
                && r.if_none_match() == Some("*")
                && r.if_match().is_none()
        })
        .then_output(|| {
            aws_sdk_s3::operation::put_object::PutObjectOutput::builder()
                .e_tag("\"e1\"")
                .build()
        });
    let aws = cloud_with(&[&location, &put], &["us-west-2"]);
    let etag = aws
        .put_state(
            "team-state",
            "p/runs/r1/journal/0000000000.json",
            b"{}".to_vec(),
            PutCondition::IfAbsent,
        )
        .await
        .unwrap();
    assert_eq!(etag, "\"e1\"");
    assert_eq!(put.num_calls(), 1);
    let last = aws.calls().pop().unwrap();
    assert_eq!(
        (last.operation.as_str(), last.region.as_str()),
        ("PutObject", "us-west-2")
    );
}

#[tokio::test]
async fn a_lease_renewal_is_put_with_if_match_and_a_412_is_a_failed_condition_not_retried() {
    let location = located("us-east-1");
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|r| r.if_match() == Some("\"e1\"") && r.if_none_match().is_none())
        .then_http_response(|| s3_error(412, "PreconditionFailed"));
    let aws = cloud_with(&[&location, &put], &["us-east-1"]);
    let err = aws
        .put_state(
            "team-state",
            "p/locks/rb.lock",
            b"{}".to_vec(),
            PutCondition::IfMatch("\"e1\"".into()),
        )
        .await
        .unwrap_err();
    assert!(crate::cloud::is_condition_failed(&err), "{err:?}");
    assert_eq!(err.kind, K::InvalidState);
    assert_eq!(err.code.as_deref(), Some("PreconditionFailed"));
    // A conditional write is sent once: its outcome is settled by reading back.
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn a_409_conditional_request_conflict_is_a_failed_condition_too() {
    let location = located("us-east-1");
    let put = mock!(aws_sdk_s3::Client::put_object)
        .then_http_response(|| s3_error(409, "ConditionalRequestConflict"));
    let aws = cloud_with(&[&location, &put], &["us-east-1"]);
    let err = aws
        .put_state("b-1", "k", b"{}".to_vec(), PutCondition::IfAbsent)
        .await
        .unwrap_err();
    assert!(crate::cloud::is_condition_failed(&err), "{err:?}");
    assert_eq!(err.code.as_deref(), Some("ConditionalRequestConflict"));
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn a_missing_state_object_is_none_and_access_denied_names_the_call() {
    let location = located("us-east-1");
    let get = mock!(aws_sdk_s3::Client::get_object)
        .sequence()
        .http_response(|| s3_error(404, "NoSuchKey"))
        .http_response(|| s3_error(403, "AccessDenied"))
        .build();
    let aws = cloud_with(&[&location, &get], &["us-east-1"]);
    assert_eq!(aws.get_state("b-1", "k").await.unwrap(), None);
    let err = aws.get_state("b-1", "k").await.unwrap_err();
    assert_eq!(err.kind, K::AccessDenied);
    assert!(err.to_string().contains("GetObject in us-east-1"), "{err}");
}

/// An AwsCloud whose transport never answers: every region holds its requests.
fn held_cloud(never: &aws_smithy_http_client::test_util::NeverClient) -> AwsCloud {
    let sdk = SdkConfig::builder()
        .region(Region::new("eu-central-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .http_client(never.clone())
        .behavior_version(BehaviorVersion::latest())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .build();
    AwsCloud::from_parts(
        sdk,
        None,
        AwsOptions {
            region_hints: vec!["us-west-2".into(), "us-east-1".into()],
            ..AwsOptions::default()
        },
        Vec::new(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_held_region_costs_one_read_deadline_then_a_failover_is_refused_unsent() {
    use crate::cloud::reach::{DEFAULT_PROBE_TIMEOUT, DEFAULT_READ_TIMEOUT, Reachability};
    let never = aws_smithy_http_client::test_util::NeverClient::new();
    let aws = held_cloud(&never);
    let t = tokio::time::Instant::now();
    let e = aws
        .describe_global_cluster("us-east-1", "acme-prod")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Unreachable);
    assert_eq!(t.elapsed(), DEFAULT_READ_TIMEOUT, "{e}");
    // The silent read made the breaker probe us-east-1's RDS; the probe is held too.
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + Duration::from_millis(1)).await;
    assert_eq!(
        aws.reach().status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
    let sent = never.num_calls();
    let t = tokio::time::Instant::now();
    let e = aws
        .failover_global_cluster("us-east-1", "acme-prod", USW2, true)
        .await
        .unwrap_err();
    assert!(crate::cloud::reach::is_region_unreachable(&e), "{e:?}");
    assert_eq!(t.elapsed(), Duration::ZERO, "refused at once");
    assert_eq!(never.num_calls(), sent, "nothing was sent");
    assert!(
        !aws.calls()
            .iter()
            .any(|c| c.operation == "FailoverGlobalCluster"),
        "{:?}",
        aws.calls()
    );
    // Other services of the region are judged on their own.
    assert_eq!(aws.reach().status("us-east-1", Service::Elasticache), None);
}

#[tokio::test(start_paused = true)]
async fn a_read_that_runs_out_of_time_while_throttled_is_not_an_outage() {
    use crate::cloud::reach::{Reach, ReachSettings};
    // The SDK backs off 8 s between throttled attempts: its three attempts outlast the
    // 10 s read deadline, but the endpoint answered each time.
    let throttled = mock!(aws_sdk_rds::Client::describe_global_clusters)
        .sequence()
        .http_status(400, query_error(400, "Throttling").1)
        .times(3)
        .build();
    let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
    interceptor = interceptor.with_rule(&throttled);
    let sdk = SdkConfig::builder()
        .region(Region::new("eu-central-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .http_client(create_mock_http_client())
        .behavior_version(BehaviorVersion::latest())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_secs(8))
                .with_max_backoff(Duration::from_secs(8))
                // No jitter: 8 s exactly between attempts.
                .with_use_static_exponential_base(true),
        )
        .build();
    let reach = Reach::new(crate::clock::Clock::real(), ReachSettings::default());
    let aws = AwsCloud::from_parts(
        sdk,
        None,
        AwsOptions {
            reach: Some(reach.clone()),
            ..AwsOptions::default()
        },
        vec![SharedInterceptor::new(interceptor)],
    );
    let e = aws
        .describe_global_cluster("us-east-1", "acme-prod")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Transient, "{e}");
    assert!(e.message.contains("the endpoint answers"), "{e}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        reach.status("us-east-1", Service::Rds),
        Some(crate::cloud::reach::Reachability::Reachable),
        "an endpoint that answers (throttling) is up, not suspect"
    );
}

fn assumed_role_identity() -> Rule {
    mock!(aws_sdk_sts::Client::get_caller_identity).then_output(|| {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .arn("arn:aws:sts::111122223333:assumed-role/drpilot/session-1")
            .account("111122223333")
            .build()
    })
}

fn simulated(source: &'static str) -> Rule {
    use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType};
    mock!(aws_sdk_iam::Client::simulate_principal_policy)
        .match_requests(move |r| r.policy_source_arn() == Some(source))
        .then_output(|| {
            aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput::builder()
                .evaluation_results(
                    EvaluationResult::builder()
                        .eval_action_name("rds:DescribeDBClusters")
                        .eval_decision(PolicyEvaluationDecisionType::Allowed)
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn one_need() -> std::collections::BTreeSet<crate::runbook::iam::Need> {
    [crate::runbook::iam::Need {
        account: "111122223333".into(),
        action: "rds:DescribeDBClusters".into(),
        resource: USW2.into(),
    }]
    .into()
}

#[tokio::test]
async fn an_assumed_role_is_simulated_as_its_role_without_get_role() {
    let me = assumed_role_identity();
    let sim = simulated("arn:aws:iam::111122223333:role/drpilot");
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_error(|| {
        aws_sdk_iam::operation::get_role::GetRoleError::unhandled("GetRole must not be called")
    });
    let aws = cloud_with(&[&me, &sim, &get_role], &["us-west-2"]);
    let out = aws.simulate(&one_need()).await.expect("simulated");
    assert_eq!(out.len(), 1);
    assert!(out[0].allowed, "{out:?}");
    assert_eq!(
        get_role.num_calls(),
        0,
        "the generated policy grants no iam:GetRole"
    );
}

#[tokio::test]
async fn a_role_with_a_path_is_found_through_get_role_when_iam_does_not_know_the_guess() {
    let me = assumed_role_identity();
    let unknown = mock!(aws_sdk_iam::Client::simulate_principal_policy)
        .match_requests(|r| r.policy_source_arn() == Some("arn:aws:iam::111122223333:role/drpilot"))
        .then_http_response(|| {
            let (status, body) = query_error(404, "NoSuchEntity");
            aws_smithy_runtime_api::http::Response::new(
                status.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::from(body.unwrap()),
            )
        });
    let get_role = mock!(aws_sdk_iam::Client::get_role).then_output(|| {
        aws_sdk_iam::operation::get_role::GetRoleOutput::builder()
            .role(
                aws_sdk_iam::types::Role::builder()
                    .path("/ops/")
                    .role_name("drpilot")
                    .role_id("AROAEXAMPLE")
                    .arn("arn:aws:iam::111122223333:role/ops/drpilot")
                    .create_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .unwrap(),
            )
            .build()
    });
    let sim = simulated("arn:aws:iam::111122223333:role/ops/drpilot");
    let aws = cloud_with(&[&me, &unknown, &get_role, &sim], &["us-west-2"]);
    let out = aws.simulate(&one_need()).await.expect("simulated");
    assert!(out[0].allowed, "{out:?}");
    assert_eq!(get_role.num_calls(), 1);
    assert_eq!(sim.num_calls(), 1);
}

// ---- Aurora Serverless v2 capacity ----

fn acus(min: f64, max: f64) -> crate::cloud::CapacityRange {
    crate::cloud::CapacityRange {
        min: crate::cloud::Acu::from_f64(min).unwrap(),
        max: crate::cloud::Acu::from_f64(max).unwrap(),
    }
}

#[tokio::test]
async fn a_capacity_range_is_sent_once_to_the_clusters_region_applied_immediately() {
    let rule = mock!(aws_sdk_rds::Client::modify_db_cluster)
        .match_requests(|r| {
            let c = r.serverless_v2_scaling_configuration();
            r.db_cluster_identifier() == Some(USW2)
                && r.apply_immediately() == Some(true)
                && c.and_then(|c| c.min_capacity()) == Some(0.5)
                && c.and_then(|c| c.max_capacity()) == Some(64.0)
                && c.and_then(|c| c.seconds_until_auto_pause()).is_none()
        })
        .then_output(|| {
            aws_sdk_rds::operation::modify_db_cluster::ModifyDbClusterOutput::builder().build()
        });
    let aws = cloud_with(&[&rule], &[]);
    aws.modify_capacity_range(USW2, acus(0.5, 64.0))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    let calls = aws.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].operation.as_str(), calls[0].region.as_str()),
        ("ModifyDBCluster", "us-west-2")
    );
    let e = aws
        .modify_capacity_range("acme-prod-usw2", acus(0.5, 64.0))
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        K::InvalidRequest,
        "an identifier without a region: {e}"
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_capacity_change_is_never_resent_by_the_sdk_and_keeps_its_error_kinds() {
    let (s503, b503) = query_error(503, "ServiceUnavailable");
    let (s1, b1) = query_error(400, "InvalidDBClusterStateFault");
    let (s2, b2) = query_error(400, "InvalidParameterCombination");
    let (s3, b3) = query_error(400, "InvalidParameterValue");
    let (s4, b4) = query_error(404, "DBClusterNotFoundFault");
    let rule = mock!(aws_sdk_rds::Client::modify_db_cluster)
        .sequence()
        .http_status(s503, b503)
        .http_status(s1, b1)
        .http_status(s2, b2)
        .http_status(s3, b3)
        .http_status(s4, b4)
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let e = aws
            .modify_capacity_range(USW2, acus(2.0, 64.0))
            .await
            .unwrap_err();
        assert_eq!(e.operation, "ModifyDBCluster");
        assert_eq!(e.region.as_deref(), Some("us-west-2"));
        seen.push((e.kind, e.code.unwrap_or_default()));
    }
    assert_eq!(
        seen,
        [
            (K::Transient, "ServiceUnavailable".to_string()),
            (K::InvalidState, "InvalidDBClusterStateFault".into()),
            (K::InvalidRequest, "InvalidParameterCombination".into()),
            (K::InvalidRequest, "InvalidParameterValue".into()),
            (K::NotFound, "DBClusterNotFoundFault".into()),
        ]
    );
    assert_eq!(
        rule.num_calls(),
        5,
        "one request per call: no SDK retry of the 503"
    );
}

#[tokio::test]
async fn a_cluster_reads_its_capacity_range_and_its_global_database() {
    use aws_sdk_rds::types::{DbCluster as C, ServerlessV2ScalingConfigurationInfo as Info};
    let out = |scaling: Option<Info>, global: Option<&'static str>| {
        move || {
            aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput::builder()
                .db_clusters(
                    C::builder()
                        .db_cluster_arn(USW2)
                        .status("modifying")
                        .set_serverless_v2_scaling_configuration(scaling.clone())
                        .set_global_cluster_identifier(global.map(str::to_string))
                        .build(),
                )
                .build()
        }
    };
    let info = Info::builder().min_capacity(0.5).max_capacity(40.5).build();
    let rule = mock!(aws_sdk_rds::Client::describe_db_clusters)
        .sequence()
        .output(out(Some(info), Some("acme-prod")))
        .output(out(None, None))
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let c = aws.describe_cluster(USW2).await.unwrap();
    assert_eq!(c.status, "modifying");
    assert_eq!(c.scaling, Some(acus(0.5, 40.5)));
    assert_eq!(c.global_cluster.as_deref(), Some("acme-prod"));
    let c = aws.describe_cluster(USW2).await.unwrap();
    assert_eq!((c.scaling, c.global_cluster), (None, None));
}

#[tokio::test]
async fn a_clusters_instances_are_listed_by_its_arn_in_its_region_across_pages() {
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::DbInstance;
    let by_cluster =
        |r: &aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesInput| {
            let f = r.filters();
            f.len() == 1
                && f[0].name() == Some("db-cluster-id")
                && f[0].values() == [USW2.to_string()]
                && r.db_instance_identifier().is_none()
        };
    let first = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(move |r| by_cluster(r) && r.marker().is_none())
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("acme-prod-usw2-a")
                        .db_instance_class("db.serverless")
                        .build(),
                )
                .marker("page-2")
                .build()
        });
    let second = mock!(aws_sdk_rds::Client::describe_db_instances)
        .match_requests(move |r| by_cluster(r) && r.marker() == Some("page-2"))
        .then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("acme-prod-usw2-b")
                        .db_instance_class("db.r6g.large")
                        .build(),
                )
                .build()
        });
    let aws = cloud_with(&[&first, &second], &[]);
    let list = aws.cluster_instances(USW2).await.unwrap();
    let got: Vec<(&str, &str)> = list
        .iter()
        .map(|i| (i.id.as_str(), i.class.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("acme-prod-usw2-a", "db.serverless"),
            ("acme-prod-usw2-b", "db.r6g.large")
        ]
    );
    assert!(aws.calls().iter().all(|c| c.region == "us-west-2"));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn serverless_capacity_is_the_newest_fresh_datapoint_in_the_clusters_region() {
    const CAPACITY: &str = "ServerlessDatabaseCapacity";
    let (rule, seen) = fake_cloudwatch(&[(CAPACITY, &[(ago(30), 24.5), (ago(90), 8.0)])]);
    let aws = cloud_with(&[&rule], &[]);
    assert_eq!(aws.serverless_capacity(USE1).await.unwrap(), Some(24.5));
    assert_eq!(aws.calls()[0].region, "us-east-1", "the cluster's region");
    let q = seen.lock().unwrap()[0][0].clone();
    assert_eq!(
        (
            q.namespace.as_str(),
            q.metric.as_str(),
            q.period,
            q.stat.as_str()
        ),
        ("AWS/RDS", CAPACITY, 60, "Maximum")
    );
    assert_eq!(
        q.dimensions,
        [(
            "DBClusterIdentifier".to_string(),
            "acme-prod-use1".to_string()
        )]
    );
    // Older than the freshness bound (the region went dark): unknown, not its value.
    let bound = super::DATAPOINT_MAX_AGE.as_secs();
    let (rule, _) = fake_cloudwatch(&[(CAPACITY, &[(ago(bound + 10), 24.5)])]);
    let aws = cloud_with(&[&rule], &[]);
    assert_eq!(aws.serverless_capacity(USE1).await.unwrap(), None);
    // A provisioned cluster publishes none.
    let (rule, _) = fake_cloudwatch(&[]);
    let aws = cloud_with(&[&rule], &[]);
    assert_eq!(aws.serverless_capacity(USE1).await.unwrap(), None);
}

#[tokio::test]
async fn a_replication_groups_shape_is_read_in_its_own_region() {
    use aws_sdk_elasticache::types::{NodeGroup, ReplicationGroup};
    let group = |id: &str, shards: usize| {
        let mut g = ReplicationGroup::builder()
            .replication_group_id(id)
            .status("available")
            .cluster_enabled(true)
            .cache_node_type("cache.r7g.large");
        for n in 1..=shards {
            g = g.node_groups(
                NodeGroup::builder()
                    .node_group_id(format!("{n:04}"))
                    .slots(format!("{}-{}", n * 10, n * 10 + 9))
                    .build(),
            );
        }
        g.build()
    };
    // The id is not case sensitive: AWS answers with its own spelling.
    let rule = mock!(aws_sdk_elasticache::Client::describe_replication_groups)
        .match_requests(|r| r.replication_group_id() == Some("ACME-sessions-usw2"))
        .then_output(move || {
            aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsOutput::builder()
                .replication_groups(group("acme-sessions-usw2", 3))
                .build()
        });
    let missing = mock!(aws_sdk_elasticache::Client::describe_replication_groups)
        .match_requests(|r| r.replication_group_id() == Some("nope"))
        .then_http_response(|| {
            let (s, b) = query_error(404, "ReplicationGroupNotFoundFault");
            aws_smithy_runtime_api::http::Response::new(
                s.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::from(b.unwrap()),
            )
        });
    let aws = cloud_with(&[&rule, &missing], &[]);
    let rg = crate::cloud::ElastiCache::describe_replication_group(
        &aws,
        "us-west-2",
        "ACME-sessions-usw2",
    )
    .await
    .unwrap();
    assert_eq!(
        rg,
        crate::cloud::ReplicationGroup {
            id: "acme-sessions-usw2".into(),
            status: "available".into(),
            cluster_enabled: Some(true),
            shards: 3,
            node_type: Some("cache.r7g.large".into()),
        }
    );
    let calls = aws.calls();
    assert_eq!(
        (calls[0].operation.as_str(), calls[0].region.as_str()),
        ("DescribeReplicationGroups", "us-west-2")
    );
    let e = crate::cloud::ElastiCache::describe_replication_group(&aws, "us-east-1", "nope")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref(), e.region.as_deref()),
        (
            K::NotFound,
            Some("ReplicationGroupNotFoundFault"),
            Some("us-east-1")
        )
    );
}

// ---- ECS ----

/// An awsJson 1.1 error, as ECS answers.
fn json_error(status: u16, code: &str) -> (u16, Option<String>) {
    (
        status,
        Some(format!(
            r#"{{"__type":"{code}","message":"{code} happened"}}"#
        )),
    )
}

fn ecs_service(desired: i32, running: i32, rollout: Option<&str>) -> aws_sdk_ecs::types::Service {
    use aws_sdk_ecs::types::{Deployment, DeploymentRolloutState, LaunchType, Service};
    Service::builder()
        .service_arn("arn:aws:ecs:us-west-2:111122223333:service/acme-prod-usw2/acme-api")
        .service_name("acme-api")
        .cluster_arn("arn:aws:ecs:us-west-2:111122223333:cluster/acme-prod-usw2")
        .status("ACTIVE")
        .desired_count(desired)
        .running_count(running)
        .pending_count(desired - running)
        .launch_type(LaunchType::Fargate)
        .deployments(
            Deployment::builder()
                .id("ecs-svc/1234567890")
                .status("PRIMARY")
                .set_rollout_state(rollout.map(DeploymentRolloutState::from))
                .running_count(running)
                .pending_count(desired - running)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn describe_service_goes_to_the_region_asked_and_reads_counts_and_rollout() {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    let rule = mock!(aws_sdk_ecs::Client::describe_services)
        .match_requests(|r| {
            r.cluster() == Some("acme-prod-usw2") && r.services() == ["acme-api".to_string()]
        })
        .then_output(|| {
            DescribeServicesOutput::builder()
                .services(ecs_service(8, 6, Some("IN_PROGRESS")))
                .build()
        });
    let aws = cloud_with(&[&rule], &[]);
    let s = aws
        .describe_service("us-west-2", "acme-prod-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.desired_count, s.running_count, s.pending_count),
        (8, 6, 2)
    );
    assert_eq!(s.status, "ACTIVE");
    assert_eq!(s.launch_type.as_deref(), Some("FARGATE"));
    assert_eq!(s.rollout_state(), Some("IN_PROGRESS"));
    assert_eq!(
        s.settled_at(8),
        Err("6/8 running, 2 pending, rollout IN_PROGRESS".into())
    );
    let calls = aws.calls();
    assert_eq!(
        (
            calls[0].service.as_str(),
            calls[0].operation.as_str(),
            calls[0].region.as_str()
        ),
        ("ecs", "DescribeServices", "us-west-2")
    );
}

#[tokio::test]
async fn a_missing_service_is_none_and_a_missing_cluster_is_not_found() {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    use aws_sdk_ecs::types::Failure;
    let (s, b) = json_error(400, "ClusterNotFoundException");
    let rule = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .output(|| {
            DescribeServicesOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-west-2:111122223333:service/acme-prod-usw2/nope")
                        .reason("MISSING")
                        .build(),
                )
                .build()
        })
        .http_status(s, b)
        .output(|| {
            DescribeServicesOutput::builder()
                .failures(Failure::builder().reason("SOMETHING_ELSE").build())
                .build()
        })
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let got = aws
        .describe_service("us-west-2", "acme-prod-usw2", "nope")
        .await
        .unwrap();
    assert_eq!(got, None, "MISSING is an answer, not an error");
    let e = aws
        .describe_service("us-west-2", "gone", "acme-api")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::NotFound, Some("ClusterNotFoundException"))
    );
    let e = aws
        .describe_service("us-west-2", "acme-prod-usw2", "acme-api")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_deref()),
        (K::InvalidRequest, Some("SOMETHING_ELSE"))
    );
}

#[tokio::test]
async fn update_service_sets_the_desired_count_alone_once_in_the_region_asked() {
    let rule = mock!(aws_sdk_ecs::Client::update_service)
        .match_requests(|r| {
            r.cluster() == Some("acme-prod-usw2")
                && r.service() == Some("acme-api")
                && r.desired_count() == Some(8)
                && r.force_new_deployment().is_none()
                && r.task_definition().is_none()
                && r.capacity_provider_strategy().is_empty()
                && r.deployment_configuration().is_none()
        })
        .then_output(|| {
            aws_sdk_ecs::operation::update_service::UpdateServiceOutput::builder().build()
        });
    let aws = cloud_with(&[&rule], &[]);
    aws.set_desired_count("us-west-2", "acme-prod-usw2", "acme-api", 8)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    let calls = aws.calls();
    assert_eq!(
        (calls[0].operation.as_str(), calls[0].region.as_str()),
        ("UpdateService", "us-west-2")
    );
    // A count ECS cannot take is refused before anything is sent.
    let e = aws
        .set_desired_count("us-west-2", "acme-prod-usw2", "acme-api", u32::MAX)
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::InvalidRequest);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn an_update_service_is_never_resent_by_the_sdk_and_keeps_its_error_kinds() {
    let errors = [
        json_error(500, "ServerException"),
        json_error(400, "ClusterNotFoundException"),
        json_error(400, "ServiceNotFoundException"),
        json_error(400, "ServiceNotActiveException"),
        json_error(400, "AccessDeniedException"),
        json_error(400, "InvalidParameterException"),
        json_error(400, "ThrottlingException"),
    ];
    let mut rule = mock!(aws_sdk_ecs::Client::update_service).sequence();
    for (s, b) in errors.iter().cloned() {
        rule = rule.http_status(s, b);
    }
    let rule = rule.build();
    let aws = cloud_with(&[&rule], &[]);
    let mut seen = Vec::new();
    for _ in 0..errors.len() {
        let e = aws
            .set_desired_count("eu-west-1", "c", "s", 3)
            .await
            .unwrap_err();
        assert_eq!(e.operation, "UpdateService");
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        seen.push((e.kind, e.code.unwrap_or_default()));
    }
    assert_eq!(
        seen,
        [
            (K::Transient, "ServerException".to_string()),
            (K::NotFound, "ClusterNotFoundException".into()),
            (K::NotFound, "ServiceNotFoundException".into()),
            (K::InvalidState, "ServiceNotActiveException".into()),
            (K::AccessDenied, "AccessDeniedException".into()),
            (K::InvalidRequest, "InvalidParameterException".into()),
            (K::Throttling, "ThrottlingException".into()),
        ]
    );
    assert_eq!(
        rule.num_calls(),
        errors.len(),
        "one request per call: no SDK retry of the 500 or the throttle"
    );
}

#[tokio::test]
async fn describe_service_keeps_the_sdks_retries() {
    use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
    let (s, b) = json_error(500, "ServerException");
    let rule = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .http_status(s, b)
        .output(|| {
            DescribeServicesOutput::builder()
                .services(ecs_service(2, 2, None))
                .build()
        })
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let s = aws
        .describe_service("us-west-2", "acme-prod-usw2", "acme-api")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.settled_at(2), Ok(()));
    assert_eq!(rule.num_calls(), 2, "a read is retried by the SDK");
}

// ---- EC2 Auto Scaling ----

fn asg(desired: i32, states: &[(&str, &str)]) -> aws_sdk_autoscaling::types::AutoScalingGroup {
    use aws_sdk_autoscaling::types::{
        AutoScalingGroup, Instance, LifecycleState, SuspendedProcess,
    };
    let mut g = AutoScalingGroup::builder()
        .auto_scaling_group_name("acme-workers-usw2")
        .auto_scaling_group_arn(
            "arn:aws:autoscaling:us-west-2:111122223333:autoScalingGroup:\
             0b0e5c52-0000-4000-8000-000000000000:autoScalingGroupName/acme-workers-usw2",
        )
        .min_size(1)
        .desired_capacity(desired)
        .max_size(8)
        .suspended_processes(
            SuspendedProcess::builder()
                .process_name("AZRebalance")
                .build(),
        );
    for (i, (state, health)) in states.iter().enumerate() {
        g = g.instances(
            Instance::builder()
                .instance_id(format!("i-0{i}"))
                .lifecycle_state(LifecycleState::from(*state))
                .health_status(*health)
                .build(),
        );
    }
    g.build()
}

#[tokio::test]
async fn describe_group_asks_for_the_name_in_the_region_and_reads_instances() {
    use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
    let rule = mock!(aws_sdk_autoscaling::Client::describe_auto_scaling_groups)
        .match_requests(|r| r.auto_scaling_group_names() == ["acme-workers-usw2".to_string()])
        .sequence()
        .output(|| {
            DescribeAutoScalingGroupsOutput::builder()
                .auto_scaling_groups(asg(
                    3,
                    &[
                        ("InService", "Healthy"),
                        ("InService", "Healthy"),
                        ("Pending:Wait", "Healthy"),
                    ],
                ))
                .build()
        })
        .output(|| DescribeAutoScalingGroupsOutput::builder().build())
        .build();
    let aws = cloud_with(&[&rule], &[]);
    let g = crate::cloud::AutoScaling::describe_group(&aws, "us-west-2", "acme-workers-usw2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.sizes.to_string(), "min 1, desired 3, max 8");
    assert_eq!(g.instances[2].lifecycle_state, "Pending:Wait");
    assert_eq!(g.suspended_processes, ["AZRebalance"]);
    assert_eq!(g.status, None);
    assert_eq!(
        g.settled(),
        Err("2/3 InService and Healthy, 1 launching".into())
    );
    // An unknown name is an empty list: no group, no error.
    let none = crate::cloud::AutoScaling::describe_group(&aws, "us-west-2", "acme-workers-usw2")
        .await
        .unwrap();
    assert_eq!(none, None);
    let calls = aws.calls();
    assert!(
        calls
            .iter()
            .all(|c| (c.service.as_str(), c.region.as_str()) == ("autoscaling", "us-west-2")),
        "{calls:?}"
    );
}

#[tokio::test]
async fn update_group_sends_only_the_sizes_given_once_in_the_region_asked() {
    use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupOutput;
    let rule = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("acme-workers-usw2")
                && r.min_size().is_none()
                && r.desired_capacity() == Some(6)
                && r.max_size() == Some(10)
                && r.launch_template().is_none()
        })
        .then_output(|| UpdateAutoScalingGroupOutput::builder().build());
    let aws = cloud_with(&[&rule], &[]);
    let update = crate::cloud::GroupSizeUpdate {
        min_size: None,
        desired_capacity: Some(6),
        max_size: Some(10),
    };
    crate::cloud::AutoScaling::update_group_sizes(&aws, "us-west-2", "acme-workers-usw2", update)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(aws.calls()[0].region, "us-west-2");
}

#[tokio::test]
async fn an_update_group_is_never_resent_by_the_sdk_and_keeps_its_error_kinds() {
    let errors = [
        query_error(500, "ResourceContention"),
        query_error(400, "ScalingActivityInProgress"),
        query_error(400, "ValidationError"),
        query_error(400, "Throttling"),
        query_error(503, "ServiceUnavailable"),
    ];
    let mut rule = mock!(aws_sdk_autoscaling::Client::update_auto_scaling_group).sequence();
    for (s, b) in errors.iter().cloned() {
        rule = rule.http_status(s, b);
    }
    let rule = rule.build();
    let aws = cloud_with(&[&rule], &[]);
    let mut seen = Vec::new();
    for _ in 0..errors.len() {
        let e = crate::cloud::AutoScaling::update_group_sizes(
            &aws,
            "eu-west-1",
            "g",
            crate::cloud::GroupSizeUpdate {
                desired_capacity: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.operation, "UpdateAutoScalingGroup");
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        seen.push((e.kind, e.code.unwrap_or_default()));
    }
    assert_eq!(
        seen,
        [
            (K::Transient, "ResourceContention".to_string()),
            (K::InvalidState, "ScalingActivityInProgress".into()),
            (K::InvalidRequest, "ValidationError".into()),
            (K::Throttling, "Throttling".into()),
            (K::Transient, "ServiceUnavailable".into()),
        ]
    );
    assert_eq!(rule.num_calls(), errors.len(), "no SDK retry of a mutation");
}

/// What one PutMetricData request carried: its namespace, and per datum its name,
/// dimensions, value, unit and timestamp (seconds).
type PutSeen = std::sync::Arc<
    std::sync::Mutex<
        Vec<(
            String,
            Vec<(String, Vec<(String, String)>, f64, String, i64)>,
        )>,
    >,
>;

fn fake_put_metric_data() -> (Rule, PutSeen) {
    use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataOutput;
    let seen = PutSeen::default();
    let record = seen.clone();
    let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_data).then_compute_output(move |r| {
        let data = r
            .metric_data()
            .iter()
            .map(|d| {
                (
                    d.metric_name().unwrap_or_default().to_string(),
                    d.dimensions()
                        .iter()
                        .map(|x| {
                            (
                                x.name().unwrap_or_default().to_string(),
                                x.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    d.value().unwrap_or(f64::NAN),
                    d.unit().map(|u| u.as_str().to_string()).unwrap_or_default(),
                    d.timestamp().map(|t| t.secs()).unwrap_or_default(),
                )
            })
            .collect();
        record
            .lock()
            .unwrap()
            .push((r.namespace().unwrap_or_default().to_string(), data));
        PutMetricDataOutput::builder().build()
    });
    (rule, seen)
}

#[tokio::test]
async fn put_metric_data_sends_every_datum_to_the_region_asked_in_requests_of_at_most_1000() {
    use crate::cloud::{MetricDatum, MetricUnit, Metrics};
    let (rule, seen) = fake_put_metric_data();
    let aws = cloud_with(&[&rule], &[]);
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut data = vec![MetricDatum {
        name: "AuroraReplicationLag".into(),
        dimensions: vec![
            ("Runbook".into(), "region-failover".into()),
            ("Cluster".into(), "acme-prod-usw2".into()),
        ],
        value: 0.75,
        unit: MetricUnit::Seconds,
        at,
    }];
    data.extend((0..1200).map(|i| MetricDatum {
        name: "Ready".into(),
        dimensions: vec![("Runbook".into(), format!("rb{i}"))],
        value: 1.0,
        unit: MetricUnit::None,
        at,
    }));
    aws.put_metric_data("us-west-2", "Drpilot/Readiness", &data)
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|(_, d)| d.len()).collect::<Vec<_>>(),
        vec![1000, 201]
    );
    assert!(seen.iter().all(|(ns, _)| ns == "Drpilot/Readiness"));
    assert_eq!(
        seen[0].1[0],
        (
            "AuroraReplicationLag".to_string(),
            vec![
                ("Runbook".to_string(), "region-failover".to_string()),
                ("Cluster".to_string(), "acme-prod-usw2".to_string()),
            ],
            0.75,
            "Seconds".to_string(),
            1_800_000_000,
        )
    );
    assert_eq!(seen[0].1[1].3, "None");
    let calls = aws.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.operation == "PutMetricData" && c.region == "us-west-2"),
        "{calls:?}"
    );
}
