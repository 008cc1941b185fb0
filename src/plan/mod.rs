//! The plan: a runbook's steps as a DAG, with what an operator needs before running it.
//!
//! Levels group steps that may run in parallel (a step's level is one more than the
//! deepest step it runs after). The critical path is the longest chain by expected
//! duration; its length is the makespan. The predicted RTO is the time during which
//! service is impaired: it ends when the runbook's `[objectives] recovered_when` steps
//! are expected to be done (the last step when it names none: housekeeping after
//! recovery is not downtime), and starts at zero in an unplanned runbook (the outage
//! began before the run) or at the first mutating step in a planned one (readiness
//! checks and catch-up waits before it cost no availability). Approvals count as zero
//! since a person's time is not known in advance. The rollback order is the reverse dependency order of
//! the steps that have a rollback: later steps are compensated first.

// The graph algorithms live with the runbook, whose validation needs them (cycles,
// the recovery path); the plan builds on them.
pub use crate::runbook::graph;
pub mod history;
pub mod render;

use std::time::Duration;

use crate::runbook::Runbook;
use crate::runbook::catalogue::Effect;

/// A checked runbook's execution plan. Indices refer to `runbook.steps`.
#[derive(Debug)]
pub struct Plan<'r> {
    /// The runbook planned.
    pub runbook: &'r Runbook,
    /// Indices of the steps each step runs after.
    pub deps: Vec<Vec<usize>>,
    /// Steps grouped by level, in file order within a level.
    pub levels: Vec<Vec<usize>>,
    /// Level of each step (0-based).
    pub level_of: Vec<usize>,
    /// Earliest start of each step if everything takes its expected time.
    pub earliest_start: Vec<Duration>,
    /// The longest chain by expected duration, first step first.
    pub critical_path: Vec<usize>,
    /// Predicted makespan: the critical path's length.
    pub makespan: Duration,
    /// When the RTO clock starts (zero for unplanned runbooks; the earliest start of the
    /// first mutating step for planned ones).
    pub rto_clock_start: Duration,
    /// When service is expected back: the expected finish of the last `recovered_when`
    /// step, else the makespan.
    pub recovered_at: Duration,
    /// The `recovered_when` steps (indices), empty when the runbook names none.
    pub recovered_when: Vec<usize>,
    /// Predicted time with service impaired: `recovered_at - rto_clock_start`.
    pub predicted_rto: Duration,
    /// Steps with a rollback, in the order they would be rolled back.
    pub rollback_order: Vec<usize>,
    /// What each step mutates, if anything.
    pub effects: Vec<Option<Effect>>,
}

impl<'r> Plan<'r> {
    /// Plans a checked runbook. Validation guarantees ids resolve and there is no cycle.
    pub fn new(runbook: &'r Runbook) -> Self {
        let steps = &runbook.steps;
        let index: std::collections::HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let deps: Vec<Vec<usize>> = steps
            .iter()
            .map(|s| {
                s.after
                    .iter()
                    .filter_map(|a| index.get(a.as_str()).copied())
                    .collect()
            })
            .collect();
        let order = topological_order(&deps);

        let mut level_of = vec![0usize; steps.len()];
        let mut earliest_start = vec![Duration::ZERO; steps.len()];
        let mut finish = vec![Duration::ZERO; steps.len()];
        // The dependency that finishes last, which the critical path runs through.
        let mut critical_dep: Vec<Option<usize>> = vec![None; steps.len()];
        for &i in &order {
            for &d in &deps[i] {
                level_of[i] = level_of[i].max(level_of[d] + 1);
                // Ties go to the dependency listed first.
                if critical_dep[i].is_none() || finish[d] > earliest_start[i] {
                    earliest_start[i] = finish[d];
                    critical_dep[i] = Some(d);
                }
            }
            finish[i] = earliest_start[i] + steps[i].expected;
        }
        let level_count = level_of.iter().max().map_or(0, |m| m + 1);
        let mut levels = vec![Vec::new(); level_count];
        for (i, &l) in level_of.iter().enumerate() {
            levels[l].push(i);
        }

        // The first step (in file order) that finishes last ends the critical path.
        let mut critical_path = Vec::new();
        let mut makespan = Duration::ZERO;
        if let Some(last) =
            (0..steps.len()).max_by(|&a, &b| finish[a].cmp(&finish[b]).then(b.cmp(&a)))
        {
            makespan = finish[last];
            let mut cur = Some(last);
            while let Some(c) = cur {
                critical_path.push(c);
                cur = critical_dep[c];
            }
            critical_path.reverse();
        }

        let mut rollback_order: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| steps[i].rollback.is_some())
            .collect();
        rollback_order.reverse();

        let rto_clock_start = match runbook.runbook.mode {
            crate::runbook::Mode::Unplanned => Duration::ZERO,
            crate::runbook::Mode::Planned => (0..steps.len())
                .filter(|&i| steps[i].starts_rto_clock())
                .map(|i| earliest_start[i])
                .min()
                .unwrap_or(makespan),
        };
        let recovered_when: Vec<usize> = runbook
            .objectives
            .recovered_when
            .iter()
            .filter_map(|id| index.get(id.as_str()).copied())
            .collect();
        let recovered_at = recovered_when
            .iter()
            .map(|&i| finish[i])
            .max()
            .unwrap_or(makespan);
        let effects = steps.iter().map(|s| s.spec.effect(&s.fields)).collect();
        Plan {
            runbook,
            deps,
            levels,
            level_of,
            earliest_start,
            critical_path,
            makespan,
            rto_clock_start,
            recovered_at,
            recovered_when,
            predicted_rto: recovered_at.saturating_sub(rto_clock_start),
            rollback_order,
            effects,
        }
    }

    /// Whether the predicted RTO is within the objective (`None` without an objective).
    pub fn meets_rto(&self) -> Option<bool> {
        self.runbook
            .objectives
            .rto
            .map(|rto| self.predicted_rto <= rto)
    }

    /// Indices of steps that wait for an operator.
    pub fn approvals(&self) -> Vec<usize> {
        (0..self.runbook.steps.len())
            .filter(|&i| self.runbook.steps[i].approval)
            .collect()
    }

    /// The steps that run after any of `steps`, directly or not, in file order.
    pub fn dependents_of(&self, steps: &[crate::runbook::StepId]) -> Vec<crate::runbook::StepId> {
        let all = &self.runbook.steps;
        let mut hit: Vec<bool> = all.iter().map(|s| steps.contains(&s.id)).collect();
        // Levels are in dependency order: one pass reaches every descendant.
        for level in &self.levels {
            for &i in level {
                if self.deps[i].iter().any(|&d| hit[d]) {
                    hit[i] = true;
                }
            }
        }
        all.iter()
            .zip(hit)
            .filter(|(s, h)| *h && !steps.contains(&s.id))
            .map(|(s, _)| s.id.clone())
            .collect()
    }

    /// Whether a step is on the critical path.
    pub fn is_critical(&self, i: usize) -> bool {
        self.critical_path.contains(&i)
    }
}

/// Kahn's algorithm with a min-heap on file index: a deterministic order in which
/// every step comes after its dependencies, and file order wins among the ready.
fn topological_order(deps: &[Vec<usize>]) -> Vec<usize> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut dependents = vec![Vec::new(); deps.len()];
    let mut pending: Vec<usize> = deps.iter().map(Vec::len).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..deps.len())
        .filter(|&i| pending[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &j in &dependents[i] {
            pending[j] -= 1;
            if pending[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topological_order_respects_dependencies_and_file_order() {
        // 0 <- 2, 1 <- 2 <- 3; 4 free.
        let deps = vec![vec![], vec![], vec![0, 1], vec![2], vec![]];
        assert_eq!(topological_order(&deps), vec![0, 1, 2, 3, 4]);
        let deps = vec![vec![1], vec![], vec![]];
        assert_eq!(topological_order(&deps), vec![1, 0, 2]);
    }
}
