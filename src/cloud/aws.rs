//! The cloud seam implemented with the AWS SDK for Rust.
//!
//! One [`AwsCloud`] serves every trait. Clients are built once per (service, region) —
//! per endpoint for ARC clusters — from one [`SdkConfig`] loaded through the standard
//! credential chain (environment, `--profile` including SSO profiles, web identity,
//! container and instance roles), and kept for the run.
//!
//! What the design asks of the wire, and where it is done:
//! - **Region.** Every regional call goes to the region the trait names (a switchover to
//!   the primary's, an unplanned failover to the target's); a cluster's calls to the
//!   region in its ARN; a bucket's to the bucket's region (found once and remembered);
//!   Route 53's control plane to us-east-1, where AWS serves it; an ARC call to the
//!   region of the cluster endpoint it is sent to.
//! - **Retries.** Reads and polls keep the SDK's standard retry mode. Mutations
//!   (failovers, switchovers, detach, record changes, health-check and routing-control
//!   updates, snapshot copies) run with SDK retries disabled for that call: an error or
//!   timeout then reaches the action, which re-reads state before deciding to send again,
//!   so a lost response can never cause a second failover.
//! - **Timeouts.** A region that accepts connections but never answers (a real outage
//!   often looks like that) must not hang a step: every attempt has a deadline, and a
//!   missing answer is [`CloudErrorKind::Unreachable`].
//! - **Errors** are mapped onto [`CloudErrorKind`] by code and status (`aws/errors.rs`).
//! - **Endpoint override.** `--endpoint-url` (or `AWS_ENDPOINT_URL`, which the SDK reads
//!   itself) points every client, ARC cluster endpoints included, at one URL (the AWS
//!   emulator); S3 then uses path-style addressing, as an IP endpoint requires.
//!
//! Every HTTP request (SDK retries included) is counted per service and operation and
//! kept with the region it was signed for, so a run can report how many API calls it
//! cost ([`AwsCloud::api_calls`]).

mod errors;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::{Region, SigningRegion};

pub(crate) use errors::map_sdk_error;

use super::reach::{CallKind, ProbeFuture, Prober, Reach, Service};
use super::{Cloud, CloudError, CloudErrorKind, CloudResult, ClusterEndpoint, DataPlane};
use crate::runbook::catalogue::arn_region;
use crate::runbook::iam::Need;
use crate::runbook::model::Account;

/// Where Route 53's control plane (and S3's global endpoint) is served.
const GLOBAL_REGION: &str = "us-east-1";

/// How drpilot connects to AWS.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// A named profile of the shared config files (`--profile`); SSO profiles work.
    pub profile: Option<String>,
    /// Send every request here instead of AWS (`--endpoint-url`): the AWS emulator.
    pub endpoint_url: Option<String>,
    /// Regions the runbook names, in order of preference, used to find a bucket's
    /// region without depending on one region being up.
    pub region_hints: Vec<String>,
    /// The breaker every call goes through, shared with whoever else talks to the
    /// same regions (the run's state store); `None`: a new one with the default
    /// deadlines on real time.
    pub reach: Option<Reach>,
}

/// How long to wait for a TCP/TLS connection: the SDK's own default.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// One HTTP request drpilot sent, as the call log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiCall {
    /// Service, lower case without spaces: `rds`, `route53`, `route53recoverycluster`.
    pub service: String,
    /// Operation, e.g. `FailoverGlobalCluster`.
    pub operation: String,
    /// The region the request was signed for.
    pub region: String,
}

/// What IAM said about one permission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulated {
    /// The permission.
    pub need: Need,
    /// `EvalDecision` is `allowed`.
    pub allowed: bool,
    /// `allowed`, `implicitDeny`, `explicitDeny`.
    pub decision: String,
}

/// Records every request just before it is transmitted.
#[derive(Debug, Default)]
struct CallLog {
    calls: Mutex<Vec<ApiCall>>,
}

impl CallLog {
    fn lock(&self) -> MutexGuard<'_, Vec<ApiCall>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
struct CallLogInterceptor(Arc<CallLog>);

impl Intercept for CallLogInterceptor {
    fn name(&self) -> &'static str {
        "drpilot::CallLog"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            // "RDS", "Route 53", "ElastiCache" -> "rds", "route53", "elasticache".
            .map(|m| (service_key(m.service()), m.name().to_string()))
            .unwrap_or_default();
        let region = cfg
            .load::<SigningRegion>()
            .map(|r| r.as_ref().to_string())
            .or_else(|| cfg.load::<Region>().map(|r| r.as_ref().to_string()))
            .unwrap_or_default();
        self.0.lock().push(ApiCall {
            service,
            operation,
            region,
        });
        Ok(())
    }
}

/// Tells the breaker of every response the transport receives (throttles and errors
/// included, SDK retries included): a read that runs out of time while its endpoint
/// keeps answering is throttled or failing, not in an outage.
#[derive(Debug, Clone)]
struct HeardInterceptor(Reach);

impl Intercept for HeardInterceptor {
    fn name(&self) -> &'static str {
        "drpilot::Heard"
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let service = cfg
            .load::<Metadata>()
            .and_then(|m| reach_service(&service_key(m.service())));
        let region = cfg
            .load::<SigningRegion>()
            .map(|r| r.as_ref().to_string())
            .or_else(|| cfg.load::<Region>().map(|r| r.as_ref().to_string()));
        if let (Some(service), Some(region)) = (service, region) {
            self.0.heard(&region, service);
        }
        Ok(())
    }
}

/// The breaker's service for an SDK service key (`service_key`).
fn reach_service(key: &str) -> Option<Service> {
    match key {
        "route53recoverycluster" => Some(Service::RoutingControl),
        other => Service::parse(other),
    }
}

fn service_key(sdk_id: &str) -> String {
    sdk_id
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Clients of one service, by key (a region, or an ARC endpoint and its region).
struct ClientCache<C> {
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> ClientCache<C> {
    fn new() -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str, build: impl FnOnce() -> C) -> C {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.to_string()).or_insert_with(build).clone()
    }
}

struct Inner {
    sdk: SdkConfig,
    endpoint_url: Option<String>,
    region_hints: Vec<String>,
    reach: Reach,
    interceptors: Vec<SharedInterceptor>,
    log: Arc<CallLog>,
    rds: ClientCache<aws_sdk_rds::Client>,
    elasticache: ClientCache<aws_sdk_elasticache::Client>,
    s3: ClientCache<aws_sdk_s3::Client>,
    cloudwatch: ClientCache<aws_sdk_cloudwatch::Client>,
    route53: ClientCache<aws_sdk_route53::Client>,
    ecs: ClientCache<aws_sdk_ecs::Client>,
    autoscaling: ClientCache<aws_sdk_autoscaling::Client>,
    sns: ClientCache<aws_sdk_sns::Client>,
    arc: ClientCache<aws_sdk_route53recoverycluster::Client>,
    sts: ClientCache<aws_sdk_sts::Client>,
    iam: ClientCache<aws_sdk_iam::Client>,
    bucket_regions: Mutex<HashMap<String, String>>,
}

/// The AWS SDK behind every trait of the seam.
#[derive(Clone)]
pub struct AwsCloud {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AwsCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCloud")
            .field("endpoint_url", &self.inner.endpoint_url)
            .finish_non_exhaustive()
    }
}

/// Builds one service's config from the shared one, with drpilot's settings.
macro_rules! service_config {
    ($svc:ident, $inner:expr, $region:expr) => {{
        let inner: &Inner = $inner;
        let mut b = $svc::config::Builder::from(&inner.sdk)
            .region(Region::new($region.to_string()))
            .timeout_config(
                TimeoutConfig::builder()
                    // The SDK's default connect timeout (behavior version 2023-11-09 on),
                    // stated because this config replaces the shared one's.
                    .connect_timeout(CONNECT_TIMEOUT)
                    // A backstop only: the breaker bounds every call with its own
                    // deadline, which stretches up to the patience for a slow region.
                    .operation_attempt_timeout(inner.reach.settings().patience)
                    .build(),
            )
            .interceptor(CallLogInterceptor(inner.log.clone()))
            .interceptor(HeardInterceptor(inner.reach.clone()));
        for i in &inner.interceptors {
            b = b.interceptor(i.clone());
        }
        b
    }};
}

/// Sends a mutation once: SDK retries off for this call (the action re-reads state
/// after an error instead), the error mapped with the operation and region.
/// Through the breaker of its (region, service), with a mutation's deadline and never
/// sent while that region's verdict is pending or unreachable.
macro_rules! send_once {
    ($self:expr, $svc:ident, $service:expr, $op:expr, $region:expr, $req:expr) => {
        $req.customize()
            .config_override($svc::config::Builder::default().retry_config(RetryConfig::disabled()))
            .send()
            .guarded($self.reach(), CallKind::Write, $service, $op, $region)
            .await
    };
}

// One file per service. Declared below the macros above, which they use: a
// `macro_rules!` macro is in scope only after its definition.
mod arc;
mod autoscaling;
mod cloudwatch;
mod ecs;
mod elasticache;
mod iam;
mod rds;
mod route53;
mod s3;
mod sns;

/// An SDK request sent through a [`Reach`]: refused at once while its (region,
/// service) is known to be unreachable, bounded by the breaker's deadline, and its
/// error mapped with the operation and region.
trait Guarded<T, E>: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Sized {
    fn guarded<'a>(
        self,
        reach: &'a Reach,
        kind: CallKind,
        service: Service,
        op: &'a str,
        region: &'a str,
    ) -> impl Future<Output = CloudResult<T>> + 'a
    where
        Self: 'a,
        T: 'a,
        E: 'a;
}

impl<F, T, E> Guarded<T, E> for F
where
    F: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn guarded<'a>(
        self,
        reach: &'a Reach,
        kind: CallKind,
        service: Service,
        op: &'a str,
        region: &'a str,
    ) -> impl Future<Output = CloudResult<T>> + 'a
    where
        Self: 'a,
        T: 'a,
        E: 'a,
    {
        reach.call(op, region, service, kind, async move {
            self.await.map_err(|e| map_sdk_error(op, Some(region), e))
        })
    }
}

impl AwsCloud {
    /// Loads credentials and settings (standard chain, `opts.profile`) and prepares
    /// clients. Nothing is sent until a call is made.
    pub async fn connect(opts: AwsOptions) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk = loader.load().await;
        // AWS_ENDPOINT_URL is honoured by the SDK itself; remember it for ARC and S3.
        let endpoint_url = opts
            .endpoint_url
            .clone()
            .or_else(|| sdk.endpoint_url().map(str::to_string));
        // Which identity source and where requests go: the first questions when calls
        // fail with access denied or never arrive. Names only, never a credential.
        tracing::debug!(
            target: "drpilot::aws",
            profile = opts.profile.as_deref().unwrap_or("(default chain)"),
            endpoint = match endpoint_url.as_deref() {
                None => "(AWS)",
                Some(u) if crate::runbook::catalogue::url_credential(u).is_some() => "(hidden)",
                Some(u) => u,
            },
            credentials = sdk.credentials_provider().is_some(),
            "AWS configuration loaded"
        );
        Self::from_parts(sdk, endpoint_url, opts, Vec::new())
    }

    /// Builds on an SDK configuration the caller loaded (credentials, region, retry
    /// settings of its own); `opts.profile` is ignored, `opts.endpoint_url` (or the
    /// config's) still points every client, ARC and path-style S3 included, at one URL.
    pub fn from_sdk_config(sdk: SdkConfig, opts: AwsOptions) -> Self {
        let endpoint_url = opts
            .endpoint_url
            .clone()
            .or_else(|| sdk.endpoint_url().map(str::to_string));
        Self::from_parts(sdk, endpoint_url, opts, Vec::new())
    }

    /// The same connection with the credentials of a runbook `[accounts]` entry: its
    /// role assumed (`sts:AssumeRole`, with its external id) from this connection's
    /// credentials, lazily on the first call and refreshed before expiry. STS is asked
    /// in the first region the runbook names (the failover's target first), not in
    /// us-east-1, which may be the region that is down. An account without a role is
    /// served by this connection's own credentials. Requests go to the same call log.
    pub async fn for_account(&self, account: &Account, default_session: &str) -> AwsCloud {
        let Some(role) = &account.role_arn else {
            return self.clone();
        };
        let session: String = account
            .session_name
            .clone()
            .unwrap_or_else(|| default_session.chars().take(64).collect());
        let region = self
            .inner
            .region_hints
            .first()
            .cloned()
            .unwrap_or_else(|| GLOBAL_REGION.to_string());
        tracing::debug!(
            target: "drpilot::aws",
            account = account.id.as_str(),
            role = role.as_str(),
            sts_region = region.as_str(),
            "the account's role is assumed on its first call"
        );
        let mut b = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name(session)
            .region(Region::new(region))
            .configure(&self.inner.sdk);
        if let Some(x) = &account.external_id {
            b = b.external_id(x);
        }
        let provider = b.build().await;
        let sdk = self
            .inner
            .sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
        let inner = &self.inner;
        Self::with_log(
            sdk,
            inner.endpoint_url.clone(),
            AwsOptions {
                profile: None,
                endpoint_url: inner.endpoint_url.clone(),
                region_hints: inner.region_hints.clone(),
                reach: Some(inner.reach.clone()),
            },
            inner.interceptors.clone(),
            inner.log.clone(),
        )
    }

    fn from_parts(
        sdk: SdkConfig,
        endpoint_url: Option<String>,
        opts: AwsOptions,
        interceptors: Vec<SharedInterceptor>,
    ) -> Self {
        Self::with_log(
            sdk,
            endpoint_url,
            opts,
            interceptors,
            Arc::new(CallLog::default()),
        )
    }

    fn with_log(
        sdk: SdkConfig,
        endpoint_url: Option<String>,
        opts: AwsOptions,
        interceptors: Vec<SharedInterceptor>,
        log: Arc<CallLog>,
    ) -> Self {
        let reach = opts.reach.unwrap_or_default();
        let me = Self {
            inner: Arc::new(Inner {
                sdk,
                endpoint_url,
                region_hints: opts.region_hints,
                reach: reach.clone(),
                interceptors,
                log,
                rds: ClientCache::new(),
                elasticache: ClientCache::new(),
                s3: ClientCache::new(),
                cloudwatch: ClientCache::new(),
                route53: ClientCache::new(),
                ecs: ClientCache::new(),
                autoscaling: ClientCache::new(),
                sns: ClientCache::new(),
                arc: ClientCache::new(),
                sts: ClientCache::new(),
                iam: ClientCache::new(),
                bucket_regions: Mutex::new(HashMap::new()),
            }),
        };
        reach.set_prober(Arc::new(AwsProber {
            aws: Arc::downgrade(&me.inner),
        }));
        me
    }

    /// The breaker every call of this connection goes through.
    pub fn reach(&self) -> &Reach {
        &self.inner.reach
    }

    /// One cheap signed request to `service` in `region`, sent once (no SDK retry):
    /// what a probe of the breaker sends. Any answer, an error response included, is
    /// `Ok`. Each is a call the runbook's own permissions cover or one any identity may
    /// make (`sts:GetCallerIdentity`); a refusal is an answer too.
    async fn probe_once(
        &self,
        region: &str,
        service: Service,
        endpoint: Option<&str>,
    ) -> (&'static str, CloudResult<()>) {
        macro_rules! once {
            ($svc:ident, $op:expr, $req:expr) => {{
                let r = $req
                    .customize()
                    .config_override(
                        $svc::config::Builder::default().retry_config(RetryConfig::disabled()),
                    )
                    .send()
                    .await;
                (
                    $op,
                    answered(
                        r.map(|_| ())
                            .map_err(|e| map_sdk_error($op, Some(region), e)),
                    ),
                )
            }};
        }
        match service {
            Service::Rds => once!(
                aws_sdk_rds,
                "DescribeGlobalClusters",
                self.rds(region).describe_global_clusters().max_records(20)
            ),
            Service::Elasticache => once!(
                aws_sdk_elasticache,
                "DescribeGlobalReplicationGroups",
                self.elasticache(region)
                    .describe_global_replication_groups()
                    .max_records(20)
            ),
            Service::S3 => once!(
                aws_sdk_s3,
                "ListBuckets",
                self.s3(region).list_buckets().max_buckets(1)
            ),
            Service::Cloudwatch => once!(
                aws_sdk_cloudwatch,
                "ListMetrics",
                self.cloudwatch(region)
                    .list_metrics()
                    .namespace("AWS/RDS")
                    .metric_name("AuroraGlobalDBRPOLag")
            ),
            Service::Route53 => once!(
                aws_sdk_route53,
                "GetHostedZoneCount",
                self.route53().get_hosted_zone_count()
            ),
            Service::RoutingControl => {
                let Some(url) = endpoint else {
                    // Nothing to ask: only a cluster endpoint answers for ARC.
                    return ("ListRoutingControls", Ok(()));
                };
                let ep = ClusterEndpoint {
                    url: url.to_string(),
                    region: region.to_string(),
                };
                once!(
                    aws_sdk_route53recoverycluster,
                    "ListRoutingControls",
                    self.arc(&ep).list_routing_controls().max_results(1)
                )
            }
            Service::Ecs => once!(
                aws_sdk_ecs,
                "ListClusters",
                self.ecs(region).list_clusters().max_results(1)
            ),
            Service::Autoscaling => once!(
                aws_sdk_autoscaling,
                "DescribeAccountLimits",
                self.autoscaling(region).describe_account_limits()
            ),
            Service::Iam => once!(
                aws_sdk_iam,
                "GetAccountSummary",
                self.iam_client().get_account_summary()
            ),
            Service::Sts => {
                let inner = &*self.inner;
                let sts = inner.sts.get(region, || {
                    aws_sdk_sts::Client::from_conf(
                        service_config!(aws_sdk_sts, inner, region).build(),
                    )
                });
                once!(aws_sdk_sts, "GetCallerIdentity", sts.get_caller_identity())
            }
        }
    }

    fn iam_client(&self) -> aws_sdk_iam::Client {
        let inner = &*self.inner;
        inner.iam.get(GLOBAL_REGION, || {
            aws_sdk_iam::Client::from_conf(
                service_config!(aws_sdk_iam, inner, GLOBAL_REGION).build(),
            )
        })
    }

    /// Every service of the seam backed by AWS, with `data` for the data planes.
    pub fn cloud(&self, data: Arc<dyn DataPlane>) -> Cloud {
        Cloud {
            rds: Arc::new(self.clone()),
            elasticache: Arc::new(self.clone()),
            s3: Arc::new(self.clone()),
            route53: Arc::new(self.clone()),
            routing: Arc::new(self.clone()),
            ecs: Arc::new(self.clone()),
            autoscaling: Arc::new(self.clone()),
            sns: Arc::new(self.clone()),
            data,
            metrics: Arc::new(self.clone()),
            reach: self.inner.reach.clone(),
            accounts: Default::default(),
        }
    }

    /// Every HTTP request sent so far, in order.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.inner.log.lock().clone()
    }

    /// Requests sent so far per `service:Operation`.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for c in self.inner.log.lock().iter() {
            *out.entry(format!("{}:{}", c.service, c.operation))
                .or_insert(0) += 1;
        }
        out
    }

    fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        let inner = &*self.inner;
        inner.rds.get(region, || {
            aws_sdk_rds::Client::from_conf(service_config!(aws_sdk_rds, inner, region).build())
        })
    }

    fn elasticache(&self, region: &str) -> aws_sdk_elasticache::Client {
        let inner = &*self.inner;
        inner.elasticache.get(region, || {
            aws_sdk_elasticache::Client::from_conf(
                service_config!(aws_sdk_elasticache, inner, region).build(),
            )
        })
    }

    fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let inner = &*self.inner;
        inner.s3.get(region, || {
            aws_sdk_s3::Client::from_conf(
                service_config!(aws_sdk_s3, inner, region)
                    .force_path_style(inner.endpoint_url.is_some())
                    .build(),
            )
        })
    }

    fn cloudwatch(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        let inner = &*self.inner;
        inner.cloudwatch.get(region, || {
            aws_sdk_cloudwatch::Client::from_conf(
                service_config!(aws_sdk_cloudwatch, inner, region).build(),
            )
        })
    }

    fn ecs(&self, region: &str) -> aws_sdk_ecs::Client {
        let inner = &*self.inner;
        inner.ecs.get(region, || {
            aws_sdk_ecs::Client::from_conf(service_config!(aws_sdk_ecs, inner, region).build())
        })
    }

    fn autoscaling(&self, region: &str) -> aws_sdk_autoscaling::Client {
        let inner = &*self.inner;
        inner.autoscaling.get(region, || {
            aws_sdk_autoscaling::Client::from_conf(
                service_config!(aws_sdk_autoscaling, inner, region).build(),
            )
        })
    }

    fn sns(&self, region: &str) -> aws_sdk_sns::Client {
        let inner = &*self.inner;
        inner.sns.get(region, || {
            aws_sdk_sns::Client::from_conf(service_config!(aws_sdk_sns, inner, region).build())
        })
    }

    fn route53(&self) -> aws_sdk_route53::Client {
        let inner = &*self.inner;
        inner.route53.get(GLOBAL_REGION, || {
            aws_sdk_route53::Client::from_conf(
                service_config!(aws_sdk_route53, inner, GLOBAL_REGION).build(),
            )
        })
    }

    fn arc(&self, endpoint: &ClusterEndpoint) -> aws_sdk_route53recoverycluster::Client {
        let inner = &*self.inner;
        let key = format!("{} {}", endpoint.region, endpoint.url);
        inner.arc.get(&key, || {
            // A cluster endpoint is the service endpoint itself; with an override (the
            // emulator) every cluster endpoint is the override, in its own region.
            let url = inner
                .endpoint_url
                .clone()
                .unwrap_or_else(|| endpoint.url.clone());
            aws_sdk_route53recoverycluster::Client::from_conf(
                service_config!(aws_sdk_route53recoverycluster, inner, endpoint.region)
                    .endpoint_url(url)
                    .build(),
            )
        })
    }

    /// Tells the connection a bucket's region (an `s3://` state URL's `?region=`), so
    /// it is not looked up: the lookup itself needs some region to answer.
    pub fn remember_bucket_region(&self, bucket: &str, region: &str) {
        self.lock_buckets()
            .insert(bucket.to_string(), region.to_string());
    }

    /// The region of a bucket: remembered, else asked of the regions the runbook names
    /// (then us-east-1) until one answers, so an outage of one region does not hide
    /// buckets elsewhere.
    async fn bucket_region(&self, bucket: &str) -> CloudResult<String> {
        const OP: &str = "GetBucketLocation";
        if let Some(r) = self.lock_buckets().get(bucket) {
            return Ok(r.clone());
        }
        let mut candidates: Vec<String> = self.inner.region_hints.clone();
        if !candidates.iter().any(|r| r == GLOBAL_REGION) {
            candidates.push(GLOBAL_REGION.to_string());
        }
        let mut last: Option<CloudError> = None;
        for region in &candidates {
            let ask = async {
                match self
                    .s3(region)
                    .get_bucket_location()
                    .bucket(bucket)
                    .send()
                    .await
                {
                    Ok(out) => Ok(location_region(
                        out.location_constraint().map(|c| c.as_str()).unwrap_or(""),
                    )),
                    // A request to another region's endpoint may be redirected with the
                    // bucket's region in a header: that is an answer too.
                    Err(e) => match e
                        .raw_response()
                        .and_then(|r| r.headers().get("x-amz-bucket-region"))
                    {
                        Some(r) => Ok(r.to_string()),
                        None => Err(map_sdk_error(OP, Some(region), e)),
                    },
                }
            };
            match self
                .reach()
                .call(OP, region, Service::S3, CallKind::Read, ask)
                .await
            {
                Ok(found) => {
                    self.lock_buckets()
                        .insert(bucket.to_string(), found.clone());
                    return Ok(found);
                }
                Err(err) => match err.kind {
                    CloudErrorKind::Unreachable
                    | CloudErrorKind::Transient
                    | CloudErrorKind::Throttling => last = Some(err),
                    _ => return Err(err),
                },
            }
        }
        Err(last.unwrap_or_else(|| {
            CloudError::new(
                CloudErrorKind::Unreachable,
                OP,
                None,
                format!("no region answered for bucket {bucket}"),
            )
        }))
    }

    fn lock_buckets(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.inner
            .bucket_regions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A probe's result: any answer is `Ok`; only "no answer" stays an error.
fn answered(r: CloudResult<()>) -> CloudResult<()> {
    match r {
        Err(e) if e.kind == CloudErrorKind::Unreachable => Err(e),
        _ => Ok(()),
    }
}

/// Answers the breaker's probes with this connection's clients. Holds the connection
/// weakly: the breaker lives inside it.
struct AwsProber {
    aws: Weak<Inner>,
}

impl Prober for AwsProber {
    fn probe(&self, region: &str, service: Service, endpoint: Option<&str>) -> ProbeFuture {
        let Some(inner) = self.aws.upgrade() else {
            // The connection is gone, and with it every caller: nothing to decide.
            return Box::pin(async { ("Probe", Ok(())) });
        };
        let aws = AwsCloud { inner };
        let (region, endpoint) = (region.to_string(), endpoint.map(str::to_string));
        Box::pin(async move { aws.probe_once(&region, service, endpoint.as_deref()).await })
    }
}

/// `LocationConstraint` to a region: empty is us-east-1, the legacy `EU` is eu-west-1.
fn location_region(constraint: &str) -> String {
    match constraint {
        "" => GLOBAL_REGION.to_string(),
        "EU" => "eu-west-1".to_string(),
        other => other.to_string(),
    }
}

/// The region of an ARN, or an `InvalidRequest` error naming it.
fn region_of(op: &str, arn: &str) -> CloudResult<String> {
    arn_region(arn).map(str::to_string).ok_or_else(|| {
        CloudError::new(
            CloudErrorKind::InvalidRequest,
            op,
            None,
            format!("{arn:?} is not an ARN with a region"),
        )
    })
}

/// The resource name at the end of an ARN (`...:cluster:NAME` -> `NAME`).
fn arn_name(arn: &str) -> &str {
    arn.rsplit([':', '/']).next().unwrap_or(arn)
}

fn missing(op: &str, region: Option<&str>, what: &str) -> CloudError {
    CloudError::new(
        CloudErrorKind::Transient,
        op,
        region,
        format!("the response has no {what}"),
    )
}

/// One metric of a GetMetricData request: its query Id (unique in the request, starting
/// with a lowercase letter), namespace, name, dimensions, and the statistic to read
/// over each minute (`Maximum`, `Minimum`, ...).
struct MetricQuery<'a> {
    id: &'a str,
    namespace: &'a str,
    name: &'a str,
    dimensions: &'a [(&'a str, &'a str)],
    stat: &'a str,
}

/// A metric's datapoint: its value, and the start of the period it sums up.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Datapoint {
    at: SystemTime,
    value: f64,
}

/// How old the newest datapoint of a per-minute metric (the replication lags, S3's
/// OperationsPendingReplication, Route 53's HealthCheckStatus) may be and still be read
/// as now.
///
/// They are read over 1-minute periods, and a datapoint is stamped with the start of its
/// minute: on a live metric the newest one is up to a minute old when its minute ends,
/// and CloudWatch makes it visible a minute or two after that (its publishing delay).
/// Three minutes covers both. A newest datapoint older than that means the metric
/// stopped (the primary's region is dark and nothing reaches the secondary, or the
/// secondary is down; us-east-1, where Route 53 publishes, is dark): its value is from before, not now, so it reads as unknown.
/// Within the bound after a metric stops, its last value still reads.
const DATAPOINT_MAX_AGE: Duration = Duration::from_secs(3 * 60);

impl Datapoint {
    /// Its value, when it is a reading of `now` (see [`DATAPOINT_MAX_AGE`]; a datapoint
    /// ahead of our clock, by skew, is as current as it gets).
    fn current(&self, now: SystemTime) -> Option<f64> {
        let age = now.duration_since(self.at).unwrap_or_default();
        (age <= DATAPOINT_MAX_AGE && self.value.is_finite()).then_some(self.value)
    }
}

/// The newest datapoint (its query's statistic over one minute) in the last 15 minutes
/// of each of `metrics`, all asked in one GetMetricData request; in the order of
/// `metrics`, `None` for a metric without one. Results are matched to queries by Id.
async fn newest_datapoints(
    reach: &Reach,
    client: &aws_sdk_cloudwatch::Client,
    region: &str,
    metrics: &[MetricQuery<'_>],
) -> CloudResult<Vec<Option<Datapoint>>> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
    const OP: &str = "GetMetricData";
    let now = SystemTime::now();
    let start = now - Duration::from_secs(15 * 60);
    let mut request = client
        .get_metric_data()
        .start_time(start.into())
        .end_time(now.into())
        .scan_by(ScanBy::TimestampDescending);
    for m in metrics {
        let mut metric = Metric::builder().namespace(m.namespace).metric_name(m.name);
        for (k, v) in m.dimensions {
            metric = metric.dimensions(Dimension::builder().name(*k).value(*v).build());
        }
        request = request.metric_data_queries(
            MetricDataQuery::builder()
                .id(m.id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric.build())
                        .period(60)
                        .stat(m.stat)
                        .build(),
                )
                .return_data(true)
                .build(),
        );
    }
    let out = request
        .send()
        .guarded(reach, CallKind::Read, Service::Cloudwatch, OP, region)
        .await?;
    Ok(metrics
        .iter()
        .map(|m| {
            out.metric_data_results()
                .iter()
                .filter(|r| r.id() == Some(m.id))
                .flat_map(|r| r.timestamps().iter().zip(r.values()))
                .filter_map(|(t, v)| {
                    Some(Datapoint {
                        at: SystemTime::try_from(*t).ok()?,
                        value: *v,
                    })
                })
                .max_by(|a, b| a.at.cmp(&b.at))
        })
        .collect())
}

#[cfg(test)]
mod tests;
