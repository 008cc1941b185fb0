//! Route 53 ARC: the routing controls, their RECOVERY_CONTROL health checks and the
//! cluster's safety rule.

use std::time::Duration;

use super::{Builder, Cells, uuid_like};
use crate::cloud::RoutingControlState;
use crate::sim::names::{encode, fnv1a};
use crate::sim::state::{SimHealthCheck, SimRoutingControl};

impl Builder<'_> {
    /// Creates the routing controls, their RECOVERY_CONTROL health checks and the
    /// cluster's safety rule (rules in the module docs); returns the cells' health checks.
    pub(super) fn routing_controls(&mut self) -> Cells {
        let (from, to) = (self.from(), self.to());
        let mut cells = Cells::default();
        for c in self.scan.controls.clone() {
            let state = match (c.set, c.checked) {
                (Some(RoutingControlState::On), _) => RoutingControlState::Off,
                (Some(RoutingControlState::Off), _) => RoutingControlState::On,
                (None, Some(checked)) => checked,
                (None, None) => RoutingControlState::On,
            };
            let hc = uuid_like(&c.arn);
            let region = match c.set {
                Some(RoutingControlState::On) => {
                    cells.to.get_or_insert_with(|| hc.clone());
                    to.clone()
                }
                Some(RoutingControlState::Off) => {
                    cells.from.get_or_insert_with(|| hc.clone());
                    from.clone()
                }
                None => from.clone(),
            };
            self.state.routing_controls.insert(
                c.arn.clone(),
                SimRoutingControl {
                    arn: c.arn.clone(),
                    state,
                    effective: state,
                    effective_at: Duration::ZERO,
                },
            );
            self.state.health_checks.insert(
                hc.clone(),
                SimHealthCheck {
                    id: hc,
                    region,
                    inverted: false,
                    disabled: false,
                    effective_inverted: false,
                    effective_disabled: false,
                    effective_at: Duration::ZERO,
                    routing_control: Some(c.arn.clone()),
                },
            );
        }
        if self.scan.controls.len() >= 2 {
            let rule = self.scan.safety_overrides.first().cloned().or_else(|| {
                let first = &self.scan.controls[0].arn;
                let panel = first
                    .rfind("/routingcontrol/")
                    .map_or(first.as_str(), |i| &first[..i]);
                let id = encode(fnv1a(first), 16, b"0123456789abcdef");
                Some(format!("{panel}/safetyrule/{id}"))
            });
            self.state.arc_safety_rule = rule;
        }
        for (_, region) in self.scan.arc_endpoints.clone() {
            self.state.regions.entry(region).or_default();
        }
        cells
    }
}
