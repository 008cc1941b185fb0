//! Delivery: a thread with a runtime of its own, a bounded queue and a task per
//! receiver (so each gets the run's notifications in order and a dead one delays
//! only itself), a deadline per attempt and a few attempts with backoff. The run's
//! side never waits: [`Notifier::observe`] queues without blocking and
//! [`Notifier::ready`] takes what has been delivered; at the end [`Notifier::finish`]
//! waits for what is pending at most a bounded time, then gives up on it and says so.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::{Context, Notice, compose};
use super::receiver::Receiver;
use crate::cloud::{CloudErrorKind, Sns};
use crate::engine::{Event, EventKind};

/// How long one attempt may take (connect, send, answer). Also how long the end of a
/// run waits for what is still pending.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts per notification; backoff 1 s, then 2 s, between them.
pub const ATTEMPTS: u32 = 3;
/// Notifications a receiver may have waiting; more are dropped (and said so).
pub const QUEUE: usize = 64;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;
/// The webhooks' client, and why https cannot work when the system has no roots.
#[derive(Clone)]
struct Http {
    client: HttpClient<Https, Full<Bytes>>,
    no_roots: Option<String>,
}

struct Job {
    id: u64,
    notice: Arc<Notice>,
}

struct Done {
    id: u64,
    result: Result<u32, (String, u32)>,
}

/// Why one attempt failed, and whether another may help.
#[derive(Debug)]
struct Failure {
    message: String,
    retry: bool,
}

/// The run's side of delivery. Dropping it abandons what is pending.
pub struct Notifier {
    ctx: Context,
    queues: Vec<(String, mpsc::Sender<Job>)>,
    results: std_mpsc::Receiver<Done>,
    /// Queued and not yet answered: id -> (receiver, about).
    pending: HashMap<u64, (String, &'static str)>,
    next: u64,
    cancel: CancellationToken,
}

impl Notifier {
    /// Starts delivery to `receivers` (none: a notifier that sends nothing). `sns`
    /// publishes for `sns:` receivers.
    pub fn start(receivers: Vec<Receiver>, sns: Arc<dyn Sns>, ctx: Context) -> Notifier {
        let (done_tx, results) = std_mpsc::channel();
        let cancel = CancellationToken::new();
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for r in receivers {
            let (tx, rx) = mpsc::channel(QUEUE);
            queues.push((r.describe(), tx));
            workers.push((r, rx));
        }
        if !workers.is_empty() {
            let cancel = cancel.clone();
            let spawned = std::thread::Builder::new()
                .name("drpilot-notify".into())
                .spawn(move || deliver_all(workers, sns, done_tx, cancel));
            if let Err(e) = spawned {
                tracing::warn!(target: "drpilot::notify", error = %e, "no notification thread: nothing will be sent");
            }
        }
        Notifier {
            ctx,
            queues,
            results,
            pending: HashMap::new(),
            next: 0,
            cancel,
        }
    }

    /// Queues the notification `event` calls for, to every receiver, without waiting.
    /// Returns a `notification_failed` for each receiver whose queue was full (or
    /// whose delivery thread is gone).
    pub fn observe(&mut self, event: &Event) -> Vec<EventKind> {
        if self.queues.is_empty() {
            return Vec::new();
        }
        let Some(notice) = compose(&self.ctx, event) else {
            return Vec::new();
        };
        let notice = Arc::new(notice);
        let mut failed = Vec::new();
        for (receiver, tx) in &self.queues {
            self.next += 1;
            let id = self.next;
            match tx.try_send(Job {
                id,
                notice: notice.clone(),
            }) {
                Ok(()) => {
                    self.pending.insert(id, (receiver.clone(), notice.about));
                }
                Err(e) => failed.push(EventKind::NotificationFailed {
                    receiver: receiver.clone(),
                    about: notice.about.to_string(),
                    error: match e {
                        mpsc::error::TrySendError::Full(_) => format!(
                            "dropped: {QUEUE} notifications were already waiting for this receiver"
                        ),
                        mpsc::error::TrySendError::Closed(_) => {
                            "dropped: the delivery thread is not running".to_string()
                        }
                    },
                    attempts: 0,
                }),
            }
        }
        failed
    }

    /// What has been delivered (or has failed) since the last call, without waiting.
    pub fn ready(&mut self) -> Vec<EventKind> {
        let mut out = Vec::new();
        while let Ok(done) = self.results.try_recv() {
            out.extend(self.settle(done));
        }
        out
    }

    /// Whether anything is still on its way.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    fn settle(&mut self, done: Done) -> Option<EventKind> {
        let (receiver, about) = self.pending.remove(&done.id)?;
        Some(match done.result {
            Ok(attempts) => EventKind::NotificationSent {
                receiver,
                about: about.to_string(),
                attempts,
            },
            Err((error, attempts)) => EventKind::NotificationFailed {
                receiver,
                about: about.to_string(),
                error,
                attempts,
            },
        })
    }

    /// The run is over: waits (blocking, real time) until everything queued is
    /// delivered or failed, at most `wait`; then gives up on the rest, one
    /// `notification_failed` each, and stops the delivery thread.
    pub fn finish(mut self, wait: Duration) -> Vec<EventKind> {
        // No more jobs: each worker ends when its queue is empty.
        self.queues.clear();
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while !self.pending.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(done) => out.extend(self.settle(done)),
                Err(_) => break,
            }
        }
        self.cancel.cancel();
        let mut given_up: Vec<(u64, (String, &'static str))> = self.pending.drain().collect();
        given_up.sort_by_key(|(id, _)| *id);
        out.extend(given_up.into_iter().map(|(_, (receiver, about))| {
            EventKind::NotificationFailed {
                receiver,
                about: about.to_string(),
                error: format!(
                    "given up: still undelivered {} after the run ended",
                    humantime::format_duration(wait)
                ),
                attempts: 0,
            }
        }));
        out
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The delivery thread: one task per receiver, until their queues close or the
/// notifier gives up.
fn deliver_all(
    workers: Vec<(Receiver, mpsc::Receiver<Job>)>,
    sns: Arc<dyn Sns>,
    done: std_mpsc::Sender<Done>,
    cancel: CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(target: "drpilot::notify", error = %e, "no notification runtime: nothing will be sent");
            return;
        }
    };
    rt.block_on(async move {
        let http = http_client();
        let mut tasks = tokio::task::JoinSet::new();
        for (receiver, mut jobs) in workers {
            let (sns, done, http) = (sns.clone(), done.clone(), http.clone());
            tasks.spawn(async move {
                while let Some(job) = jobs.recv().await {
                    let result = deliver(&receiver, &job.notice, &*sns, &http).await;
                    if done.send(Done { id: job.id, result }).is_err() {
                        return;
                    }
                }
            });
        }
        tokio::select! {
            _ = async { while tasks.join_next().await.is_some() {} } => {}
            _ = cancel.cancelled() => tasks.abort_all(),
        }
    });
}

/// The webhooks' client: hyper with rustls, as `http.check` uses, trusting the
/// system's roots (without any, only plain http works, and https says why).
fn http_client() -> Result<Http, String> {
    let (tls, no_roots) = match crate::cloud::live::system_tls_config() {
        Ok(tls) => (tls, None),
        Err(e) => (crate::cloud::live::tls_with_no_roots()?, Some(e)),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Http {
        client: HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(https),
        no_roots,
    })
}

/// One notification to one receiver: attempts with a deadline each and backoff
/// between them. `Ok(attempts)`, or the last error (scrubbed of the URL) and the
/// attempts made.
async fn deliver(
    receiver: &Receiver,
    notice: &Notice,
    sns: &dyn Sns,
    http: &Result<Http, String>,
) -> Result<u32, (String, u32)> {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let once = || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(receiver, notice, sns, http)).await {
            Ok(r) => r,
            Err(_) => Err(Failure {
                message: format!(
                    "no answer within {}",
                    humantime::format_duration(ATTEMPT_TIMEOUT)
                ),
                retry: true,
            }),
        }
    };
    let result = once
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(4))
                .with_max_times(ATTEMPTS as usize - 1),
        )
        .when(|f: &Failure| f.retry)
        .await;
    let n = attempts.load(std::sync::atomic::Ordering::Relaxed);
    result
        .map(|()| n)
        .map_err(|f| (receiver.scrub(&f.message), n))
}

async fn attempt(
    receiver: &Receiver,
    notice: &Notice,
    sns: &dyn Sns,
    http: &Result<Http, String>,
) -> Result<(), Failure> {
    let body = match receiver {
        Receiver::Sns { region, topic_arn } => {
            return sns
                .publish(region, topic_arn, &notice.subject, &notice.text)
                .await
                .map(|_| ())
                .map_err(|e| Failure {
                    retry: e.kind != CloudErrorKind::InvalidRequest,
                    message: e.to_string(),
                });
        }
        Receiver::Webhook { .. } => notice.json.to_string(),
        Receiver::Slack { .. } => serde_json::json!({ "text": notice.text }).to_string(),
    };
    let url = receiver.url().unwrap_or_default();
    let web = http.as_ref().map_err(|e| Failure {
        message: e.clone(),
        retry: false,
    })?;
    if let Some(why) = &web.no_roots
        && url.to_ascii_lowercase().starts_with("https://")
    {
        return Err(Failure {
            message: why.clone(),
            retry: false,
        });
    }
    let client = &web.client;
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("drpilot/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Failure {
            message: format!("the request could not be built: {e}"),
            retry: false,
        })?;
    let response = client.request(request).await.map_err(|e| Failure {
        message: format!("no answer: {}", chain(&e)),
        retry: true,
    })?;
    let status = response.status();
    // Read (and drop) the answer, so the connection closes cleanly.
    let _ = response.into_body().collect().await;
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    Err(Failure {
        message: format!("HTTP {code}"),
        // A refusal (404, 403, 400) will be refused again; an overload or an outage may pass.
        retry: status.is_server_error() || code == 408 || code == 429,
    })
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cloud::CloudResult;
    use crate::engine::RunId;

    struct NoSns;

    #[async_trait::async_trait]
    impl Sns for NoSns {
        async fn publish(&self, _: &str, _: &str, _: &str, _: &str) -> CloudResult<String> {
            unreachable!("no sns receiver here")
        }
    }

    fn ctx() -> Context {
        Context {
            runbook: "rb".into(),
            mode: "planned switchover".into(),
            who: "me@here".into(),
            target: "AWS".into(),
            regions: vec![],
            steps: 1,
            predicted_rto: Duration::from_secs(60),
            rto_objective: None,
            rpo_objective: None,
            dependents: HashMap::new(),
            attempts: HashMap::new(),
            approvals: Default::default(),
            report: String::new(),
        }
    }

    fn started() -> Event {
        Event {
            run_id: RunId("rb-1".into()),
            at: jiff::Timestamp::from_second(0).unwrap(),
            kind: EventKind::RunStarted {
                event_version: 1,
                runbook: "rb".into(),
                mode: crate::runbook::Mode::Planned,
                sim: false,
                seed: None,
                resumed: false,
            },
        }
    }

    /// A receiver that accepts and never answers; the listener lives as long as the test.
    fn hanging() -> (std::net::TcpListener, Receiver) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook/sekrit-token", l.local_addr().unwrap());
        (l, Receiver::parse(&url).unwrap())
    }

    #[test]
    fn observing_never_waits_and_the_end_gives_up_on_what_is_pending() {
        let (_listener, r) = hanging();
        let mut n = Notifier::start(vec![r], Arc::new(NoSns), ctx());
        assert!(n.observe(&started()).is_empty());
        assert!(n.ready().is_empty());
        assert!(!n.is_idle());
        let given_up = n.finish(Duration::from_millis(200));
        match given_up.as_slice() {
            [
                EventKind::NotificationFailed {
                    receiver,
                    about,
                    error,
                    attempts: 0,
                },
            ] => {
                assert!(receiver.starts_with("webhook 127.0.0.1:"), "{receiver}");
                assert_eq!(about, "run_started");
                assert!(error.starts_with("given up"), "{error}");
                assert!(!error.contains("sekrit"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_queue_drops_and_says_so() {
        let (_listener, r) = hanging();
        let mut n = Notifier::start(vec![r], Arc::new(NoSns), ctx());
        let mut dropped = Vec::new();
        // One is taken by the delivery in flight at most; the queue holds QUEUE more.
        for _ in 0..QUEUE + 2 {
            dropped.extend(n.observe(&started()));
        }
        assert!(!dropped.is_empty());
        assert!(dropped.iter().all(|k| matches!(
            k,
            EventKind::NotificationFailed { error, attempts: 0, .. } if error.starts_with("dropped")
        )));
        drop(n);
    }

    #[test]
    fn a_notifier_without_receivers_does_nothing() {
        let mut n = Notifier::start(vec![], Arc::new(NoSns), ctx());
        assert!(n.observe(&started()).is_empty());
        assert!(n.finish(Duration::from_secs(60)).is_empty());
    }
}
