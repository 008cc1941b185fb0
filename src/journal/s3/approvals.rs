//! Approval decisions in S3 (see `journal::approvals`): one immutable object per
//! decision under `PREFIX/runs/RUN_ID/approvals/STEP/`, put with `If-None-Match: *` in
//! every bucket that answers, and read by listing every bucket that answers.

use super::{S3State, remote};
use crate::cloud::PutCondition;
use crate::engine::events::RunId;
use crate::journal::approvals::Decision;
use crate::journal::store::JournalError;
use crate::names::S3Location;
use crate::runbook::StepId;

fn approvals_prefix(s: &S3Location, run: &RunId, step: &StepId) -> String {
    s.key(&format!("runs/{}/approvals/{}/", run.0, step.as_str()))
}

impl S3State {
    /// Puts `body` (the encoded `decision`) as `name` in every bucket that answers; an
    /// error only when none took it, or the run is not in any of them.
    pub(crate) fn record_decision(
        &self,
        run: &RunId,
        decision: &Decision,
        name: String,
        body: Vec<u8>,
    ) -> Result<(), JournalError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run = run.clone();
        let step = decision.step.clone();
        self.inner.bridge.call(async move {
            let mut errors = Vec::new();
            let mut written = false;
            let mut known = false;
            for s in &stores {
                // The run must be there: a typo'd run id must not leave a decision
                // nobody will ever read.
                match objects.get_state(&s.bucket, &s.runbook_key(&run)).await {
                    Ok(Some(_)) => known = true,
                    Ok(None) => continue,
                    Err(e) => {
                        errors.push(remote(&s.url_of(&s.runbook_key(&run)), &e));
                        continue;
                    }
                }
                let key = format!("{}{name}", approvals_prefix(s, &run, &step));
                match objects
                    .put_state(&s.bucket, &key, body.clone(), PutCondition::IfAbsent)
                    .await
                {
                    Ok(_) => written = true,
                    Err(e) => errors.push(remote(&s.url_of(&key), &e)),
                }
            }
            if written {
                Ok(())
            } else if !known && errors.is_empty() {
                Err(JournalError::Unsupported(format!(
                    "no run `{run}` in {}",
                    stores
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            } else {
                Err(JournalError::Unsupported(format!(
                    "the decision could not be stored: {}",
                    errors.join("; ")
                )))
            }
        })
    }

    /// Every decision object for `step` of `run` in the buckets that answer, as
    /// `(url, body)`; an error only when no bucket answered.
    pub(crate) fn decisions(
        &self,
        run: &RunId,
        step: &StepId,
    ) -> Result<Vec<(String, Vec<u8>)>, JournalError> {
        let objects = self.inner.objects.clone();
        let stores = self.inner.stores.clone();
        let run = run.clone();
        let step = step.clone();
        self.inner.bridge.call(async move {
            let mut out = Vec::new();
            let mut errors = Vec::new();
            let mut answered = false;
            for s in &stores {
                let prefix = approvals_prefix(s, &run, &step);
                let keys = match objects.list_state(&s.bucket, &prefix).await {
                    Ok(k) => k,
                    Err(e) => {
                        errors.push(remote(&s.url_of(&prefix), &e));
                        continue;
                    }
                };
                answered = true;
                for key in keys.into_iter().filter(|k| k.ends_with(".json")) {
                    match objects.get_state(&s.bucket, &key).await {
                        Ok(Some(o)) => out.push((s.url_of(&key), o.body)),
                        Ok(None) => {}
                        Err(e) => errors.push(remote(&s.url_of(&key), &e)),
                    }
                }
            }
            if answered {
                Ok(out)
            } else {
                Err(JournalError::Unsupported(format!(
                    "no state bucket could be read: {}",
                    errors.join("; ")
                )))
            }
        })
    }

    /// Who this process is to AWS (an ARN), for an approval's record.
    pub(crate) fn caller_identity(&self) -> Result<String, String> {
        let objects = self.inner.objects.clone();
        self.inner
            .bridge
            .call(async move { objects.caller_identity().await.map_err(|e| e.to_string()) })
    }
}
