//! Route 53 ARC in the simulated world: one cluster's routing controls, its regional
//! endpoints, and an assertion safety rule.
//!
//! A call goes to the endpoint's region and fails as `Unreachable` while that region
//! is, like any regional call (the world's region outages are the endpoints' outages);
//! the other endpoints keep answering, which is the point of ARC. Calls are logged with
//! the endpoint's region. `UpdateRoutingControlStates` validates the whole batch and
//! applies all of it or nothing: an unknown control is `ResourceNotFoundException`, a
//! control named twice or an empty batch `ValidationException`. The cluster's safety
//! rule, when the world has one (the runbook sets routing controls), is the usual
//! assertion rule "at least one routing control On": an update whose result leaves
//! every control of the world Off is refused with `ConflictException` (`InvalidState`)
//! unless `SafetyRulesToOverride` names the rule. The new states answer at once; the
//! RECOVERY_CONTROL health checks bound to them take them after
//! `routing_control_propagation`, and DNS answers follow those health checks.

use async_trait::async_trait;
use serde_json::json;

use super::state::State;
use super::world::{Route, SimWorld, fail};
use crate::cloud::{
    CloudErrorKind as K, CloudResult, ClusterEndpoint, RoutingControlState, RoutingControlUpdate,
    RoutingControls,
};

const SERVICE: &str = "route53-recovery-cluster";
const NOT_FOUND: &str = "ResourceNotFoundException";
const VALIDATION: &str = "ValidationException";
const CONFLICT: &str = "ConflictException";

impl State {
    fn update_routing_controls(
        &mut self,
        region: &str,
        updates: &[RoutingControlUpdate],
        overrides: &[String],
        now: std::time::Duration,
    ) -> CloudResult<()> {
        const OP: &str = "UpdateRoutingControlStates";
        let err = |kind: K, code: &str, msg: String| fail(kind, OP, Some(region), code, msg);
        if updates.is_empty() {
            return Err(err(
                K::InvalidRequest,
                VALIDATION,
                "UpdateRoutingControlStateEntries must not be empty".into(),
            ));
        }
        let mut after = self.routing_controls.clone();
        for (i, u) in updates.iter().enumerate() {
            if updates[..i].iter().any(|v| v.arn == u.arn) {
                return Err(err(
                    K::InvalidRequest,
                    VALIDATION,
                    format!("routing control {} appears twice in one request", u.arn),
                ));
            }
            let Some(rc) = after.get_mut(&u.arn) else {
                return Err(err(
                    K::NotFound,
                    NOT_FOUND,
                    format!("routing control {} not found", u.arn),
                ));
            };
            rc.state = u.state;
        }
        if let Some(rule) = &self.arc_safety_rule {
            let all_off = after
                .values()
                .all(|rc| rc.state == RoutingControlState::Off);
            if all_off && !overrides.contains(rule) {
                return Err(err(
                    K::InvalidState,
                    CONFLICT,
                    format!(
                        "the update would violate safety rule {rule}: at least one routing \
                         control must be On"
                    ),
                ));
            }
        }
        for u in updates {
            let delay = self.duration(
                &format!("arc:propagation:{}", u.arn),
                self.timing.routing_control_propagation,
            );
            if let (Some(rc), Some(new)) =
                (self.routing_controls.get_mut(&u.arn), after.get(&u.arn))
                && rc.state != new.state
            {
                rc.state = new.state;
                rc.effective_at = now.saturating_add(delay);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RoutingControls for SimWorld {
    async fn routing_control_state(
        &self,
        endpoint: &ClusterEndpoint,
        arn: &str,
    ) -> CloudResult<RoutingControlState> {
        const OP: &str = "GetRoutingControlState";
        let region = endpoint.region.as_str();
        self.call(
            SERVICE,
            OP,
            Route::Region(region),
            false,
            json!({}),
            |s, _| {
                s.routing_controls
                    .get(arn)
                    .map(|rc| rc.state)
                    .ok_or_else(|| {
                        fail(
                            K::NotFound,
                            OP,
                            Some(region),
                            NOT_FOUND,
                            format!("routing control {arn} not found"),
                        )
                    })
            },
        )
        .await
    }

    async fn update_routing_control_states(
        &self,
        endpoint: &ClusterEndpoint,
        updates: &[RoutingControlUpdate],
        override_safety_rules: &[String],
    ) -> CloudResult<()> {
        let region = endpoint.region.as_str();
        let args = json!({
            "endpoint": endpoint.url,
            "updates": updates,
            "override_safety_rules": override_safety_rules,
        });
        self.call(
            SERVICE,
            "UpdateRoutingControlStates",
            Route::Region(region),
            true,
            args,
            |s, now| s.update_routing_controls(region, updates, override_safety_rules, now),
        )
        .await
    }
}
