//! Tests of the S3 journal and lock against an in-memory bucket: layout, fencing, leases.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use super::records::seq_of_key;
use super::*;
use crate::cloud::{CloudErrorKind, CloudResult, PutCondition, StoredObject};
use crate::engine::events::{Event, EventKind};
use crate::journal::lock::{LockError, LockHolder};
use crate::journal::store::{Header, JOURNAL_VERSION};
use crate::runbook::StepId;

/// (bucket, key) -> (body, ETag).
type Objects = HashMap<(String, String), (Vec<u8>, String)>;

/// S3 as far as state needs it: conditional writes, and buckets that can go dark.
#[derive(Default)]
struct Mem {
    objects: Mutex<Objects>,
    down: Mutex<HashSet<String>>,
    /// Buckets whose writes land but whose answers are lost (held past the
    /// caller's deadline).
    lose_answers: Mutex<HashSet<String>>,
    next_etag: Mutex<u64>,
}

impl Mem {
    fn check(&self, bucket: &str, op: &str) -> CloudResult<()> {
        if self.down.lock().unwrap().contains(bucket) {
            return Err(CloudError::new(
                CloudErrorKind::Unreachable,
                op,
                Some("us-east-1"),
                "connection reset",
            ));
        }
        Ok(())
    }
    fn set_down(&self, bucket: &str, down: bool) {
        let mut d = self.down.lock().unwrap();
        if down {
            d.insert(bucket.into());
        } else {
            d.remove(bucket);
        }
    }
    fn set_lose_answers(&self, bucket: &str, lose: bool) {
        let mut d = self.lose_answers.lock().unwrap();
        if lose {
            d.insert(bucket.into());
        } else {
            d.remove(bucket);
        }
    }
    fn overwrite(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let etag = self.etag();
        self.objects
            .lock()
            .unwrap()
            .insert((bucket.into(), key.into()), (body, etag));
    }
    fn remove(&self, bucket: &str, key: &str) {
        self.objects
            .lock()
            .unwrap()
            .remove(&(bucket.into(), key.into()));
    }
    fn etag(&self) -> String {
        let mut n = self.next_etag.lock().unwrap();
        *n += 1;
        format!("\"e{n}\"")
    }
}

#[async_trait]
impl StateObjects for Mem {
    async fn put_state(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        condition: PutCondition,
    ) -> CloudResult<String> {
        self.check(bucket, "PutObject")?;
        let k = (bucket.to_string(), key.to_string());
        let current = self.objects.lock().unwrap().get(&k).map(|o| o.1.clone());
        let refused = |code: &str| {
            Err(
                CloudError::new(CloudErrorKind::InvalidState, "PutObject", None, code)
                    .with_code(code),
            )
        };
        match (&condition, current) {
            (PutCondition::IfAbsent, Some(_)) => return refused("PreconditionFailed"),
            (PutCondition::IfMatch(_), None) => return refused("NoSuchKey"),
            (PutCondition::IfMatch(want), Some(have)) if *want != have => {
                return refused("PreconditionFailed");
            }
            _ => {}
        }
        let etag = self.etag();
        self.objects.lock().unwrap().insert(k, (body, etag.clone()));
        if self.lose_answers.lock().unwrap().contains(bucket) {
            return Err(CloudError::new(
                CloudErrorKind::Unreachable,
                "PutObject",
                Some("us-east-1"),
                "no answer within 10s",
            ));
        }
        Ok(etag)
    }
    async fn get_state(&self, bucket: &str, key: &str) -> CloudResult<Option<StoredObject>> {
        self.check(bucket, "GetObject")?;
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|(body, etag)| StoredObject {
                body: body.clone(),
                etag: etag.clone(),
            }))
    }
    async fn list_state(&self, bucket: &str, prefix: &str) -> CloudResult<Vec<String>> {
        self.check(bucket, "ListObjectsV2")?;
        let mut keys: Vec<String> = self
            .objects
            .lock()
            .unwrap()
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }
    async fn state_bucket_region(&self, _bucket: &str) -> CloudResult<String> {
        Ok("us-east-1".into())
    }
}

fn store(mem: &Arc<Mem>, buckets: &[&str], lease: Duration) -> S3State {
    let stores = buckets
        .iter()
        .map(|b| S3Location::parse(&format!("s3://{b}/team")).unwrap())
        .collect();
    let mem = mem.clone();
    S3State::new(stores, lease, move || async move {
        mem as Arc<dyn StateObjects>
    })
    .unwrap()
}

fn header(run: &str) -> Header {
    Header {
        journal_version: JOURNAL_VERSION,
        run_id: RunId(run.into()),
        runbook: "rb".into(),
        runbook_path: "rb.toml".into(),
        runbook_sha256: super::super::store::runbook_digest("x"),
        created_at: jiff::Timestamp::from_second(1).unwrap(),
        clock_origin: jiff::Timestamp::from_second(1).unwrap(),
        sim: None,
        aws: None,
        params: BTreeMap::new(),
        drill: None,
    }
}

fn event(run: &str, step: &str) -> Event {
    Event {
        run_id: RunId(run.into()),
        at: jiff::Timestamp::from_second(2).unwrap(),
        kind: EventKind::StepSucceeded {
            step: StepId::new(step),
            summary: "ok".into(),
        },
    }
}

fn record(seq: u64, token: u64, body: Body) -> Vec<u8> {
    serde_json::to_vec(&Record {
        seq,
        token,
        body,
        world: None,
    })
    .unwrap()
}

fn ev(run: &str, step: &str) -> Body {
    Body::Event {
        event: Box::new(event(run, step)),
    }
}

fn hdr(run: &str) -> Body {
    Body::Header {
        header: Box::new(header(run)),
    }
}

fn took(run: &str) -> Body {
    Body::Lock {
        holder: LockHolder::current(&RunId(run.into())),
        replaced: None,
        broken: false,
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[test]
fn locations_parse_strictly_and_keys_sort_in_journal_order() {
    let l = S3Location::parse("s3://team-state/drpilot/prod/?region=us-west-2").unwrap();
    assert_eq!(l.bucket, "team-state");
    assert_eq!(l.prefix, "drpilot/prod");
    assert_eq!(l.region.as_deref(), Some("us-west-2"));
    let run = RunId("rb-20260101T000000Z-ab12".into());
    assert_eq!(
        l.record_key(&run, 12),
        "drpilot/prod/runs/rb-20260101T000000Z-ab12/journal/0000000012.json"
    );
    assert_eq!(l.lock_key("rb"), "drpilot/prod/locks/rb.lock");
    assert_eq!(
        l.runbook_key(&run),
        "drpilot/prod/runs/rb-20260101T000000Z-ab12/runbook.toml"
    );
    assert_eq!(seq_of_key(&l.record_key(&run, 12)), Some(12));
    assert_eq!(seq_of_key("x/runs/r/journal/12.json"), None);
    // Lexical order is numeric order.
    assert!(l.record_key(&run, 9) < l.record_key(&run, 10));
    let bare = S3Location::parse("s3://team-state").unwrap();
    assert_eq!(bare.lock_key("rb"), "locks/rb.lock");
    assert_eq!(bare.to_string(), "s3://team-state");
    for (bad, why) in [
        ("s3://", "not a bucket name"),
        ("s3://Team_State/p", "not a bucket name"),
        ("s3://ab/p", "not a bucket name"),
        ("s3://team-state/a/../b", "`..`"),
        ("s3://team-state/p?region=mars-1", "not an AWS region"),
        ("s3://team-state/p?profile=x", "unknown parameter"),
        ("file:///tmp", "not an s3:// URL"),
    ] {
        let err = S3Location::parse(bad).unwrap_err().to_string();
        assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
    }
}

#[test]
fn a_journal_is_reassembled_in_order_and_a_gap_or_garbage_is_refused() {
    let run = RunId("r".into());
    let ok: BTreeMap<u64, Vec<u8>> = [
        (0, record(0, 1, hdr("r"))),
        (1, record(1, 1, ev("r", "a"))),
        (2, record(2, 1, ev("r", "b"))),
    ]
    .into();
    let r = reassemble("s3://b/p", &run, ok.clone()).unwrap();
    assert_eq!(r.replay.events.len(), 2);
    assert_eq!((r.next_seq, r.token), (3, 1));

    let mut gap = ok.clone();
    gap.remove(&1);
    let err = reassemble("s3://b/p", &run, gap).unwrap_err().to_string();
    assert!(err.contains("record 1 is missing"), "{err}");
    assert!(err.contains("refusing to resume"), "{err}");

    let mut garbage = ok.clone();
    garbage.insert(2, b"{\"seq\":2,".to_vec());
    let err = reassemble("s3://b/p", &run, garbage)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a journal record"), "{err}");

    let mut misnumbered = ok.clone();
    misnumbered.insert(2, record(7, 1, ev("r", "b")));
    let err = reassemble("s3://b/p", &run, misnumbered)
        .unwrap_err()
        .to_string();
    assert!(err.contains("says it is record 7"), "{err}");

    let mut no_header = ok;
    no_header.insert(0, record(0, 1, ev("r", "a")));
    let err = reassemble("s3://b/p", &run, no_header)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a journal header"), "{err}");
}

#[test]
fn records_of_an_older_token_after_a_takeover_are_ignored_and_tokens_only_grow() {
    let run = RunId("r".into());
    let objects: BTreeMap<u64, Vec<u8>> = [
        (0, record(0, 1, hdr("r"))),
        (1, record(1, 1, ev("r", "a"))),
        (2, record(2, 2, took("r"))),
        (3, record(3, 1, ev("r", "late-from-the-old-holder"))),
        (4, record(4, 2, ev("r", "b"))),
    ]
    .into();
    let r = reassemble("s3://b/p", &run, objects.clone()).unwrap();
    let steps: Vec<String> = r
        .replay
        .events
        .iter()
        .map(|e| match &e.kind {
            EventKind::StepSucceeded { step, .. } => step.as_str().to_string(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(steps, ["a", "b"]);
    assert_eq!(r.token, 2);
    assert!(
        r.replay
            .notes
            .iter()
            .any(|n| n.contains("record 3 ignored")),
        "{:?}",
        r.replay.notes
    );

    let mut unannounced = objects.clone();
    unannounced.insert(4, record(4, 5, ev("r", "b")));
    let err = reassemble("s3://b/p", &run, unannounced)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no lock record gave it"), "{err}");

    let mut backwards = objects;
    backwards.insert(4, record(4, 1, took("r")));
    let err = reassemble("s3://b/p", &run, backwards)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokens only grow"), "{err}");
}

#[test]
fn an_expired_lease_of_another_run_is_broken_only_explicitly_and_recorded() {
    let mem = Arc::new(Mem::default());
    let lease = Duration::from_millis(300);
    let s = store(&mem, &["team-state"], lease);
    // Run a stops renewing (as a paused, aborted or frozen run does).
    s.acquire("rb", &RunId("a".into()), false).unwrap().keep();
    std::thread::sleep(lease + lease / 3);
    match s.acquire("rb", &RunId("b".into()), false) {
        Err(LockError::Held { holder, stale, .. }) => {
            assert_eq!(holder.run_id.0, "a");
            assert!(stale, "an expired lease is stale");
        }
        other => panic!("{other:?}"),
    }
    let b = s.acquire("rb", &RunId("b".into()), true).unwrap();
    assert_eq!(b.token(), 2);
    assert_eq!(b.replaced().0.map(|h| h.run_id.0.as_str()), Some("a"));
    let _j = s.create(&header("b"), "x", &b).unwrap();
    let r = s.reassemble(&RunId("b".into())).unwrap();
    assert!(
        r.replay
            .notes
            .iter()
            .any(|n| n.contains("broke the lock of run a")),
        "{:?}",
        r.replay.notes
    );
    b.release();
}

#[test]
fn a_holder_writes_only_inside_its_lease_with_a_margin() {
    let t0 = Instant::now();
    assert_eq!(
        safety_margin(Duration::from_secs(30)),
        Duration::from_secs(5)
    );
    assert_eq!(
        safety_margin(Duration::from_millis(120)),
        Duration::from_millis(50)
    );
    assert_eq!(valid_until(t0, LEASE), t0 + Duration::from_secs(25));
    let body = LockBody {
        holder: LockHolder::current(&RunId("r".into())),
        token: 1,
        lease_ms: 30_000,
        renewed_at: jiff::Timestamp::from_second(100).unwrap(),
        released: false,
    };
    assert!(!body.looks_expired(jiff::Timestamp::from_second(129).unwrap()));
    assert!(body.looks_expired(jiff::Timestamp::from_second(131).unwrap()));
}

#[test]
fn one_of_two_wins_the_lock_and_the_token_grows_on_every_acquisition() {
    let mem = Arc::new(Mem::default());
    let s = store(&mem, &["team-state"], LEASE);
    let a = s.acquire("rb", &RunId("a".into()), false).unwrap();
    assert_eq!(a.token(), 1);
    match s.acquire("rb", &RunId("b".into()), true) {
        Err(LockError::Held { holder, stale, .. }) => {
            assert_eq!(holder.run_id.0, "a");
            assert!(!stale, "a live lease is never stale");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.holder("rb").unwrap().unwrap().0.run_id.0, "a");
    a.release();
    assert!(s.holder("rb").unwrap().is_none(), "released");
    let b = s.acquire("rb", &RunId("b".into()), false).unwrap();
    assert_eq!(b.token(), 2);
    b.release();
}

#[test]
fn a_holder_whose_lock_was_taken_over_cannot_write_and_its_records_stop() {
    let mem = Arc::new(Mem::default());
    let s = store(&mem, &["team-state"], LEASE);
    let run = RunId("r".into());
    let a = s.acquire("rb", &run, false).unwrap();
    let mut ja = s.create(&header("r"), "x", &a).unwrap();
    ja.append(&event("r", "one"), None).unwrap();
    // Another process takes the run over (here: overwrites the lock with token 2,
    // as a takeover of an expired lease does) and writes its lock record.
    let key = s.primary().lock_key("rb");
    let mut body: LockBody =
        serde_json::from_slice(&mem.objects.lock().unwrap()[&("team-state".into(), key.clone())].0)
            .unwrap();
    body.token = 2;
    mem.overwrite("team-state", &key, serde_json::to_vec(&body).unwrap());
    let read = s.reassemble(&run).unwrap();
    let journal_key = s.primary().record_key(&run, read.next_seq);
    mem.overwrite(
        "team-state",
        &journal_key,
        record(read.next_seq, 2, took("r")),
    );
    // A's next record collides with the takeover record: A lost the run.
    let err = ja.append(&event("r", "two"), None).unwrap_err();
    assert!(matches!(err, JournalError::Fenced(_)), "{err}");
    assert!(a.lost().is_some());
    // And every later write is refused before it is sent.
    let err = ja.append(&event("r", "three"), None).unwrap_err();
    assert!(matches!(err, JournalError::Fenced(_)), "{err}");
    let r = s.reassemble(&run).unwrap();
    assert_eq!(r.replay.events.len(), 1);
    assert_eq!(r.token, 2);
}

#[test]
fn a_renewal_refused_or_a_lease_run_out_stops_the_writer() {
    let mem = Arc::new(Mem::default());
    let lease = Duration::from_millis(400);
    let s = store(&mem, &["team-state"], lease);
    let run = RunId("r".into());
    // Renewal refused: the lock object changed under us.
    let a = s.acquire("rb", &run, false).unwrap();
    let mut ja = s.create(&header("r"), "x", &a).unwrap();
    let key = s.primary().lock_key("rb");
    mem.remove("team-state", &key);
    mem.overwrite("team-state", &key, b"{}".to_vec());
    std::thread::sleep(lease);
    let err = ja.append(&event("r", "a"), None).unwrap_err().to_string();
    assert!(err.contains("lost the lock"), "{err}");

    // Lease run out: the bucket stops answering, so nothing renews it.
    let mem = Arc::new(Mem::default());
    let s = store(&mem, &["team-state"], lease);
    let b = s.acquire("rb", &run, false).unwrap();
    let mut jb = s.create(&header("r"), "x", &b).unwrap();
    mem.set_down("team-state", true);
    std::thread::sleep(lease + lease / 2);
    mem.set_down("team-state", false);
    // The renewal in the fence finds the lock unchanged (nobody took it): the
    // holder may go on.
    jb.append(&event("r", "a"), None).unwrap();
    mem.set_down("team-state", true);
    std::thread::sleep(lease + lease / 2);
    let err = jb.append(&event("r", "b"), None).unwrap_err().to_string();
    assert!(err.contains("expired"), "{err}");
    assert!(b.lost().is_some());
}

/// A region that holds a renewal past its deadline may still apply it: the lock
/// object then carries our own token under an ETag we never heard. The next
/// renewal's If-Match fails, and that must not read as a takeover.
#[test]
fn a_renewal_that_landed_though_its_answer_was_lost_is_no_takeover() {
    let mem = Arc::new(Mem::default());
    let lease = Duration::from_millis(1500);
    let s = store(&mem, &["team-state"], lease);
    let run = RunId("r".into());
    let l = s.acquire("rb", &run, false).unwrap();
    let mut j = s.create(&header("r"), "x", &l).unwrap();
    mem.set_lose_answers("team-state", true);
    // Renewals run every third of the lease: at least one lands unheard.
    std::thread::sleep(lease / 2 + lease / 4);
    mem.set_lose_answers("team-state", false);
    std::thread::sleep(lease / 4);
    j.append(&event("r", "a"), None).unwrap();
    assert!(l.lost().is_none(), "{:?}", l.lost());
    // Someone else's lock object still is a takeover.
    let key = s.primary().lock_key("rb");
    mem.overwrite("team-state", &key, b"{}".to_vec());
    std::thread::sleep(lease);
    let err = j.append(&event("r", "b"), None).unwrap_err().to_string();
    assert!(err.contains("lost the lock"), "{err}");
}

#[test]
fn records_go_to_every_bucket_and_one_is_enough_and_reads_merge() {
    let mem = Arc::new(Mem::default());
    let s = store(&mem, &["state-use1", "state-usw2"], LEASE);
    let run = RunId("r".into());
    let l = s.acquire("rb", &run, false).unwrap();
    let mut j = s.create(&header("r"), "runbook text", &l).unwrap();
    j.append(&event("r", "a"), None).unwrap();
    mem.set_down("state-use1", true);
    j.append(&event("r", "b"), None).unwrap();
    j.append(&event("r", "c"), None).unwrap();
    // Reads use whatever answers.
    let r = s.reassemble(&run).unwrap();
    assert_eq!(r.replay.events.len(), 3);
    assert!(r.replay.notes.iter().any(|n| n.contains("state-use1")));
    assert_eq!(s.runbook_copy(&run).unwrap(), "runbook text");
    // Back, with a hole (records 2 and 3 only in the other bucket): merged.
    mem.set_down("state-use1", false);
    assert_eq!(s.reassemble(&run).unwrap().replay.events.len(), 3);
    // The only bucket left is behind: what it has is a complete-looking prefix,
    // so the read says what it could not see (and a resumption refuses it).
    mem.set_down("state-usw2", true);
    let r = s.reassemble(&run).unwrap();
    assert_eq!(r.replay.events.len(), 1);
    assert!(!r.unread.is_empty());
    mem.set_down("state-usw2", false);
    // Nothing reachable: a clear error, not an empty journal.
    mem.set_down("state-use1", true);
    mem.set_down("state-usw2", true);
    let err = j.append(&event("r", "d"), None).unwrap_err().to_string();
    assert!(err.contains("no state bucket accepted record 4"), "{err}");
    mem.set_down("state-use1", false);
    mem.set_down("state-usw2", false);
    l.release();
    assert_eq!(s.runs().unwrap().len(), 1);
}
