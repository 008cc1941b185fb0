//! Heartbeats: the measured RPO.
//!
//! A control plane cannot say how much data a failover lost; the data can. A small
//! writer (`drpilot heartbeat`, or the drill itself) writes one heartbeat per interval
//! through the endpoint applications write to. Its sequence number advances only when
//! the primary acknowledged the previous heartbeat, and each heartbeat carries the time
//! of the one before it. After a failover the writer's heartbeats land on the new
//! primary, so what the new primary holds tells the story:
//!
//! - a gap in one writer's sequence is a run of heartbeats the old primary acknowledged
//!   that never reached the new one: lost writes;
//! - the heartbeat after the gap carries the time of the last lost one, and the one
//!   before the gap is the newest that survived: the difference is the data-loss window
//!   (with the writer's interval as its resolution).
//!
//! No clock is compared across machines except the writer's own, and nothing depends on
//! when the failover happened: the measurement reads only the data.
//!
//! A leaf: the heartbeat, the writer's numbering and the measurement are pure, used by
//! the runbook's validation, the data planes and the actions alike. Writing heartbeats
//! to a store (the loop a drill and `drpilot heartbeat` run) is in
//! `actions::heartbeats`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One heartbeat, as written by `drpilot heartbeat` (or a drill) and read back.
///
/// A writer's sequence number advances only when the primary acknowledged the
/// previous heartbeat, and every heartbeat carries the time of the one before it:
/// a gap in the sequence seen on a new primary is therefore a run of acknowledged
/// writes that did not survive the failover, and the heartbeat after the gap says when
/// the last of them was written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The writer's id (one per writer process).
    pub writer: String,
    /// 1 for the writer's first acknowledged heartbeat, then +1 per acknowledgement.
    pub seq: u64,
    /// When it was written, in milliseconds since the Unix epoch on the writer's clock.
    pub at_ms: i64,
    /// `at_ms` of the writer's previous acknowledged heartbeat (none for the first).
    pub prev_at_ms: Option<i64>,
}

/// Heartbeats older than this are dropped by the writer (and not read back).
pub const KEEP: Duration = Duration::from_secs(3600);

/// The default interval between heartbeats.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// `at_ms` minus `d`, in milliseconds (saturating): the oldest heartbeat time kept or
/// read back.
pub fn before(at_ms: i64, d: Duration) -> i64 {
    at_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One writer's state: its id, and per stream the last heartbeat the primary
/// acknowledged.
///
/// A stream is the whole store of a target, or one shard of a Valkey cluster (named by
/// the shard's id, its hash tag). Each stream is numbered on its own from 1 under the
/// same writer id: a shard whose write failed retries its own number without holding
/// back the others, and a loss in one shard is a gap in that shard only.
#[derive(Clone, Debug)]
pub struct Writer {
    id: String,
    streams: BTreeMap<String, Acked>,
}

/// The last acknowledged heartbeat of one stream.
#[derive(Clone, Copy, Debug, Default)]
struct Acked {
    seq: u64,
    at_ms: Option<i64>,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

/// The stream of a store that is not sharded.
const WHOLE: &str = "";

impl Writer {
    /// A new writer with a fresh id (hex: safe in SQL and in a Valkey member).
    pub fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::with_id(format!(
            "{:x}{:x}{n:x}",
            std::process::id(),
            nanos & 0xffff_ffff_ffff
        ))
    }

    /// A writer with a given id (tests).
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            streams: BTreeMap::new(),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many heartbeats of the whole store were acknowledged.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged_in(WHOLE)
    }

    /// How many heartbeats of `stream` were acknowledged.
    pub fn acknowledged_in(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |a| a.seq)
    }

    /// The next heartbeat of the whole store, written at `at_ms`.
    pub fn next(&self, at_ms: i64) -> Heartbeat {
        self.next_in(WHOLE, at_ms)
    }

    /// The next heartbeat of `stream`, written at `at_ms`.
    pub fn next_in(&self, stream: &str, at_ms: i64) -> Heartbeat {
        let last = self.streams.get(stream).copied().unwrap_or_default();
        Heartbeat {
            writer: self.id.clone(),
            seq: last.seq + 1,
            at_ms,
            prev_at_ms: last.at_ms,
        }
    }

    /// Records that the primary acknowledged `beat` (of the whole store).
    pub fn acknowledged_by_primary(&mut self, beat: &Heartbeat) {
        self.acknowledged_by_primary_in(WHOLE, beat);
    }

    /// Records that the primary acknowledged `beat` of `stream`.
    pub fn acknowledged_by_primary_in(&mut self, stream: &str, beat: &Heartbeat) {
        self.streams.insert(
            stream.to_string(),
            Acked {
                seq: beat.seq,
                at_ms: Some(beat.at_ms),
            },
        );
    }
}

/// `table` (`name` or `schema.name`, each `[A-Za-z_][A-Za-z0-9_]*`) quoted for SQL, or
/// why it is not a table name. Validation checks runbooks with it, so a name that
/// reaches a database is always one of these.
pub fn quoted_table(table: &str) -> Result<String, String> {
    let parts: Vec<&str> = table.split('.').collect();
    let ident = |p: &&str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    if parts.len() > 2 || !parts.iter().all(ident) {
        return Err(format!(
            "{table:?} is not a table name (`name` or `schema.name`: letters, digits, _)"
        ));
    }
    Ok(parts
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join("."))
}

/// A gap in one writer's sequence: heartbeats acknowledged and lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The newest heartbeat that survived, before the gap.
    pub survived_at_ms: i64,
    /// The last lost heartbeat's time (carried by the heartbeat after the gap).
    pub last_lost_at_ms: i64,
    /// How many heartbeats are missing.
    pub lost: u64,
}

impl Gap {
    /// The data-loss window: writes acknowledged after the newest surviving heartbeat,
    /// up to the last lost one.
    pub fn window(&self) -> Duration {
        Duration::from_millis(
            u64::try_from(self.last_lost_at_ms - self.survived_at_ms).unwrap_or(0),
        )
    }
}

/// What the heartbeats on the (new) primary say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// The writer measured (the one with the newest heartbeat).
    pub writer: String,
    /// Its newest heartbeat visible.
    pub newest_at_ms: i64,
    /// Its gaps closed at or after `since` (oldest first).
    pub gaps: Vec<Gap>,
    /// Heartbeats lost before its first visible one, when that one was written at or
    /// after `since`: the writer's whole beginning never reached this primary
    /// (replication was already behind when it started), so when the loss began is
    /// unknown and no window can be measured.
    pub lost_before_first: u64,
}

impl Measurement {
    /// The largest data-loss window (zero without a gap).
    pub fn rpo(&self) -> Duration {
        self.gaps
            .iter()
            .map(Gap::window)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Heartbeats lost in all.
    pub fn lost(&self) -> u64 {
        self.gaps.iter().map(|g| g.lost).sum()
    }
}

/// Measures the heartbeats visible on a primary: the newest writer's gaps whose
/// closing heartbeat was written at or after `since_ms` (the run's start: earlier gaps
/// belong to earlier failovers). `None` when there are no heartbeats at all.
///
/// A gap whose surviving side is not visible (older than what was read) is not a
/// measurement: it is left out rather than guessed.
pub fn measure(beats: &[Heartbeat], since_ms: i64) -> Option<Measurement> {
    let newest = beats.iter().max_by_key(|b| (b.at_ms, b.seq))?;
    let mine: BTreeMap<u64, &Heartbeat> = beats
        .iter()
        .filter(|b| b.writer == newest.writer)
        .map(|b| (b.seq, b))
        .collect();
    let lost_before_first = mine
        .values()
        .next()
        .filter(|first| first.seq > 1 && first.at_ms >= since_ms)
        .map_or(0, |first| first.seq - 1);
    let mut gaps = Vec::new();
    let mut before: Option<&Heartbeat> = None;
    for b in mine.values() {
        if let (Some(p), Some(last_lost)) = (before, b.prev_at_ms)
            && b.seq > p.seq + 1
            && b.at_ms >= since_ms
        {
            gaps.push(Gap {
                survived_at_ms: p.at_ms,
                last_lost_at_ms: last_lost.max(p.at_ms),
                lost: b.seq - p.seq - 1,
            });
        }
        before = Some(b);
    }
    Some(Measurement {
        writer: newest.writer.clone(),
        newest_at_ms: newest.at_ms,
        gaps,
        lost_before_first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beats(writer: &str, seqs: &[u64]) -> Vec<Heartbeat> {
        // Heartbeat n is written at n seconds; each carries its predecessor's time, as
        // the writer sends it (the predecessor was acknowledged even when lost).
        seqs.iter()
            .map(|&s| Heartbeat {
                writer: writer.into(),
                seq: s,
                at_ms: s as i64 * 1000,
                prev_at_ms: (s > 1).then(|| (s as i64 - 1) * 1000),
            })
            .collect()
    }

    #[test]
    fn no_gap_is_no_loss() {
        let m = measure(&beats("w", &[1, 2, 3, 4, 5]), 0).unwrap();
        assert_eq!(m.rpo(), Duration::ZERO);
        assert_eq!(m.lost(), 0);
        assert_eq!(m.newest_at_ms, 5000);
    }

    #[test]
    fn a_gap_is_the_window_between_the_survivor_and_the_last_lost() {
        // 4..=8 were acknowledged by the old primary and never replicated.
        let m = measure(&beats("w", &[1, 2, 3, 9, 10]), 0).unwrap();
        assert_eq!(m.lost(), 5);
        assert_eq!(m.rpo(), Duration::from_secs(5), "8 s (last lost) - 3 s");
    }

    #[test]
    fn gaps_closed_before_the_run_belong_to_an_earlier_failover() {
        let all = beats("w", &[1, 2, 5, 6, 7, 12, 13]);
        assert_eq!(measure(&all, 0).unwrap().gaps.len(), 2);
        let m = measure(&all, 6000).unwrap();
        assert_eq!(m.gaps.len(), 1);
        assert_eq!(m.rpo(), Duration::from_secs(4));
    }

    #[test]
    fn the_newest_writer_is_measured() {
        let mut all = beats("old", &[1, 2, 3]);
        let mut new = beats("new", &[10, 11, 15, 16]);
        for b in &mut new {
            b.at_ms += 100_000;
            b.prev_at_ms = b.prev_at_ms.map(|p| p + 100_000);
        }
        all.extend(new);
        let m = measure(&all, 0).unwrap();
        assert_eq!(m.writer, "new");
        assert_eq!(m.rpo(), Duration::from_secs(3));
    }

    #[test]
    fn a_gap_without_its_surviving_side_is_not_guessed() {
        // Only 7 and 8 are visible, written before the run: older ones were dropped by
        // the writer's trim; 7's predecessor is unknown and nothing is guessed.
        let m = measure(&beats("w", &[7, 8]), 10_000).unwrap();
        assert!(m.gaps.is_empty());
        assert_eq!(m.lost_before_first, 0);
        // Written during the run, with 1..=6 missing: the writer's whole beginning was
        // lost, and when the loss began is unknown.
        let m = measure(&beats("w", &[7, 8]), 0).unwrap();
        assert_eq!(m.lost_before_first, 6);
        assert!(measure(&[], 0).is_none());
    }

    #[test]
    fn table_names_are_identifiers_quoted() {
        assert_eq!(
            quoted_table("drpilot_heartbeat").unwrap(),
            "\"drpilot_heartbeat\""
        );
        assert_eq!(quoted_table("ops.Beat_1").unwrap(), "\"ops\".\"Beat_1\"");
        for bad in ["", "a.b.c", "1x", "x; DROP TABLE t", "a-b", "x\"", "a."] {
            assert!(quoted_table(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_writer_advances_only_on_acknowledgement() {
        let mut w = Writer::with_id("a");
        let first = w.next(1000);
        assert_eq!((first.seq, first.prev_at_ms), (1, None));
        // Not acknowledged: the same number again, later.
        let again = w.next(2000);
        assert_eq!(again.seq, 1);
        w.acknowledged_by_primary(&again);
        let next = w.next(3000);
        assert_eq!((next.seq, next.prev_at_ms), (2, Some(2000)));
        assert!(Writer::new().id().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(Writer::new().id(), Writer::new().id());
    }

    #[test]
    fn each_shard_is_numbered_on_its_own() {
        let mut w = Writer::with_id("a");
        let a1 = w.next_in("dp-0", 1000);
        let b1 = w.next_in("dp-1", 1000);
        w.acknowledged_by_primary_in("dp-0", &a1);
        // dp-1's write failed: it retries its own number; dp-0 goes on.
        let a2 = w.next_in("dp-0", 2000);
        let b1_again = w.next_in("dp-1", 2000);
        assert_eq!((a2.seq, a2.prev_at_ms), (2, Some(1000)));
        assert_eq!((b1.seq, b1_again.seq, b1_again.prev_at_ms), (1, 1, None));
        assert_eq!(a2.writer, b1_again.writer);
        assert_eq!(
            (w.acknowledged_in("dp-0"), w.acknowledged_in("dp-1")),
            (1, 0)
        );
        assert_eq!(
            w.acknowledged(),
            0,
            "the whole store is a stream of its own"
        );
    }
}
