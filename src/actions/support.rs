//! What every family shares: where to ask, how to recover from a lost response, and
//! how to write durations in observations.

use std::future::Future;
use std::time::Duration;

use crate::cloud::{CloudError, CloudErrorKind};
use crate::runbook::catalogue::arn_region;
use crate::runbook::model::{FieldValue, Fields};

use super::{ActionError, StepContext};

/// How many times state is re-read after a mutating call's outcome became unknown.
pub const REREADS: usize = 3;
/// Pause between those re-reads (run clock): long enough for an accepted mutation to
/// show in a describe call, short enough not to matter next to the operation itself.
pub const REREAD_PAUSE: Duration = Duration::from_secs(2);
/// The longest pause between re-reads in a long window ([`reread_within`]).
pub const MAX_REREAD_PAUSE: Duration = Duration::from_secs(10);
/// How long a lost answer to an Aurora global database mutation (FailoverGlobalCluster,
/// SwitchoverGlobalCluster, RemoveFromGlobalCluster) is looked for before the step
/// says it was not applied: DescribeGlobalClusters may take seconds to show an
/// accepted operation, and resending a failover is what must never happen. Bounded
/// because a call that really was not applied waits this long before it is resent
/// (AWS refuses a second operation while one runs, which a re-read then recognises).
pub const GLOBAL_REREAD_WINDOW: Duration = Duration::from_secs(30);

/// Whether a failed mutating call may have taken effect anyway: the request may have
/// reached the service and only the response was lost.
pub fn outcome_unknown(e: &CloudError) -> bool {
    matches!(
        e.kind,
        CloudErrorKind::Transient | CloudErrorKind::Unreachable
    )
}

/// What re-reading state after a failed mutation showed.
#[derive(Debug)]
pub enum Reread<T> {
    /// The mutation took effect (the value is what the read saw).
    Applied(T),
    /// Every read succeeded and none shows the mutation.
    NotApplied,
    /// No read succeeded: the outcome stays unknown (the last read error).
    Unknown(ActionError),
}

/// Re-reads state up to [`REREADS`] times, [`REREAD_PAUSE`] apart, until `probe` says
/// the mutation took effect. Never sends anything: the caller decides what to do with
/// the answer, and only a confirmed [`Reread::NotApplied`] justifies trying again.
pub async fn reread<T, F, Fut>(ctx: &StepContext<'_>, probe: F) -> Reread<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ActionError>>,
{
    let pauses = std::iter::repeat_n(REREAD_PAUSE, REREADS - 1);
    reread_paced(ctx, pauses, probe).await
}

/// [`reread`] for `window` of run time: reads at once, then after pauses from
/// [`REREAD_PAUSE`] doubling up to [`MAX_REREAD_PAUSE`], the last read at or after
/// `window`. For mutations whose effect AWS may take many seconds to show (a global
/// database failover): a resend after a too-short look could start a second one.
pub async fn reread_within<T, F, Fut>(
    ctx: &StepContext<'_>,
    window: Duration,
    probe: F,
) -> Reread<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ActionError>>,
{
    let mut pauses = Vec::new();
    let (mut waited, mut pause) = (Duration::ZERO, REREAD_PAUSE);
    while waited < window {
        pauses.push(pause);
        waited += pause;
        pause = (pause * 2).min(MAX_REREAD_PAUSE);
    }
    reread_paced(ctx, pauses, probe).await
}

/// Reads at once and after each pause, until `probe` sees the mutation.
async fn reread_paced<T, F, Fut>(
    ctx: &StepContext<'_>,
    pauses: impl IntoIterator<Item = Duration>,
    mut probe: F,
) -> Reread<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, ActionError>>,
{
    let mut read_ok = false;
    let mut last_err = None;
    let mut pauses = pauses.into_iter();
    loop {
        match probe().await {
            Ok(Some(seen)) => return Reread::Applied(seen),
            Ok(None) => read_ok = true,
            Err(e) => last_err = Some(e),
        }
        match pauses.next() {
            Some(p) => ctx.clock.sleep(p).await,
            None => break,
        }
    }
    match (read_ok, last_err) {
        (true, _) => Reread::NotApplied,
        (false, Some(e)) => Reread::Unknown(e),
        (false, None) => Reread::NotApplied,
    }
}

/// The error to report when a mutation's outcome could not be established: retryable,
/// because the next attempt reads state before it sends anything.
pub fn unknown_outcome(call: &str, sent: &CloudError, read: &ActionError) -> ActionError {
    ActionError {
        kind: super::ActionErrorKind::Retryable,
        message: format!(
            "{call} outcome unknown ({sent}); state could not be re-read ({read}); \
             the next attempt reads state before sending anything"
        ),
        cloud: Some(Box::new(sent.clone())),
    }
}

/// Whether `s` has the shape of an AWS region name (`us-west-2`, `us-gov-east-1`).
pub fn looks_like_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((last, rest)) = parts.split_last() else {
        return false;
    };
    rest.len() >= 2
        && !last.is_empty()
        && last.chars().all(|c| c.is_ascii_digit())
        && rest
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
}

fn regions_in(fields: &Fields, out: &mut Vec<String>) {
    for (key, value) in fields {
        // An ARC cluster's endpoints are in regions of AWS's choosing, not where the
        // stack's resources live: asking there would only add failed reads.
        if key == "cluster_endpoints" {
            continue;
        }
        match value {
            FieldValue::Str(s) => {
                if looks_like_region(s) {
                    out.push(s.clone());
                } else if s.starts_with("arn:")
                    && let Some(r) = arn_region(s)
                {
                    out.push(r.to_string());
                }
            }
            FieldValue::Tables(tables) => tables.iter().for_each(|t| regions_in(t, out)),
            _ => {}
        }
    }
}

/// The regions to send a regional read to, best first: `preferred` (the regions the
/// step itself names, usually the healthy side), then every region the runbook
/// mentions. A global resource (a global cluster or datastore) can be described from
/// any of its members' regions, so when one region is down the next one answers.
pub fn regions_to_ask(ctx: &StepContext<'_>, preferred: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = preferred.iter().map(|s| s.to_string()).collect();
    regions_in(&ctx.step.fields, &mut all);
    all.extend(
        ctx.runbook
            .params
            .values()
            .filter(|v| looks_like_region(v))
            .cloned(),
    );
    for step in &ctx.runbook.steps {
        regions_in(&step.fields, &mut all);
        if let Some(g) = &step.gate {
            regions_in(&g.fields, &mut all);
        }
        if let Some(r) = &step.rollback {
            regions_in(&r.fields, &mut all);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    all.retain(|r| seen.insert(r.clone()));
    all
}

/// Runs a regional read against each region of `regions` in turn until one answers.
/// A region that is down, throttling or does not know the resource is skipped; when
/// none answers, the most telling error is returned (a definite answer such as "not
/// found" over a transport failure).
pub async fn first_answer<T, F, Fut>(
    regions: &[String],
    what: &str,
    mut read: F,
) -> Result<T, ActionError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut first: Option<CloudError> = None;
    let mut definite: Option<CloudError> = None;
    for region in regions {
        match read(region.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if !e.is_retryable() && definite.is_none() {
                    definite = Some(e.clone());
                }
                if first.is_none() {
                    first = Some(e);
                }
            }
        }
    }
    match definite.or(first) {
        Some(e) => Err(e.into()),
        None => Err(ActionError::permanent(format!(
            "no region to ask about {what}: name one in the step or in [params]"
        ))),
    }
}

/// A duration the way an on-call engineer reads it: "120ms", "4.2s", "30s", "2m 5s".
/// Tenths round up, so a value shown next to a limit is never smaller than it is.
pub fn short(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        let tenths = d.as_millis().div_ceil(100);
        if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        }
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

/// The last segment of an ARN (`arn:...:cluster:acme-prod-usw2` -> `acme-prod-usw2`),
/// which is how people name a cluster.
pub fn arn_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Replaces the value of the environment variable `password_env` in `text`, in case a
/// driver echoes a connection string: no secret may reach an observation or error.
pub fn redact_env(text: &str, password_env: Option<&str>) -> String {
    match password_env.and_then(|k| std::env::var(k).ok()) {
        Some(secret) if !secret.is_empty() => text.replace(&secret, "****"),
        _ => text.to_string(),
    }
}

/// Blanks the credential of `url` (see [`url_credential`]) in `text`. Validation keeps
/// such URLs out of runbooks; this is the second line, for a message that echoes a URL
/// which reached a probe some other way.
///
/// [`url_credential`]: crate::runbook::catalogue::url_credential
pub fn redact_url(text: &str, url: &str) -> String {
    match crate::runbook::catalogue::url_credential(url) {
        Some(secret) => text.replace(secret, "***"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn a_long_reread_window_finds_what_a_short_one_misses() {
        let h = super::super::testing::Harness::prod();
        let ctx = h.ctx("failover");
        // The mutation shows only after 10 s of run time.
        let visible_after = |ctx: &StepContext<'_>| {
            let t0 = ctx.clock.elapsed();
            let clock = ctx.clock.clone();
            move || {
                let seen = clock.elapsed().saturating_sub(t0) >= Duration::from_secs(10);
                async move { Ok::<_, ActionError>(seen.then_some(())) }
            }
        };
        assert!(matches!(
            reread(&ctx, visible_after(&ctx)).await,
            Reread::NotApplied
        ));
        assert!(matches!(
            reread_within(&ctx, GLOBAL_REREAD_WINDOW, visible_after(&ctx)).await,
            Reread::Applied(())
        ));
        // The pauses grow to at most MAX_REREAD_PAUSE and the window is covered.
        let t0 = ctx.clock.elapsed();
        let never = || async { Ok::<Option<()>, ActionError>(None) };
        assert!(matches!(
            reread_within(&ctx, GLOBAL_REREAD_WINDOW, never).await,
            Reread::NotApplied
        ));
        let took = ctx.clock.elapsed() - t0;
        assert!(took >= GLOBAL_REREAD_WINDOW && took < GLOBAL_REREAD_WINDOW + MAX_REREAD_PAUSE);
    }

    use super::*;

    #[test]
    fn a_urls_password_is_blanked_wherever_it_is_echoed() {
        let url = "https://probe:pa55word@api.example/healthz";
        assert_eq!(
            redact_url(&format!("{url}: timed out (pa55word)"), url),
            "https://probe:***@api.example/healthz: timed out (***)"
        );
        let plain = "https://api.example/healthz";
        assert_eq!(redact_url(plain, plain), plain);
    }

    #[test]
    fn regions_are_recognised() {
        for r in ["us-east-1", "us-west-2", "eu-central-1", "us-gov-east-1"] {
            assert!(looks_like_region(r), "{r}");
        }
        for r in [
            "",
            "us",
            "us-east",
            "arn:aws",
            "US-EAST-1",
            "acme-prod",
            "a-b-",
        ] {
            assert!(!looks_like_region(r), "{r}");
        }
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(short(Duration::from_millis(4200)), "4.2s");
        assert_eq!(short(Duration::from_secs(30)), "30s");
        assert_eq!(short(Duration::from_millis(0)), "0ms");
        assert_eq!(short(Duration::from_millis(120)), "120ms");
        assert_eq!(short(Duration::from_millis(30_040)), "30.1s");
        assert_eq!(short(Duration::from_secs(125)), "2m 5s");
    }

    #[tokio::test(start_paused = true)]
    async fn arc_endpoint_regions_are_not_where_the_stack_lives() {
        let text = r#"
[runbook]
name = "r"
mode = "unplanned"
[[step]]
id = "writer"
action = "aurora.writer_in_region"
global_cluster = "acme-prod"
region = "us-west-2"
[[step]]
id = "cell"
action = "route53.routing_control_state"
cluster_endpoints = [{ url = "https://e.route53-recovery-cluster.ap-southeast-2.amazonaws.com/v1", region = "ap-southeast-2" }]
routing_control_arn = "arn:aws:route53-recovery-control::111122223333:controlpanel/5f0c3a9e7b2d4c81a6e9f3b0d7c2a4e8/routingcontrol/4b7d1e9a2c6f8e03"
state = "On"
"#;
        let h = super::super::testing::Harness::new(text, "");
        assert_eq!(regions_to_ask(&h.ctx("writer"), &[]), ["us-west-2"]);
    }

    #[test]
    fn arn_names() {
        assert_eq!(
            arn_name("arn:aws:rds:us-west-2:1:cluster:acme-prod-usw2"),
            "acme-prod-usw2"
        );
    }
}
