//! IAM: the policy simulation behind `drpilot preflight`'s permission check.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;

use super::{
    AwsCloud, CONNECT_TIMEOUT, CallLogInterceptor, GLOBAL_REGION, Guarded, HeardInterceptor, Inner,
    Simulated, missing,
};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{CloudError, CloudErrorKind, CloudResult};
use crate::runbook::iam::Need;

impl AwsCloud {
    /// The caller's identity (STS GetCallerIdentity, in the first region hint): its
    /// ARN and account.
    pub async fn whoami(&self) -> CloudResult<(String, String)> {
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
        Ok((
            me.arn().unwrap_or_default().to_string(),
            me.account().unwrap_or_default().to_string(),
        ))
    }

    /// Asks IAM whether the caller may do what the runbook needs
    /// (`iam:SimulatePrincipalPolicy` for the identity `sts:GetCallerIdentity`
    /// returns; an assumed role is simulated as its role). Needs of other accounts are
    /// not simulated. The error says why nothing could be checked (no permission to
    /// simulate, IAM's control plane in us-east-1 unreachable, a root identity).
    pub async fn simulate(&self, needs: &BTreeSet<Need>) -> CloudResult<Vec<Simulated>> {
        let (arn, account) = self.whoami().await?;
        let mine: Vec<&Need> = needs
            .iter()
            .filter(|n| n.account == "*" || n.account == account)
            .collect();
        if let Some(rest) = arn.split(":assumed-role/").nth(1) {
            // arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION. The role's ARN
            // carries a path only IAM knows: most roles have none, so simulate
            // role/ROLE first and ask GetRole (which the generated policy does not
            // grant) only when IAM does not know that ARN.
            let role = rest.split('/').next().unwrap_or_default();
            let partition = arn.split(':').nth(1).unwrap_or("aws");
            let guess = format!("arn:{partition}:iam::{account}:role/{role}");
            match self.simulate_as(&guess, &mine).await {
                Err(e) if e.kind == CloudErrorKind::NotFound => {}
                other => return other,
            }
            let out = self
                .iam_client()
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
            let principal = out
                .role()
                .map(|r| r.arn().to_string())
                .ok_or_else(|| missing("GetRole", Some(GLOBAL_REGION), "Role"))?;
            return self.simulate_as(&principal, &mine).await;
        }
        if arn.ends_with(":root") {
            return Err(CloudError::new(
                CloudErrorKind::InvalidRequest,
                "SimulatePrincipalPolicy",
                None,
                "the caller is the account's root user, which IAM cannot simulate",
            ));
        }
        self.simulate_as(&arn, &mine).await
    }

    /// SimulatePrincipalPolicy of `needs` for `principal` (a user's or role's ARN).
    async fn simulate_as(&self, principal: &str, needs: &[&Need]) -> CloudResult<Vec<Simulated>> {
        let iam = self.iam_client();
        let mut by_resource: BTreeMap<&str, Vec<&Need>> = BTreeMap::new();
        for n in needs {
            by_resource.entry(&n.resource).or_default().push(n);
        }
        // One simulation per resource, a few at a time: IAM answers each in a fraction
        // of a second, and a runbook names a dozen resources or more.
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
                    .map(|n: &Need| {
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
}
