//! Heartbeat writers: what a drill and `drpilot heartbeat` run beside a failover, one
//! per target the runbooks' heartbeat steps measure (`crate::heartbeat` holds the pure
//! numbering and measurement; this writes through the data plane).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::cloud::{CloudError, DataPlane, HeartbeatTarget};
use crate::heartbeat::{Heartbeat, KEEP, Writer};

/// Writes `writer`'s next heartbeat to every stream of `target` (the whole store, or
/// each shard of a Valkey cluster, as its topology is now), all at once; each stream
/// advances only when its primary acknowledged it. The heartbeats written, in the
/// order of the streams; the first failure (naming its shard) when any failed, the
/// others counted all the same.
pub async fn beat(
    writer: &mut Writer,
    data: &dyn DataPlane,
    target: &HeartbeatTarget,
    clock: &Clock,
) -> Result<Vec<Heartbeat>, CloudError> {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesUnordered;
    let shards = data.heartbeat_shards(target).await?;
    let at_ms = clock.now().as_millisecond();
    // Each write counts as soon as it is acknowledged: a shard whose write hangs (and is
    // abandoned by the caller's deadline) holds none of the others back.
    let mut writes: FuturesUnordered<_> = shards
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let beat = writer.next_in(shard.id(), at_ms);
            async move {
                let written = data.heartbeat_write(target, shard, &beat, KEEP).await;
                (i, shard.id(), beat, written)
            }
        })
        .collect();
    let mut done: Vec<Option<Heartbeat>> = vec![None; shards.len()];
    let mut failed = None;
    while let Some((i, stream, beat, written)) = writes.next().await {
        match written {
            Ok(()) => {
                writer.acknowledged_by_primary_in(stream, &beat);
                done[i] = Some(beat);
            }
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(done.into_iter().flatten().collect()),
    }
}

/// What one write of a running writer did, for whoever shows it.
#[derive(Clone, Debug)]
pub enum Beat {
    /// Acknowledged by the primary (of every shard, for a cluster: one each).
    Written(Vec<Heartbeat>),
    /// Refused or not answered (in one shard at least): not counted; the next one
    /// retries the same number there.
    Failed(CloudError),
}

/// Writes heartbeats every `interval` (on `clock`) until the task is dropped or
/// aborted, telling `on` about each write.
pub async fn run(
    data: Arc<dyn DataPlane>,
    target: HeartbeatTarget,
    interval: Duration,
    clock: Clock,
    mut writer: Writer,
    on: impl Fn(&Beat) + Send,
) {
    loop {
        let started = clock.elapsed();
        // A write that hangs must not stop the heartbeats: it is abandoned after one
        // interval (it may still land; the number is retried, and the store keeps the
        // first copy).
        let wait = interval.max(Duration::from_millis(200));
        let outcome = match tokio::time::timeout(
            clock.to_real(wait),
            beat(&mut writer, data.as_ref(), &target, &clock),
        )
        .await
        {
            Ok(Ok(b)) => Beat::Written(b),
            Ok(Err(e)) => Beat::Failed(e),
            Err(_) => Beat::Failed(CloudError::new(
                crate::cloud::CloudErrorKind::Transient,
                "Heartbeat",
                None,
                format!(
                    "{}:{}: no answer within {}",
                    target.endpoint.host,
                    target.endpoint.port,
                    humantime::format_duration(wait)
                ),
            )),
        };
        on(&outcome);
        let spent = clock.elapsed().saturating_sub(started);
        clock.sleep(interval.saturating_sub(spent)).await;
    }
}

/// One target a runbook's heartbeat steps measure, with the steps measuring it and
/// the shortest interval any of them asks for.
#[derive(Clone, Debug)]
pub struct Declared {
    /// Steps that measure it (`postgres.heartbeat` / `valkey.heartbeat`).
    pub steps: Vec<crate::runbook::model::StepId>,
    /// Where the heartbeats go.
    pub target: HeartbeatTarget,
    /// How often to write.
    pub interval: Duration,
}

/// The heartbeats `runbooks` declare (their heartbeat steps), one per target.
pub fn declared(
    runbooks: &[&crate::runbook::Runbook],
) -> Result<Vec<Declared>, super::ActionError> {
    let mut out: Vec<Declared> = Vec::new();
    for rb in runbooks {
        for step in &rb.steps {
            if !step.spec.kind.is_heartbeat() {
                continue;
            }
            let (target, interval) =
                super::dataplane::heartbeat_target(step.spec.kind, &step.fields)?;
            match out.iter_mut().find(|d| d.target == target) {
                Some(d) => {
                    d.interval = d.interval.min(interval);
                    if !d.steps.contains(&step.id) {
                        d.steps.push(step.id.clone());
                    }
                }
                None => out.push(Declared {
                    steps: vec![step.id.clone()],
                    target,
                    interval,
                }),
            }
        }
    }
    Ok(out)
}

/// Running writers; they stop when this is dropped.
#[derive(Debug, Default)]
pub struct Writers(Vec<tokio::task::JoinHandle<()>>);

impl Writers {
    /// Starts one writer per declared target, on `clock`, telling `on` (with the
    /// target's index in `declared`) about every write.
    pub fn start(
        data: Arc<dyn DataPlane>,
        declared: &[Declared],
        clock: &Clock,
        on: impl Fn(usize, &Beat) + Send + Sync + Clone + 'static,
    ) -> Self {
        Self(
            declared
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let on = on.clone();
                    tokio::spawn(run(
                        data.clone(),
                        d.target.clone(),
                        d.interval,
                        clock.clone(),
                        Writer::new(),
                        move |b| on(i, b),
                    ))
                })
                .collect(),
        )
    }

    /// Whether any writer runs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}
