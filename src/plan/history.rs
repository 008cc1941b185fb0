//! Expected durations from history: what earlier runs of a runbook measured.
//!
//! A runbook's `expected` figures are guesses written once; the journals of the runs
//! since are measurements. For each step, the samples are the times from its first start
//! to its success within one process (a pause and resume in between would count the
//! pause as work, so such samples are left out). The prediction replans the runbook
//! with each step's median (and, separately, its 90th percentile) in place of its
//! expectation, so the critical path may move. Approval steps keep their zero: a
//! person's time is not a property of the runbook. Only the same runbook (by name) and
//! the same step id count; a step without samples keeps its expectation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Plan;
use crate::runbook::{Runbook, StepId};

/// Step durations measured by earlier runs of one runbook.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// How many runs contributed at least one sample.
    pub runs: usize,
    /// How many of those ran against the simulated world.
    pub simulated: usize,
    /// Samples per step.
    pub steps: BTreeMap<StepId, Vec<Duration>>,
}

/// The predicted RTO from history, beside the one from the runbook's expectations.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPrediction {
    /// With every measured step at its median.
    pub median: Duration,
    /// With every measured step at its 90th percentile.
    pub p90: Duration,
    /// How many earlier runs the samples come from.
    pub runs: usize,
    /// How many of them were simulated.
    pub simulated: usize,
}

impl History {
    /// Adds one run's samples (each step's time from its first start to its success
    /// within one process, `engine::events::step_durations`); `simulated`: it ran
    /// against the simulated world. A run without samples does not count.
    pub fn add_run(
        &mut self,
        samples: impl IntoIterator<Item = (StepId, Duration)>,
        simulated: bool,
    ) {
        let mut any = false;
        for (step, d) in samples {
            self.steps.entry(step).or_default().push(d);
            any = true;
        }
        if any {
            self.runs += 1;
            self.simulated += usize::from(simulated);
        }
    }

    /// The `p`-th percentile (nearest rank, 0 < p <= 100) of a step's samples.
    pub fn percentile(&self, step: &StepId, p: u32) -> Option<Duration> {
        let mut v = self.steps.get(step)?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort();
        let rank = (u64::from(p.clamp(1, 100)) * v.len() as u64).div_ceil(100) as usize;
        Some(v[rank.max(1) - 1])
    }

    /// The runbook replanned with history's durations; `None` when no step of it has
    /// samples.
    pub fn predict(&self, rb: &Runbook) -> Option<HistoryPrediction> {
        let measured: BTreeSet<&StepId> = rb
            .steps
            .iter()
            .filter(|s| !s.approval && self.steps.get(&s.id).is_some_and(|v| !v.is_empty()))
            .map(|s| &s.id)
            .collect();
        if measured.is_empty() {
            return None;
        }
        let with = |p: u32| {
            let mut copy = rb.clone();
            for s in &mut copy.steps {
                if measured.contains(&s.id)
                    && let Some(d) = self.percentile(&s.id, p)
                {
                    s.expected = d;
                }
            }
            Plan::new(&copy).predicted_rto
        };
        Some(HistoryPrediction {
            median: with(50),
            p90: with(90),
            runs: self.runs,
            simulated: self.simulated,
        })
    }
}

impl HistoryPrediction {
    /// "3m 50s median / 4m 40s p90 from 6 earlier runs (6 simulated)".
    pub fn describe(&self) -> String {
        let d = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        let simulated = match self.simulated {
            0 => String::new(),
            n if n == self.runs => " (simulated)".to_string(),
            n => format!(" ({n} simulated)"),
        };
        format!(
            "{} median / {} p90 from {} earlier run{}{simulated}",
            d(self.median),
            d(self.p90),
            self.runs,
            if self.runs == 1 { "" } else { "s" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb() -> Runbook {
        crate::runbook::load_str(
            std::path::Path::new("t.toml"),
            r#"
[runbook]
name = "t"
mode = "unplanned"
[objectives]
recovered_when = ["verify"]
[[step]]
id = "change"
action = "wait"
duration = "1m"
[[step]]
id = "ok"
action = "approval"
after = ["change"]
[[step]]
id = "verify"
action = "wait"
duration = "10s"
after = ["ok"]
[[step]]
id = "cleanup"
action = "wait"
duration = "30m"
timeout = "1h"
after = ["verify"]
"#,
        )
        .unwrap()
        .runbook
    }

    #[test]
    fn medians_and_p90s_replan_the_runbook() {
        let mut h = History::default();
        for (i, change) in [100, 120, 140, 160, 180, 200, 220, 240, 260, 600]
            .into_iter()
            .enumerate()
        {
            h.add_run(
                [
                    (StepId::new("change"), Duration::from_secs(change)),
                    // An operator took an hour: an approval's time is never used.
                    (StepId::new("ok"), Duration::from_secs(3600)),
                    (StepId::new("verify"), Duration::from_secs(20)),
                ],
                i % 2 == 0,
            );
        }
        assert_eq!((h.runs, h.simulated), (10, 5));
        assert_eq!(
            h.percentile(&StepId::new("change"), 50),
            Some(Duration::from_secs(180))
        );
        assert_eq!(
            h.percentile(&StepId::new("change"), 90),
            Some(Duration::from_secs(260))
        );
        let p = h.predict(&rb()).unwrap();
        // change + verify (the approval counts zero; the 30m cleanup is after recovery).
        assert_eq!(p.median, Duration::from_secs(180 + 20));
        assert_eq!(p.p90, Duration::from_secs(260 + 20));
        assert_eq!(
            p.describe(),
            "3m 20s median / 4m 40s p90 from 10 earlier runs (5 simulated)"
        );
    }

    #[test]
    fn a_run_without_samples_does_not_count_and_predicts_nothing() {
        let mut h = History::default();
        h.add_run([], true);
        assert_eq!((h.runs, h.simulated), (0, 0));
        assert!(h.predict(&rb()).is_none());
    }
}
