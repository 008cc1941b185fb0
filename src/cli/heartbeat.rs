//! `drpilot heartbeat FILE`: the writer behind a runbook's heartbeat steps.
//!
//! Run it during a failover (a drill starts its own) so the runbook's
//! `postgres.heartbeat` / `valkey.heartbeat` steps can measure the data-loss window.
//! It writes through the same endpoints the steps read, with the same credentials, and
//! prints only what changes: the first acknowledged heartbeat, failures (not counted;
//! the same number is retried), and the recovery after them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::args::HeartbeatArgs;
use super::exit;
use super::run::fail;
use crate::actions::heartbeats::{Beat, Writers, declared};
use crate::app::input::load_runbook;
use crate::clock::Clock;
use crate::cloud::DataPlane;
use crate::cloud::live::LiveDataPlane;

/// What a writer last reported, to print changes only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Seen {
    #[default]
    Nothing,
    Writing,
    Failing(u64),
}

/// Runs the writers until Ctrl-C / SIGTERM or `--for`; exit 0, or 2 on a bad runbook.
pub fn heartbeat(args: HeartbeatArgs) -> u8 {
    let params: BTreeMap<String, String> = args.params.iter().cloned().collect();
    let (loaded, _) = match load_runbook(&args.file, &params) {
        Ok(x) => x,
        Err(e) => return e.report(),
    };
    let rb = loaded.runbook;
    let mut targets = match declared(&[&rb]) {
        Ok(t) => t,
        Err(e) => return fail(exit::USAGE, e.message),
    };
    if !args.step.is_empty() {
        for s in &args.step {
            if !targets
                .iter()
                .any(|t| t.steps.iter().any(|id| id.as_str() == s))
            {
                return fail(
                    exit::USAGE,
                    format!(
                        "--step {s}: no heartbeat step `{s}` in {}",
                        args.file.display()
                    ),
                );
            }
        }
        targets.retain(|t| {
            t.steps
                .iter()
                .any(|id| args.step.iter().any(|s| s == id.as_str()))
        });
    }
    if targets.is_empty() {
        return fail(
            exit::USAGE,
            format!(
                "{} has no postgres.heartbeat or valkey.heartbeat step: nothing to write",
                args.file.display()
            ),
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(exit::USAGE, format!("failed to start the runtime: {e}")),
    };
    let names: Vec<String> = targets
        .iter()
        .map(|t| {
            let steps: Vec<&str> = t.steps.iter().map(|s| s.as_str()).collect();
            format!(
                "{} ({}:{})",
                steps.join(", "),
                t.target.endpoint.host,
                t.target.endpoint.port
            )
        })
        .collect();
    for (n, t) in names.iter().zip(&targets) {
        eprintln!(
            "heartbeat: writing for {n} every {}",
            humantime::format_duration(t.interval)
        );
    }
    eprintln!(
        "heartbeat: {}; Ctrl-C stops",
        match args.duration {
            Some(d) => format!("for {}", humantime::format_duration(d)),
            None => "until stopped".into(),
        }
    );
    let seen = Arc::new(Mutex::new(vec![Seen::Nothing; targets.len()]));
    let report = {
        let seen = seen.clone();
        move |i: usize, beat: &Beat| {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            let before = seen[i];
            let now = jiff::Timestamp::now().strftime("%H:%M:%S");
            let name = &names[i];
            match beat {
                Beat::Written(beats) => {
                    // A cluster numbers each shard on its own: the highest number shown.
                    let seq = beats.iter().map(|b| b.seq).max().unwrap_or(0);
                    let shards = if beats.len() > 1 {
                        format!(" in each of {} shards", beats.len())
                    } else {
                        String::new()
                    };
                    match before {
                        Seen::Nothing => {
                            eprintln!("{now} {name}: heartbeat #{seq} written{shards}")
                        }
                        Seen::Failing(n) => eprintln!(
                            "{now} {name}: writing again after {n} failed attempt{} (#{seq}{shards})",
                            if n == 1 { "" } else { "s" },
                        ),
                        Seen::Writing => {}
                    }
                    seen[i] = Seen::Writing;
                }
                Beat::Failed(e) => {
                    let n = match before {
                        Seen::Failing(n) => n + 1,
                        _ => 1,
                    };
                    if n == 1 {
                        eprintln!(
                            "{now} {name}: write failed, not counted, retrying: {}",
                            e.message
                        );
                    }
                    seen[i] = Seen::Failing(n);
                }
            }
        }
    };
    rt.block_on(async {
        let data: Arc<dyn DataPlane> = Arc::new(LiveDataPlane::new());
        let _writers = Writers::start(data, &targets, &Clock::real(), report);
        let stop = async {
            match args.duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = stop => {}
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
    });
    // Give an in-flight write no time to linger: the runtime's drop cancels it.
    rt.shutdown_timeout(Duration::from_millis(100));
    eprintln!("heartbeat: stopped");
    exit::SUCCESS
}
