//! Tests of the breaker on a paused clock: probes, verdicts, refusals and deadlines.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// A world of regions that answer after a delay, refuse, or hold.
#[derive(Default)]
struct World {
    regions: Mutex<BTreeMap<String, Behaviour>>,
    probes: AtomicU32,
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Answer(Duration),
    Refuse,
    Hold,
}

impl World {
    fn set(&self, region: &str, b: Behaviour) {
        self.regions.lock().unwrap().insert(region.to_string(), b);
    }

    fn behaviour(&self, region: &str) -> Behaviour {
        self.regions
            .lock()
            .unwrap()
            .get(region)
            .copied()
            .unwrap_or(Behaviour::Answer(Duration::from_millis(50)))
    }

    fn answer(&self, region: &str) -> impl Future<Output = CloudResult<()>> + Send + 'static {
        let b = self.behaviour(region);
        let region = region.to_string();
        async move {
            match b {
                Behaviour::Answer(d) => {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
                Behaviour::Refuse => Err(CloudError::new(
                    CloudErrorKind::Unreachable,
                    "Probe",
                    Some(&region),
                    "connection refused",
                )),
                Behaviour::Hold => std::future::pending().await,
            }
        }
    }
}

impl Prober for World {
    fn probe(&self, region: &str, _service: Service, _endpoint: Option<&str>) -> ProbeFuture {
        self.probes.fetch_add(1, Ordering::SeqCst);
        let f = self.answer(region);
        Box::pin(async move { ("Probe", f.await) })
    }
}

fn reach(world: &Arc<World>) -> Reach {
    let r = Reach::new(Clock::real(), ReachSettings::default());
    r.set_prober(world.clone());
    r
}

fn target(region: &str) -> ProbeTarget {
    ProbeTarget {
        region: region.to_string(),
        service: Service::Rds,
        endpoint: None,
    }
}

async fn read(r: &Reach, w: &World, region: &str) -> CloudResult<()> {
    r.call(
        "Describe",
        region,
        Service::Rds,
        CallKind::Read,
        w.answer(region),
    )
    .await
}

fn statuses(rx: &mut mpsc::UnboundedReceiver<RegionStatus>) -> Vec<(String, Reachability)> {
    let mut out = Vec::new();
    while let Ok(s) = rx.try_recv() {
        out.push((s.region, s.status));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_held_region_is_declared_down_within_the_probe_timeout_and_then_refused_at_once() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Hold);
    let r = reach(&w);
    let (_, mut rx) = r.subscribe();
    let t0 = tokio::time::Instant::now();
    r.probe([target("us-east-1"), target("us-west-2")]);
    // A read sent while the verdict is pending is cut short by it.
    let e = read(&r, &w, "us-east-1").await.unwrap_err();
    assert_eq!(t0.elapsed(), DEFAULT_PROBE_TIMEOUT);
    assert!(is_region_unreachable(&e), "{e:?}");
    assert!(
        e.message.ends_with("given up waiting for its answer"),
        "it was sent: {}",
        e.message
    );
    // The healthy region answered and was published first.
    assert_eq!(
        statuses(&mut rx),
        vec![
            ("us-west-2".to_string(), Reachability::Reachable),
            ("us-east-1".to_string(), Reachability::Unreachable),
        ]
    );
    // Later calls fail without waiting, and say since when and why.
    let t1 = tokio::time::Instant::now();
    let e = read(&r, &w, "us-east-1").await.unwrap_err();
    assert_eq!(t1.elapsed(), Duration::ZERO);
    assert!(
        e.message.contains("us-east-1 rds unreachable since"),
        "{}",
        e.message
    );
    assert!(e.message.contains("no answer within 3.0s"), "{}", e.message);
    assert!(e.message.ends_with("not sent"), "{}", e.message);
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
    assert_eq!(
        r.status("us-west-2", Service::Rds),
        Some(Reachability::Reachable)
    );
    read(&r, &w, "us-west-2").await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_mutation_waits_for_the_first_verdict_instead_of_being_sent_into_the_dark() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Hold);
    let r = reach(&w);
    r.probe([target("us-east-1")]);
    let sent = Arc::new(AtomicU32::new(0));
    let s = sent.clone();
    let e = r
        .call(
            "Failover",
            "us-east-1",
            Service::Rds,
            CallKind::Write,
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        )
        .await
        .unwrap_err();
    assert!(is_region_unreachable(&e));
    assert_eq!(sent.load(Ordering::SeqCst), 0, "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn a_dead_region_is_asked_again_once_per_interval_and_used_again_when_it_answers() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Refuse);
    let r = reach(&w);
    let (_, mut rx) = r.subscribe();
    r.probe([target("us-east-1")]);
    tokio::task::yield_now().await;
    assert!(read(&r, &w, "us-east-1").await.is_err());
    let probes = w.probes.load(Ordering::SeqCst);
    // Before the interval: refused without a probe, however many calls.
    for _ in 0..5 {
        assert!(is_region_unreachable(
            &read(&r, &w, "us-east-1").await.unwrap_err()
        ));
    }
    assert_eq!(w.probes.load(Ordering::SeqCst), probes);
    // The region comes back; after the interval one call probes, then is sent.
    w.set("us-east-1", Behaviour::Answer(Duration::from_millis(80)));
    tokio::time::sleep(ReachSettings::default().reprobe_every).await;
    read(&r, &w, "us-east-1").await.unwrap();
    assert_eq!(w.probes.load(Ordering::SeqCst), probes + 1);
    assert_eq!(
        statuses(&mut rx),
        vec![
            ("us-east-1".to_string(), Reachability::Unreachable),
            ("us-east-1".to_string(), Reachability::Reachable),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_region_that_comes_back_is_used_again_while_its_first_probe_still_listens() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Hold);
    let r = reach(&w);
    r.probe([target("us-east-1")]);
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + Duration::from_millis(1)).await;
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
    // Back after 8 s; the first probe's held connection never answers (its late-
    // answer window lasts a minute), but the next call after the interval probes
    // afresh and goes through.
    tokio::time::sleep(Duration::from_secs(5)).await;
    w.set("us-east-1", Behaviour::Answer(Duration::from_millis(40)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = tokio::time::Instant::now();
    read(&r, &w, "us-east-1").await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Reachable)
    );
}

/// Many calls at once to a region that is back: the first sends the half-open
/// probe, the others wait for its verdict instead of being refused meanwhile.
#[tokio::test(start_paused = true)]
async fn calls_that_arrive_during_a_half_open_probe_wait_for_its_verdict() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Refuse);
    let r = reach(&w);
    r.probe([target("us-east-1")]);
    tokio::task::yield_now().await;
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
    w.set("us-east-1", Behaviour::Answer(Duration::from_millis(30)));
    tokio::time::sleep(ReachSettings::default().reprobe_every).await;
    let calls = (0..5).map(|_| read(&r, &w, "us-east-1"));
    for result in futures_util::future::join_all(calls).await {
        result.unwrap();
    }
    // Still down: they all hear the probe's verdict and are refused together.
    w.set("us-east-1", Behaviour::Hold);
    r.forget("us-east-1");
    r.probe([target("us-east-1")]);
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + ReachSettings::default().reprobe_every).await;
    let t = tokio::time::Instant::now();
    let calls = (0..5).map(|_| read(&r, &w, "us-east-1"));
    for result in futures_util::future::join_all(calls).await {
        assert!(is_region_unreachable(&result.unwrap_err()));
    }
    assert_eq!(
        t.elapsed(),
        DEFAULT_PROBE_TIMEOUT,
        "one probe timeout for all"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_region_is_not_dead_and_gets_deadlines_that_fit_it() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Answer(Duration::from_secs(20)));
    let r = reach(&w);
    let (_, mut rx) = r.subscribe();
    r.probe([target("us-east-1")]);
    // The probe's timeout passes first: unreachable for now; the late answer at 20 s
    // makes it slow, and a call then waits its 20 s (past the 10 s read deadline).
    tokio::time::sleep(Duration::from_secs(21)).await;
    assert_eq!(
        statuses(&mut rx),
        vec![
            ("us-east-1".to_string(), Reachability::Unreachable),
            ("us-east-1".to_string(), Reachability::Slow),
        ]
    );
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Slow)
    );
    let t = tokio::time::Instant::now();
    read(&r, &w, "us-east-1").await.unwrap();
    assert_eq!(t.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn one_lost_request_does_not_take_a_region_out_but_a_confirmed_silence_does() {
    let w = Arc::new(World::default());
    let r = reach(&w);
    r.probe([target("us-east-1")]);
    read(&r, &w, "us-east-1").await.unwrap();
    // One call is lost (held), the region itself answers: still reachable.
    let lost = r
        .call(
            "Describe",
            "us-east-1",
            Service::Rds,
            CallKind::Read,
            std::future::pending::<CloudResult<()>>(),
        )
        .await
        .unwrap_err();
    assert_eq!(lost.kind, CloudErrorKind::Unreachable);
    assert!(!is_region_unreachable(&lost), "the call itself was sent");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Reachable)
    );
    // The region goes silent: the next lost call's confirming probe declares it.
    w.set("us-east-1", Behaviour::Hold);
    assert!(read(&r, &w, "us-east-1").await.is_err());
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + Duration::from_millis(1)).await;
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
}

#[tokio::test(start_paused = true)]
async fn reads_have_a_deadline_and_services_are_judged_apart() {
    let w = Arc::new(World::default());
    w.set("us-east-1", Behaviour::Hold);
    let r = reach(&w);
    let t = tokio::time::Instant::now();
    let e = read(&r, &w, "us-east-1").await.unwrap_err();
    assert_eq!(t.elapsed(), DEFAULT_READ_TIMEOUT);
    assert_eq!(e.message, "no answer within 10s");
    tokio::time::sleep(DEFAULT_PROBE_TIMEOUT + Duration::from_millis(1)).await;
    assert_eq!(
        r.status("us-east-1", Service::Rds),
        Some(Reachability::Unreachable)
    );
    assert_eq!(r.status("us-east-1", Service::S3), None);
    r.forget("us-east-1");
    assert_eq!(r.status("us-east-1", Service::Rds), None);
}

#[test]
fn service_names_round_trip() {
    for s in Service::ALL {
        assert_eq!(Service::parse(s.as_str()), Some(s));
    }
    assert_eq!(Service::parse("cloudwatch"), Some(Service::Cloudwatch));
    assert_eq!(Service::parse("ec2"), None);
}
