//! `drpilot readiness FILE...`: flags onto [`crate::app::readiness`], and the output
//! (stdout, or `--output-file` written atomically each round).

use super::args::{ReadinessArgs, ReadinessFormat};
use super::exit;
use crate::app::readiness::{self as app, CloudWatchTarget, ReadinessRequest, Round, write_atomic};

/// The shortest `--every`: a round costs API calls in every region the runbooks name.
const MIN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `drpilot readiness FILE...`.
pub fn readiness(args: ReadinessArgs) -> u8 {
    let req = ReadinessRequest {
        checks: args
            .files
            .iter()
            .map(|f| args.check.request(f.clone()))
            .collect(),
        cloudwatch: args.cloudwatch.clone().map(|namespace| CloudWatchTarget {
            namespace,
            region: args.cloudwatch_region.clone(),
        }),
    };
    if let Err(e) = app::validate(&req) {
        return e.report();
    }
    if let Some(every) = args.every.filter(|d| *d < MIN_EVERY) {
        eprintln!(
            "error: --every {}: at least {} between rounds",
            humantime::format_duration(every),
            humantime::format_duration(MIN_EVERY)
        );
        return exit::USAGE;
    }
    if let Some(path) = &args.output_file {
        if path.is_dir() {
            eprintln!(
                "error: --output-file {} is a directory; name a file in it (e.g. drpilot.prom)",
                path.display()
            );
            return exit::USAGE;
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            eprintln!(
                "error: --output-file {}: the directory {} does not exist",
                path.display(),
                dir.display()
            );
            return exit::USAGE;
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return exit::USAGE;
        }
    };
    let format = args.format;
    let output_file = args.output_file.clone();
    let emit = |round: &Round| -> u8 {
        for r in &round.runbooks {
            if let Some(Err(m)) = &r.published {
                eprintln!("warning: {}: {m}", r.runbook);
            }
        }
        let text = render(round, format);
        match &output_file {
            Some(path) => match write_atomic(path, &text) {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("error: failed to write {}: {e}", path.display());
                    exit::USAGE
                }
            },
            None => super::print_stdout(&text),
        }
    };
    match args.every {
        None => {
            let round = rt.block_on(app::round(&req));
            let code = emit(&round);
            if code != exit::SUCCESS {
                code
            } else if round.ready() {
                exit::SUCCESS
            } else {
                exit::PREFLIGHT_FAILED
            }
        }
        Some(every) => {
            rt.block_on(async {
                let shutdown = shutdown_signal();
                app::watch(
                    &req,
                    every,
                    |round| {
                        // A failed write is said and the loop goes on: the next round
                        // may find the disk writable again.
                        let _ = emit(round);
                    },
                    shutdown,
                )
                .await
            });
            eprintln!("readiness: stopped");
            exit::SUCCESS
        }
    }
}

/// The text of a round in `format`.
pub fn render(round: &Round, format: ReadinessFormat) -> String {
    match format {
        ReadinessFormat::Human => app::human(round),
        ReadinessFormat::Json => format!("{}\n", app::json(round)),
        ReadinessFormat::Prometheus => app::exposition(round).render(),
    }
}

/// SIGINT or SIGTERM, whichever comes first. The handlers are installed here, before
/// the first round, so a signal during it stops the loop instead of killing the
/// process mid-write.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let int = async {
            match int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = term => {}
            () = int => {}
        }
    }
}
