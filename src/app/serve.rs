//! `drpilot serve`: a read-only live status page of the runs in a state store, for the
//! people on the incident bridge.
//!
//! Pages: `/` lists the runs, `/runs/RUN_ID` shows one as it happens (steps with their
//! state, attempts and last gate value, the RTO clock against the objective, pending
//! approvals and the command that gives them, region status); both update themselves
//! by polling the JSON the same server gives: `/api/runs`, `/api/runs/RUN_ID` (the run
//! report `drpilot report --format json` prints, plus what is live) and
//! `/api/runs/RUN_ID/events` (the journal's events, one JSON object per line).
//!
//! Nothing can be done from it: only `GET` is answered, and the journal is only read.
//! It listens on loopback unless told otherwise, serves no external asset (the page's
//! script and style are its own, under a Content-Security-Policy that allows nothing
//! else), and writes what it renders with `textContent`, never as markup. Every read of
//! the store runs on a blocking thread: an S3 store's calls block (`journal::s3`).

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::AppError;
use super::store::state_store;
use crate::engine::events::{EventKind, RunId};
use crate::exit;
use crate::journal::{StateStore, is_run_id};
use crate::report::run_report::{RunReport, RunbookCopy, parse_runbook_copy};

const INDEX: &str = include_str!("serve/index.html");
const RUN: &str = include_str!("serve/run.html");
const SCRIPT: &str = include_str!("serve/app.js");
const STYLE: &str = include_str!("serve/app.css");

/// The page's own script and style, and nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `drpilot serve`.
#[derive(Debug, Clone)]
pub struct ServeRequest {
    /// `--state`.
    pub state: Vec<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--listen`.
    pub listen: String,
}

/// Serves until interrupted (Ctrl-C or SIGTERM); the exit code.
pub fn serve(req: &ServeRequest) -> Result<u8, AppError> {
    let addr: SocketAddr = req.listen.parse().map_err(|_| {
        AppError::usage(format!(
            "--listen {:?}: expected ADDRESS:PORT, e.g. 127.0.0.1:8080",
            req.listen
        ))
    })?;
    let state = state_store(
        &req.state,
        None,
        req.profile.as_deref(),
        req.endpoint_url.as_deref(),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AppError::usage(format!("failed to start the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| AppError::usage(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr().unwrap_or(addr);
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: listening on {bound}, not loopback: anyone who reaches it sees the runs \
                 (nothing can be changed from the page)"
            );
        }
        eprintln!(
            "serving the runs in {} at http://{bound}/ (read-only; Ctrl-C stops)",
            state.describe()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| AppError::usage(format!("cannot watch for SIGTERM: {e}")))?;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |r| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(answer(&state, &r).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
        }
        eprintln!("stopped serving");
        Ok(exit::SUCCESS)
    })
}

fn respond(status: StatusCode, kind: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let set = |h: &mut hyper::HeaderMap, k: &'static str, v: &str| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    set(h, "content-type", kind);
    set(h, "cache-control", "no-store");
    set(h, "x-content-type-options", "nosniff");
    set(h, "content-security-policy", CSP);
    set(h, "referrer-policy", "no-referrer");
    r
}

fn json_response(v: &Value) -> Response<Full<Bytes>> {
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn problem(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(&json!({ "error": message })).unwrap_or_default(),
    )
}

/// The answer to one request.
async fn answer<B>(state: &StateStore, r: &Request<B>) -> Response<Full<Bytes>> {
    if r.method() != Method::GET {
        let mut resp = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: only GET is answered",
        );
        resp.headers_mut()
            .insert("allow", hyper::header::HeaderValue::from_static("GET"));
        return resp;
    }
    let path = r.uri().path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => respond(StatusCode::OK, "text/html; charset=utf-8", INDEX),
        ["runs", id] if is_run_id(id) => respond(StatusCode::OK, "text/html; charset=utf-8", RUN),
        ["assets", "app.js"] => respond(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT),
        ["assets", "app.css"] => respond(StatusCode::OK, "text/css; charset=utf-8", STYLE),
        ["api", "runs"] => {
            let state = state.clone();
            match tokio::task::spawn_blocking(move || runs(&state)).await {
                Ok(Ok(v)) => json_response(&v),
                Ok(Err(why)) => problem(StatusCode::SERVICE_UNAVAILABLE, &why),
                Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"),
            }
        }
        ["api", "runs", id] => {
            let state = state.clone();
            let id = id.to_string();
            if !is_run_id(&id) {
                return problem(StatusCode::NOT_FOUND, "not a run id");
            }
            match tokio::task::spawn_blocking(move || run(&state, &RunId(id))).await {
                Ok(Ok(v)) => json_response(&v),
                Ok(Err((status, why))) => problem(status, &why),
                Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"),
            }
        }
        ["api", "runs", id, "events"] => {
            let state = state.clone();
            let id = id.to_string();
            if !is_run_id(&id) {
                return problem(StatusCode::NOT_FOUND, "not a run id");
            }
            match tokio::task::spawn_blocking(move || state.replay(&RunId(id))).await {
                Ok(Ok(replay)) => {
                    let mut body = String::new();
                    for e in &replay.events {
                        body.push_str(&serde_json::to_string(e).unwrap_or_default());
                        body.push('\n');
                    }
                    respond(StatusCode::OK, "application/x-ndjson", body)
                }
                Ok(Err(e)) => problem(StatusCode::NOT_FOUND, &e.to_string()),
                Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "the read failed"),
            }
        }
        _ => problem(StatusCode::NOT_FOUND, "no such page"),
    }
}

/// Whether a live process holds `run`'s lock.
fn live(state: &StateStore, runbook: &str, run: &RunId) -> Option<Value> {
    state
        .holder(runbook)
        .ok()
        .flatten()
        .filter(|(h, stale)| &h.run_id == run && !stale)
        .map(|(h, _)| json!({ "pid": h.pid, "host": h.host, "since": h.since }))
}

/// `/api/runs`: every run, newest first.
fn runs(state: &StateStore) -> Result<Value, String> {
    let all = state.runs().map_err(|e| e.to_string())?;
    let list: Vec<Value> = all
        .iter()
        .map(|replay| {
            let h = &replay.header;
            let holder = live(state, &h.runbook, &h.run_id);
            let status = match (&holder, replay.outcome()) {
                (Some(_), _) => "running".to_string(),
                (None, Some(o)) => serde_json::to_value(o)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                (None, None) => "interrupted".to_string(),
            };
            json!({
                "run_id": h.run_id,
                "runbook": h.runbook,
                "created_at": h.created_at,
                "sim": h.sim.is_some(),
                "status": status,
                "live": holder.is_some(),
                "events": replay.events.len(),
            })
        })
        .collect();
    Ok(json!({ "store": state.describe(), "runs": list }))
}

/// `/api/runs/RUN_ID`: the run report, what is live, and the approvals it waits for.
fn run(state: &StateStore, id: &RunId) -> Result<Value, (StatusCode, String)> {
    let replay = state
        .replay(id)
        .map_err(|e| (StatusCode::NOT_FOUND, e.to_string()))?;
    let text = state.runbook_copy(id).unwrap_or_default();
    let parsed = parse_runbook_copy(&replay.header, &text);
    let copy = match &parsed {
        Ok(rb) => RunbookCopy::Parsed(rb),
        Err(why) => RunbookCopy::Unusable(why),
    };
    let report = RunReport::build(&replay.header, &replay.events, copy);
    let holder = live(state, &replay.header.runbook, id);
    Ok(json!({
        "live": holder,
        "pending_approvals": pending_approvals(&replay.events),
        "events": replay.events.len(),
        "report": report,
    }))
}

/// The approvals asked for and not yet given, refused or ended, with how to give them.
fn pending_approvals(events: &[crate::engine::Event]) -> Vec<Value> {
    let mut pending: Vec<(crate::runbook::StepId, Value)> = Vec::new();
    for e in events {
        match &e.kind {
            EventKind::ApprovalNeeded {
                step,
                message,
                approvers,
                at_risk,
                approve_with,
            } => {
                pending.retain(|(s, _)| s != step);
                pending.push((
                    step.clone(),
                    json!({
                        "step": step,
                        "message": message,
                        "approvers": approvers,
                        "at_risk": at_risk.as_ref().map(|r| &r.summary),
                        "approve_with": approve_with,
                        "since": e.at,
                    }),
                ));
            }
            EventKind::Approved { step, .. }
            | EventKind::ApprovalDenied { step, .. }
            | EventKind::StepFailed { step, .. }
            | EventKind::StepSucceeded { step, .. }
            | EventKind::StepSkipped { step, .. } => pending.retain(|(s, _)| s != step),
            // A process that ended stops waiting; its resumption asks again.
            EventKind::RunFinished { .. } => pending.clear(),
            _ => {}
        }
    }
    pending.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;
    use crate::runbook::StepId;

    fn event(kind: EventKind) -> Event {
        Event {
            run_id: RunId("r".into()),
            at: jiff::Timestamp::from_second(1).unwrap(),
            kind,
        }
    }

    fn needed(step: &str) -> Event {
        event(EventKind::ApprovalNeeded {
            step: StepId::new(step.to_string()),
            message: "go?".into(),
            approvers: 2,
            at_risk: None,
            approve_with: Some(format!("drpilot approve r {step}")),
        })
    }

    #[test]
    fn an_approval_is_pending_until_given_refused_or_the_process_ends() {
        let a = StepId::new("a");
        let pending = pending_approvals(&[needed("a"), needed("b")]);
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0]["approve_with"], "drpilot approve r a");
        assert_eq!(pending[0]["approvers"], 2);
        let approved = event(EventKind::Approved {
            step: a.clone(),
            by: "store".into(),
            approvers: Vec::new(),
        });
        let pending = pending_approvals(&[needed("a"), needed("b"), approved]);
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0]["step"], "b");
        let failed = event(EventKind::StepFailed {
            step: StepId::new("b"),
            error: "needs approval".into(),
        });
        assert!(pending_approvals(&[needed("b"), failed]).is_empty());
    }
}
