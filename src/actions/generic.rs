//! The generic actions: an operator's approval and a fixed wait.

use serde_json::json;

use super::support::short;
use super::{ActionError, Executed, StepContext, fields as f};
use crate::runbook::model::Fields;

/// `approval`: the engine asks the operator (prompt, `--approve`, `--yes`) before it
/// calls this, so reaching it means the step was approved.
pub fn approval(fields: &Fields) -> Result<Executed, ActionError> {
    let summary = match f::opt_str(fields, "message")? {
        Some(m) => format!("approved: {m}"),
        None => "approved".to_string(),
    };
    Ok(Executed {
        summary,
        output: json!({}),
    })
}

/// `wait`: sleeps its duration on the run's clock (virtual in a `--sim-speed max` run).
pub async fn wait(ctx: &StepContext<'_>, fields: &Fields) -> Result<Executed, ActionError> {
    let d = f::duration(fields, "duration")?;
    ctx.clock.sleep(d).await;
    Ok(Executed {
        summary: format!("waited {}", short(d)),
        output: json!({}),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::Harness;
    use super::super::{execute, preflight, verify};

    #[tokio::test(start_paused = true)]
    async fn approval_succeeds_and_wait_sleeps_on_the_run_clock() {
        let h = Harness::prod();
        let done = execute(&h.ctx("approve"), None).await.unwrap();
        assert_eq!(done.summary, "approved: Promote us-west-2");
        let before = h.clock.elapsed();
        let done = execute(&h.ctx("soak"), None).await.unwrap();
        assert_eq!(done.summary, "waited 1m 30s");
        assert!(h.clock.elapsed() - before >= Duration::from_secs(90));
        assert!(verify(&h.ctx("soak"), &done).await.unwrap().passed);
        assert!(preflight(&h.ctx("soak")).await.unwrap().is_empty());
        assert!(h.calls().is_empty());
    }
}
