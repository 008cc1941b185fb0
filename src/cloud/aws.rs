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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
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
use super::{
    AliasTarget, ChangeAction, ChangeInfo, ChangeStatus, Cloud, CloudError, CloudErrorKind,
    CloudResult, ClusterEndpoint, ClusterSnapshot, DataPlane, DatastoreMember, DbCluster,
    ElastiCache, FailoverState, FailoverStatus, GlobalCluster, GlobalDatastore, GlobalMember,
    HealthCheck, MemberRole, PutCondition, Quota, Rds, RecordChange, RecordSet, ReplicationRule,
    ReplicationStatus, Route53, RoutingControlState, RoutingControlUpdate, RoutingControls, S3,
    StateObjects, StoredObject,
};
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
            data,
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

    /// Asks IAM whether the caller may do what the runbook needs
    /// (`iam:SimulatePrincipalPolicy` for the identity `sts:GetCallerIdentity`
    /// returns; an assumed role is simulated as its role). Needs of other accounts are
    /// not simulated. The error says why nothing could be checked (no permission to
    /// simulate, IAM's control plane in us-east-1 unreachable, a root identity).
    pub async fn simulate(&self, needs: &BTreeSet<Need>) -> CloudResult<Vec<Simulated>> {
        let region = self
            .inner
            .region_hints
            .first()
            .cloned()
            .unwrap_or_else(|| GLOBAL_REGION.to_string());
        let inner = &*self.inner;
        let sts = inner.sts.get(&region, || {
            aws_sdk_sts::Client::from_conf(service_config!(aws_sdk_sts, inner, region).build())
        });
        let me = sts
            .get_caller_identity()
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Sts,
                "GetCallerIdentity",
                &region,
            )
            .await?;
        let arn = me.arn().unwrap_or_default().to_string();
        let account = me.account().unwrap_or_default().to_string();
        let iam = self.iam_client();
        let principal = if let Some(rest) = arn.split(":assumed-role/").nth(1) {
            // arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION: the role's ARN carries a
            // path that only IAM knows.
            let role = rest.split('/').next().unwrap_or_default();
            let out = iam
                .get_role()
                .role_name(role)
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::Iam,
                    "GetRole",
                    GLOBAL_REGION,
                )
                .await?;
            out.role()
                .map(|r| r.arn().to_string())
                .ok_or_else(|| missing("GetRole", Some(GLOBAL_REGION), "Role"))?
        } else if arn.ends_with(":root") {
            return Err(CloudError::new(
                CloudErrorKind::InvalidRequest,
                "SimulatePrincipalPolicy",
                None,
                "the caller is the account's root user, which IAM cannot simulate",
            ));
        } else {
            arn
        };
        let mut by_resource: BTreeMap<&str, Vec<&Need>> = BTreeMap::new();
        for n in needs
            .iter()
            .filter(|n| n.account == "*" || n.account == account)
        {
            by_resource.entry(&n.resource).or_default().push(n);
        }
        // One simulation per resource, a few at a time: IAM answers each in a fraction
        // of a second, and a runbook names a dozen resources or more.
        let principal = principal.as_str();
        let iam = &iam;
        let simulations = by_resource.into_iter().map(|(resource, group)| async move {
            let mut decisions: HashMap<String, String> = HashMap::new();
            let mut marker: Option<String> = None;
            loop {
                let mut req = iam
                    .simulate_principal_policy()
                    .policy_source_arn(principal)
                    .set_action_names(Some(group.iter().map(|n| n.action.clone()).collect()))
                    .set_marker(marker.take());
                if resource != "*" {
                    req = req.resource_arns(resource);
                }
                let page = req
                    .send()
                    .guarded(
                        self.reach(),
                        CallKind::Read,
                        Service::Iam,
                        "SimulatePrincipalPolicy",
                        GLOBAL_REGION,
                    )
                    .await?;
                for r in page.evaluation_results() {
                    decisions.insert(
                        r.eval_action_name().to_string(),
                        r.eval_decision().as_str().to_string(),
                    );
                }
                match page.marker() {
                    Some(m) if page.is_truncated() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
            Ok::<_, CloudError>(
                group
                    .into_iter()
                    .map(|n| {
                        let decision = decisions
                            .get(&n.action)
                            .cloned()
                            .unwrap_or_else(|| "not evaluated".to_string());
                        Simulated {
                            need: n.clone(),
                            allowed: decision == "allowed",
                            decision,
                        }
                    })
                    .collect::<Vec<_>>(),
            )
        });
        use futures_util::StreamExt as _;
        let mut out = Vec::new();
        let results: Vec<CloudResult<Vec<Simulated>>> = futures_util::stream::iter(simulations)
            .buffered(8)
            .collect()
            .await;
        for r in results {
            out.extend(r?);
        }
        Ok(out)
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

// ------------------------------------------------------------------------------ RDS

fn global_cluster_from(g: &aws_sdk_rds::types::GlobalCluster) -> GlobalCluster {
    let members = g
        .global_cluster_members()
        .iter()
        .filter_map(|m| {
            let arn = m.db_cluster_arn()?;
            Some(GlobalMember {
                cluster_arn: arn.to_string(),
                region: arn_region(arn).unwrap_or_default().to_string(),
                is_writer: m.is_writer().unwrap_or(false),
            })
        })
        .collect();
    let failover_state = g.failover_state().and_then(|f| {
        // The SDK's enum predates `switching-over`: read the wire value.
        let status = match f.status()?.as_str() {
            "pending" => FailoverStatus::Pending,
            "failing-over" => FailoverStatus::FailingOver,
            "switching-over" => FailoverStatus::SwitchingOver,
            "cancelling" => FailoverStatus::Cancelling,
            _ => return None,
        };
        Some(FailoverState {
            status,
            from_cluster_arn: f.from_db_cluster_arn().unwrap_or_default().to_string(),
            to_cluster_arn: f.to_db_cluster_arn().unwrap_or_default().to_string(),
            is_data_loss_allowed: f.is_data_loss_allowed().unwrap_or(false),
        })
    });
    GlobalCluster {
        id: g
            .global_cluster_identifier()
            .unwrap_or_default()
            .to_string(),
        status: g.status().unwrap_or_default().to_string(),
        engine_version: g.engine_version().unwrap_or_default().to_string(),
        members,
        failover_state,
    }
}

#[async_trait]
impl Rds for AwsCloud {
    async fn describe_global_cluster(&self, region: &str, id: &str) -> CloudResult<GlobalCluster> {
        const OP: &str = "DescribeGlobalClusters";
        let out = self
            .rds(region)
            .describe_global_clusters()
            .global_cluster_identifier(id)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::Rds, OP, region)
            .await?;
        out.global_clusters()
            .iter()
            .find(|g| g.global_cluster_identifier() == Some(id))
            .map(global_cluster_from)
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    format!("global cluster {id} not found"),
                )
                .with_code("GlobalClusterNotFoundFault")
            })
    }

    async fn describe_cluster(&self, arn: &str) -> CloudResult<DbCluster> {
        const OP: &str = "DescribeDBClusters";
        let region = region_of(OP, arn)?;
        let out = self
            .rds(&region)
            .describe_db_clusters()
            .db_cluster_identifier(arn)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::Rds, OP, &region)
            .await?;
        let c = out.db_clusters().first().ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::NotFound,
                OP,
                Some(&region),
                format!("cluster {arn} not found"),
            )
            .with_code("DBClusterNotFoundFault")
        })?;
        Ok(DbCluster {
            arn: c.db_cluster_arn().unwrap_or(arn).to_string(),
            status: c.status().unwrap_or_default().to_string(),
            engine_version: c.engine_version().unwrap_or_default().to_string(),
            instances: c.db_cluster_members().len(),
            endpoint: c.endpoint().unwrap_or_default().to_string(),
        })
    }

    async fn failover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalCluster";
        let mut req = self
            .rds(region)
            .failover_global_cluster()
            .global_cluster_identifier(id)
            .target_db_cluster_identifier(target_arn);
        if allow_data_loss {
            req = req.allow_data_loss(true);
        }
        send_once!(self, aws_sdk_rds, Service::Rds, OP, region, req)?;
        Ok(())
    }

    async fn switchover_global_cluster(
        &self,
        region: &str,
        id: &str,
        target_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "SwitchoverGlobalCluster";
        send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .switchover_global_cluster()
                .global_cluster_identifier(id)
                .target_db_cluster_identifier(target_arn)
        )?;
        Ok(())
    }

    async fn remove_from_global_cluster(
        &self,
        region: &str,
        id: &str,
        cluster_arn: &str,
    ) -> CloudResult<()> {
        const OP: &str = "RemoveFromGlobalCluster";
        send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .remove_from_global_cluster()
                .global_cluster_identifier(id)
                .db_cluster_identifier(cluster_arn)
        )?;
        Ok(())
    }

    async fn replication_lag(
        &self,
        region: &str,
        _global_id: &str,
        cluster_arn: &str,
    ) -> CloudResult<Option<Duration>> {
        // AuroraGlobalDBRPOLag (milliseconds) is published by the secondary, per
        // DBClusterIdentifier, in the secondary's region.
        let latest = latest_metric(
            self.reach(),
            &self.cloudwatch(region),
            region,
            "AWS/RDS",
            "AuroraGlobalDBRPOLag",
            &[("DBClusterIdentifier", arn_name(cluster_arn))],
        )
        .await?;
        Ok(latest.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)))
    }

    async fn list_cluster_snapshots(&self, cluster_arn: &str) -> CloudResult<Vec<ClusterSnapshot>> {
        const OP: &str = "DescribeDBClusterSnapshots";
        let region = region_of(OP, cluster_arn)?;
        let client = self.rds(&region);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = client
                .describe_db_cluster_snapshots()
                .db_cluster_identifier(arn_name(cluster_arn))
                .set_marker(marker.take())
                .send()
                .guarded(self.reach(), CallKind::Read, Service::Rds, OP, &region)
                .await?;
            out.extend(page.db_cluster_snapshots().iter().map(|s| {
                ClusterSnapshot {
                    id: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .to_string(),
                    cluster_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
                    snapshot_type: s.snapshot_type().unwrap_or_default().to_string(),
                    status: s.status().unwrap_or_default().to_string(),
                }
            }));
            match page.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
    ) -> CloudResult<ClusterSnapshot> {
        const OP: &str = "CopyDBClusterSnapshot";
        let out = send_once!(
            self,
            aws_sdk_rds,
            Service::Rds,
            OP,
            region,
            self.rds(region)
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(source_id)
                .target_db_cluster_snapshot_identifier(target_id)
        )?;
        let s = out
            .db_cluster_snapshot()
            .ok_or_else(|| missing(OP, Some(region), "DBClusterSnapshot"))?;
        Ok(ClusterSnapshot {
            id: s
                .db_cluster_snapshot_identifier()
                .unwrap_or(target_id)
                .to_string(),
            cluster_id: s.db_cluster_identifier().unwrap_or_default().to_string(),
            snapshot_type: s.snapshot_type().unwrap_or("manual").to_string(),
            status: s.status().unwrap_or_default().to_string(),
        })
    }
}

/// The newest datapoint (Maximum over one minute) of a metric in the last 15 minutes,
/// `None` when there is none.
async fn latest_metric(
    reach: &Reach,
    client: &aws_sdk_cloudwatch::Client,
    region: &str,
    namespace: &str,
    name: &str,
    dimensions: &[(&str, &str)],
) -> CloudResult<Option<f64>> {
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
    const OP: &str = "GetMetricData";
    let mut metric = Metric::builder().namespace(namespace).metric_name(name);
    for (k, v) in dimensions {
        metric = metric.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    let query = MetricDataQuery::builder()
        .id("m0")
        .metric_stat(
            MetricStat::builder()
                .metric(metric.build())
                .period(60)
                .stat("Maximum")
                .build(),
        )
        .return_data(true)
        .build();
    let now = SystemTime::now();
    let start = now - Duration::from_secs(15 * 60);
    let out = client
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(start.into())
        .end_time(now.into())
        .scan_by(ScanBy::TimestampDescending)
        .send()
        .guarded(reach, CallKind::Read, Service::Cloudwatch, OP, region)
        .await?;
    let newest = out
        .metric_data_results()
        .iter()
        .flat_map(|r| r.timestamps().iter().zip(r.values()))
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(_, v)| *v);
    Ok(newest)
}

// ----------------------------------------------------------------------- ElastiCache

#[async_trait]
impl ElastiCache for AwsCloud {
    async fn describe_global_datastore(
        &self,
        region: &str,
        id: &str,
    ) -> CloudResult<GlobalDatastore> {
        const OP: &str = "DescribeGlobalReplicationGroups";
        let out = self
            .elasticache(region)
            .describe_global_replication_groups()
            .global_replication_group_id(id)
            .show_member_info(true)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Elasticache,
                OP,
                region,
            )
            .await?;
        let g = out
            .global_replication_groups()
            .iter()
            .find(|g| g.global_replication_group_id() == Some(id))
            .ok_or_else(|| {
                CloudError::new(
                    CloudErrorKind::NotFound,
                    OP,
                    Some(region),
                    format!("global datastore {id} not found"),
                )
                .with_code("GlobalReplicationGroupNotFoundFault")
            })?;
        let mut members = Vec::new();
        for m in g.members() {
            let role = match m.role().map(str::to_ascii_uppercase).as_deref() {
                Some("PRIMARY") => MemberRole::Primary,
                Some("SECONDARY") => MemberRole::Secondary,
                other => {
                    return Err(CloudError::new(
                        CloudErrorKind::Transient,
                        OP,
                        Some(region),
                        format!("member with an unknown role {other:?}"),
                    ));
                }
            };
            members.push(DatastoreMember {
                replication_group_id: m.replication_group_id().unwrap_or_default().to_string(),
                region: m.replication_group_region().unwrap_or_default().to_string(),
                role,
                status: m.status().unwrap_or_default().to_string(),
            });
        }
        Ok(GlobalDatastore {
            id: id.to_string(),
            status: g.status().unwrap_or_default().to_string(),
            members,
        })
    }

    async fn failover_global_datastore(
        &self,
        region: &str,
        id: &str,
        primary_region: &str,
        primary_replication_group: &str,
    ) -> CloudResult<()> {
        const OP: &str = "FailoverGlobalReplicationGroup";
        send_once!(
            self,
            aws_sdk_elasticache,
            Service::Elasticache,
            OP,
            region,
            self.elasticache(region)
                .failover_global_replication_group()
                .global_replication_group_id(id)
                .primary_region(primary_region)
                .primary_replication_group_id(primary_replication_group)
        )?;
        Ok(())
    }

    async fn disassociate_global_datastore(
        &self,
        region: &str,
        id: &str,
        replication_group: &str,
        replication_group_region: &str,
    ) -> CloudResult<()> {
        const OP: &str = "DisassociateGlobalReplicationGroup";
        send_once!(
            self,
            aws_sdk_elasticache,
            Service::Elasticache,
            OP,
            region,
            self.elasticache(region)
                .disassociate_global_replication_group()
                .global_replication_group_id(id)
                .replication_group_id(replication_group)
                .replication_group_region(replication_group_region)
        )?;
        Ok(())
    }
}

// -------------------------------------------------------------------------------- S3

/// `arn:aws:s3:::NAME` (or a bare name) to the bucket name.
fn bucket_name(dest: &str) -> String {
    dest.strip_prefix("arn:aws:s3:::")
        .or_else(|| dest.rsplit(":::").next())
        .unwrap_or(dest)
        .to_string()
}

/// Gives a conditional write's refusal its code even when S3 sent none (a 412 or 409
/// with an empty body, as a HEAD-like answer may be), so callers match on the code.
fn condition_code(mut err: CloudError, status: Option<u16>) -> CloudError {
    if err.code.is_none() {
        match status {
            Some(412) => err.code = Some("PreconditionFailed".into()),
            Some(409) => err.code = Some("ConditionalRequestConflict".into()),
            _ => {}
        }
    }
    err
}

#[async_trait]
impl StateObjects for AwsCloud {
    async fn put_state(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: PutCondition,
    ) -> CloudResult<String> {
        const OP: &str = "PutObject";
        let region = self.bucket_region(bucket).await?;
        let req = self
            .s3(&region)
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(body));
        let req = match condition {
            PutCondition::IfAbsent => req.if_none_match("*"),
            PutCondition::IfMatch(etag) => req.if_match(etag),
        };
        let send = async {
            let res = req
                .customize()
                .config_override(
                    aws_sdk_s3::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            match res {
                Ok(out) => out.e_tag().map(str::to_string).ok_or_else(|| {
                    CloudError::new(
                        CloudErrorKind::Transient,
                        OP,
                        Some(&region),
                        format!("s3://{bucket}/{key}: the answer has no ETag"),
                    )
                }),
                Err(e) => {
                    let status = e.raw_response().map(|r| r.status().as_u16());
                    Err(condition_code(map_sdk_error(OP, Some(&region), e), status))
                }
            }
        };
        self.reach()
            .call(OP, &region, Service::S3, CallKind::Write, send)
            .await
    }

    async fn get_state(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredObject>> {
        const OP: &str = "GetObject";
        let region = self.bucket_region(bucket).await?;
        // The body is read inside the breaker's deadline too: a region may answer
        // the headers and hold the rest.
        let get = async {
            let res = self
                .s3(&region)
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await;
            let out = match res {
                Ok(out) => out,
                Err(e) => {
                    let err = map_sdk_error(OP, Some(&region), e);
                    if err.code.as_deref() == Some("NoSuchKey") {
                        return Ok(None);
                    }
                    return Err(err);
                }
            };
            let etag = out.e_tag().unwrap_or_default().to_string();
            let body = out.body.collect().await.map_err(|e| {
                CloudError::new(
                    CloudErrorKind::Unreachable,
                    OP,
                    Some(&region),
                    format!("s3://{bucket}/{key}: the body could not be read: {e}"),
                )
            })?;
            Ok(Some(StoredObject {
                body: body.into_bytes().to_vec(),
                etag,
            }))
        };
        self.reach()
            .call(OP, &region, Service::S3, CallKind::Read, get)
            .await
    }

    async fn list_state(&self, bucket: &str, prefix: &str) -> CloudResult<Vec<String>> {
        const OP: &str = "ListObjectsV2";
        let region = self.bucket_region(bucket).await?;
        let client = self.s3(&region);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
                .await?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn state_bucket_region(&self, bucket: &str) -> CloudResult<String> {
        self.bucket_region(bucket).await
    }
}

#[async_trait]
impl S3 for AwsCloud {
    async fn replication_rules(&self, bucket: &str) -> CloudResult<Vec<ReplicationRule>> {
        const OP: &str = "GetBucketReplication";
        let region = self.bucket_region(bucket).await?;
        let res = self
            .s3(&region)
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await;
        let out = match res {
            Ok(out) => out,
            // No configuration at all is an answer: no rules.
            Err(err) if err.code.as_deref() == Some("ReplicationConfigurationNotFoundError") => {
                return Ok(Vec::new());
            }
            Err(err) => return Err(err),
        };
        Ok(out
            .replication_configuration()
            .map(|c| {
                c.rules()
                    .iter()
                    .map(|r| ReplicationRule {
                        id: r.id().unwrap_or_default().to_string(),
                        enabled: r.status().as_str() == "Enabled",
                        destination_bucket: r
                            .destination()
                            .map(|d| bucket_name(d.bucket()))
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn versioning_enabled(&self, bucket: &str) -> CloudResult<bool> {
        const OP: &str = "GetBucketVersioning";
        let region = self.bucket_region(bucket).await?;
        let out = self
            .s3(&region)
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await?;
        Ok(out.status().map(|s| s.as_str()) == Some("Enabled"))
    }

    async fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> CloudResult<()> {
        const OP: &str = "PutObject";
        let region = self.bucket_region(bucket).await?;
        // A canary: writing it twice makes a second version of a throwaway object, so
        // the SDK's retries may stay on.
        self.s3(&region)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .guarded(self.reach(), CallKind::Write, Service::S3, OP, &region)
            .await?;
        Ok(())
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> CloudResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let region = self.bucket_region(bucket).await?;
        let client = self.s3(&region);
        // Every version and delete marker of exactly this key (the listing is by
        // prefix). A canary has one or two; pages are followed anyway.
        let mut ids: Vec<ObjectIdentifier> = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = client
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::S3,
                    "ListObjectVersions",
                    &region,
                )
                .await?;
            let versions = page
                .versions()
                .iter()
                .filter_map(|v| Some((v.key()?, v.version_id())));
            let markers = page
                .delete_markers()
                .iter()
                .filter_map(|m| Some((m.key()?, m.version_id())));
            for (k, v) in versions.chain(markers).filter(|(k, _)| *k == key) {
                let id = ObjectIdentifier::builder()
                    .key(k)
                    .set_version_id(v.map(str::to_string))
                    .build()
                    .map_err(|e| {
                        CloudError::new(
                            CloudErrorKind::InvalidRequest,
                            "DeleteObjects",
                            Some(&region),
                            e.to_string(),
                        )
                    })?;
                ids.push(id);
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
        }
        // DeleteObjects takes up to 1,000 keys per request.
        for chunk in ids.chunks(1000) {
            let delete = Delete::builder()
                .set_objects(Some(chunk.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| {
                    CloudError::new(
                        CloudErrorKind::InvalidRequest,
                        "DeleteObjects",
                        Some(&region),
                        e.to_string(),
                    )
                })?;
            let out = client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Write,
                    Service::S3,
                    "DeleteObjects",
                    &region,
                )
                .await?;
            if let Some(e) = out.errors().first() {
                return Err(CloudError::new(
                    errors::classify(e.code(), None),
                    "DeleteObjects",
                    Some(&region),
                    format!(
                        "{}: {}",
                        e.key().unwrap_or(key),
                        e.message().unwrap_or("not deleted")
                    ),
                ));
            }
        }
        Ok(())
    }

    async fn replication_status(
        &self,
        bucket: &str,
        key: &str,
    ) -> CloudResult<Option<ReplicationStatus>> {
        const OP: &str = "HeadObject";
        let region = self.bucket_region(bucket).await?;
        let out = self
            .s3(&region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .guarded(self.reach(), CallKind::Read, Service::S3, OP, &region)
            .await?;
        Ok(match out.replication_status().map(|s| s.as_str()) {
            None => None,
            Some("PENDING") => Some(ReplicationStatus::Pending),
            Some("COMPLETED") | Some("COMPLETE") => Some(ReplicationStatus::Completed),
            Some("FAILED") => Some(ReplicationStatus::Failed),
            Some("REPLICA") => Some(ReplicationStatus::Replica),
            Some(other) => {
                return Err(CloudError::new(
                    CloudErrorKind::Transient,
                    OP,
                    Some(&region),
                    format!("unknown replication status {other:?}"),
                ));
            }
        })
    }

    async fn replication_backlog(
        &self,
        bucket: &str,
        rules: &[ReplicationRule],
    ) -> CloudResult<Option<u64>> {
        // OperationsPendingReplication is published per rule (SourceBucket,
        // DestinationBucket, RuleId) in the source's region, when the rule has
        // replication metrics enabled. The backlog is the sum over enabled rules.
        let region = self.bucket_region(bucket).await?;
        let cw = self.cloudwatch(&region);
        let mut total: Option<u64> = None;
        for r in rules.iter().filter(|r| r.enabled) {
            let v = latest_metric(
                self.reach(),
                &cw,
                &region,
                "AWS/S3",
                "OperationsPendingReplication",
                &[
                    ("SourceBucket", bucket),
                    ("DestinationBucket", &r.destination_bucket),
                    ("RuleId", &r.id),
                ],
            )
            .await?;
            if let Some(v) = v {
                *total.get_or_insert(0) += v.max(0.0).round() as u64;
            }
        }
        Ok(total)
    }
}

// -------------------------------------------------------------------------- Route 53

/// A record name as Route 53 returns it: lower case, absolute, `*` as `\052`.
fn normalize_name(name: &str) -> String {
    let mut n = name.to_ascii_lowercase().replace('*', "\\052");
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

fn record_from(r: &aws_sdk_route53::types::ResourceRecordSet) -> RecordSet {
    RecordSet {
        name: r.name().to_string(),
        record_type: r.r#type().as_str().to_string(),
        set_identifier: r.set_identifier().map(str::to_string),
        ttl: r.ttl(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| AliasTarget {
            dns_name: a.dns_name().to_string(),
            zone_id: a.hosted_zone_id().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        weight: r.weight(),
        failover: r.failover().map(|f| f.as_str().to_string()),
        health_check_id: r.health_check_id().map(str::to_string),
    }
}

fn record_to(op: &str, r: &RecordSet) -> CloudResult<aws_sdk_route53::types::ResourceRecordSet> {
    use aws_sdk_route53::types::{
        ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
    };
    let bad = |e: &dyn std::error::Error| {
        CloudError::new(
            CloudErrorKind::InvalidRequest,
            op,
            Some(GLOBAL_REGION),
            format!("record {} {}: {e}", r.name, r.record_type),
        )
    };
    let mut b = ResourceRecordSet::builder()
        .name(&r.name)
        .r#type(RrType::from(r.record_type.as_str()))
        .set_set_identifier(r.set_identifier.clone())
        .set_ttl(r.ttl)
        .set_weight(r.weight)
        .set_failover(r.failover.as_deref().map(ResourceRecordSetFailover::from))
        .set_health_check_id(r.health_check_id.clone());
    for v in &r.values {
        b = b.resource_records(
            ResourceRecord::builder()
                .value(v)
                .build()
                .map_err(|e| bad(&e))?,
        );
    }
    if let Some(a) = &r.alias {
        b = b.alias_target(
            aws_sdk_route53::types::AliasTarget::builder()
                .dns_name(&a.dns_name)
                .hosted_zone_id(&a.zone_id)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(|e| bad(&e))?,
        );
    }
    b.build().map_err(|e| bad(&e))
}

fn change_info(c: &aws_sdk_route53::types::ChangeInfo) -> ChangeInfo {
    ChangeInfo {
        id: c.id().to_string(),
        status: match c.status() {
            aws_sdk_route53::types::ChangeStatus::Insync => ChangeStatus::Insync,
            _ => ChangeStatus::Pending,
        },
    }
}

#[async_trait]
impl Route53 for AwsCloud {
    async fn list_record_sets(
        &self,
        zone_id: &str,
        name: &str,
        record_type: &str,
    ) -> CloudResult<Vec<RecordSet>> {
        use aws_sdk_route53::types::RrType;
        const OP: &str = "ListResourceRecordSets";
        let want = normalize_name(name);
        let client = self.route53();
        let mut out = Vec::new();
        // Start at (name, type): record sets are listed in name-then-type order, so
        // the ones we want come first and the listing stops at the first other one.
        let mut identifier: Option<String> = None;
        loop {
            let page = client
                .list_resource_record_sets()
                .hosted_zone_id(zone_id)
                .start_record_name(&want)
                .start_record_type(RrType::from(record_type))
                .set_start_record_identifier(identifier.take())
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::Route53,
                    OP,
                    GLOBAL_REGION,
                )
                .await?;
            let mut past = false;
            for r in page.resource_record_sets() {
                if normalize_name(r.name()) == want && r.r#type().as_str() == record_type {
                    out.push(record_from(r));
                } else {
                    past = true;
                }
            }
            let more = page.is_truncated()
                && page.next_record_name().map(normalize_name).as_deref() == Some(&want)
                && page.next_record_type().map(|t| t.as_str()) == Some(record_type)
                && page.next_record_identifier().is_some();
            if past || !more {
                break;
            }
            identifier = page.next_record_identifier().map(str::to_string);
        }
        Ok(out)
    }

    async fn change_record_sets(
        &self,
        zone_id: &str,
        changes: &[RecordChange],
    ) -> CloudResult<ChangeInfo> {
        use aws_sdk_route53::types::{Change, ChangeBatch};
        const OP: &str = "ChangeResourceRecordSets";
        let invalid =
            |m: String| CloudError::new(CloudErrorKind::InvalidRequest, OP, Some(GLOBAL_REGION), m);
        let mut batch = ChangeBatch::builder().comment("drpilot");
        for c in changes {
            let action = match c.action {
                ChangeAction::Create => aws_sdk_route53::types::ChangeAction::Create,
                ChangeAction::Delete => aws_sdk_route53::types::ChangeAction::Delete,
                ChangeAction::Upsert => aws_sdk_route53::types::ChangeAction::Upsert,
            };
            batch = batch.changes(
                Change::builder()
                    .action(action)
                    .resource_record_set(record_to(OP, &c.record)?)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            );
        }
        let out = send_once!(
            self,
            aws_sdk_route53,
            Service::Route53,
            OP,
            GLOBAL_REGION,
            self.route53()
                .change_resource_record_sets()
                .hosted_zone_id(zone_id)
                .change_batch(batch.build().map_err(|e| invalid(e.to_string()))?)
        )?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "ChangeInfo"))
    }

    async fn get_change(&self, change_id: &str) -> CloudResult<ChangeInfo> {
        const OP: &str = "GetChange";
        let out = self
            .route53()
            .get_change()
            .id(change_id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        out.change_info()
            .map(change_info)
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "ChangeInfo"))
    }

    async fn get_health_check(&self, id: &str) -> CloudResult<HealthCheck> {
        const OP: &str = "GetHealthCheck";
        let out = self
            .route53()
            .get_health_check()
            .health_check_id(id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        let cfg = out
            .health_check()
            .and_then(|h| h.health_check_config())
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "HealthCheckConfig"))?;
        Ok(HealthCheck {
            id: id.to_string(),
            inverted: cfg.inverted().unwrap_or(false),
            disabled: cfg.disabled().unwrap_or(false),
        })
    }

    async fn update_health_check(
        &self,
        id: &str,
        inverted: Option<bool>,
        disabled: Option<bool>,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateHealthCheck";
        send_once!(
            self,
            aws_sdk_route53,
            Service::Route53,
            OP,
            GLOBAL_REGION,
            self.route53()
                .update_health_check()
                .health_check_id(id)
                .set_inverted(inverted)
                .set_disabled(disabled)
        )?;
        Ok(())
    }

    async fn health_check_healthy(&self, id: &str) -> CloudResult<bool> {
        const OP: &str = "GetHealthCheckStatus";
        let out = self
            .route53()
            .get_health_check_status()
            .health_check_id(id)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        let statuses: Vec<&str> = out
            .health_check_observations()
            .iter()
            .filter_map(|o| o.status_report()?.status())
            .collect();
        if statuses.is_empty() {
            return Err(CloudError::new(
                CloudErrorKind::Transient,
                OP,
                Some(GLOBAL_REGION),
                format!("health check {id} has no observations yet"),
            ));
        }
        // Route 53 considers an endpoint healthy when more than 18% of its checkers
        // report it healthy (Route 53 Developer Guide, "How Route 53 determines whether
        // a health check is healthy").
        let ok = statuses.iter().filter(|s| s.starts_with("Success")).count();
        Ok(ok * 100 > statuses.len() * 18)
    }

    async fn zone_record_quota(&self, zone_id: &str) -> CloudResult<Quota> {
        self.hosted_zone_limit(zone_id).await
    }
}

impl AwsCloud {
    async fn hosted_zone_limit(&self, zone_id: &str) -> CloudResult<Quota> {
        use aws_sdk_route53::types::HostedZoneLimitType;
        const OP: &str = "GetHostedZoneLimit";
        let out = self
            .route53()
            .get_hosted_zone_limit()
            .hosted_zone_id(zone_id)
            .r#type(HostedZoneLimitType::MaxRrsetsByZone)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::Route53,
                OP,
                GLOBAL_REGION,
            )
            .await?;
        let limit = out
            .limit()
            .map(|l| l.value())
            .ok_or_else(|| missing(OP, Some(GLOBAL_REGION), "Limit"))?;
        Ok(Quota {
            used: u64::try_from(out.count()).unwrap_or(0),
            limit: u64::try_from(limit).unwrap_or(0),
        })
    }
}

// --------------------------------------------------------------------------- ARC

#[async_trait]
impl RoutingControls for AwsCloud {
    async fn routing_control_state(
        &self,
        endpoint: &ClusterEndpoint,
        arn: &str,
    ) -> CloudResult<RoutingControlState> {
        const OP: &str = "GetRoutingControlState";
        self.reach()
            .note_endpoint(&endpoint.region, Service::RoutingControl, &endpoint.url);
        let out = self
            .arc(endpoint)
            .get_routing_control_state()
            .routing_control_arn(arn)
            .send()
            .guarded(
                self.reach(),
                CallKind::Read,
                Service::RoutingControl,
                OP,
                &endpoint.region,
            )
            .await?;
        match out.routing_control_state().as_str() {
            "On" => Ok(RoutingControlState::On),
            "Off" => Ok(RoutingControlState::Off),
            other => Err(CloudError::new(
                CloudErrorKind::Transient,
                OP,
                Some(&endpoint.region),
                format!("unknown routing control state {other:?}"),
            )),
        }
    }

    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        updates: &[RoutingControlUpdate],
        override_safety_rules: &[String],
    ) -> CloudResult<()> {
        use aws_sdk_route53recoverycluster::types::{
            RoutingControlState as S, UpdateRoutingControlStateEntry,
        };
        const OP: &str = "UpdateRoutingControlStates";
        self.reach()
            .note_endpoint(&endpoint.region, Service::RoutingControl, &endpoint.url);
        let mut req = self
            .arc(endpoint)
            .update_routing_control_states()
            .set_safety_rules_to_override(
                (!override_safety_rules.is_empty()).then(|| override_safety_rules.to_vec()),
            );
        for u in updates {
            let entry = UpdateRoutingControlStateEntry::builder()
                .routing_control_arn(&u.arn)
                .routing_control_state(match u.state {
                    RoutingControlState::On => S::On,
                    RoutingControlState::Off => S::Off,
                })
                .build()
                .map_err(|e| {
                    CloudError::new(
                        CloudErrorKind::InvalidRequest,
                        OP,
                        Some(&endpoint.region),
                        e.to_string(),
                    )
                })?;
            req = req.update_routing_control_state_entries(entry);
        }
        send_once!(
            self,
            aws_sdk_route53recoverycluster,
            Service::RoutingControl,
            OP,
            &endpoint.region,
            req
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
