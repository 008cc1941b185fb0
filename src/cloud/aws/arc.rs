//! Route 53 ARC: routing controls, read and set at a cluster's regional endpoints.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::{AwsCloud, Guarded};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{
    CloudError, CloudErrorKind, CloudResult, ClusterEndpoint, RoutingControlState,
    RoutingControlUpdate, RoutingControls,
};

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
