//! Valkey cluster mode: the hash slots keys live in, and the hash tags drpilot writes
//! with so that every shard gets a canary and heartbeats of its own.
//!
//! A cluster spreads 16,384 slots over its shards. A key's slot is the CRC16 (XMODEM)
//! of its hash tag (the text between the first `{` and the next `}`, when that is not
//! empty), else of the whole key, modulo 16,384; a client sends each command to the
//! primary serving the slot. drpilot picks, for each shard, a tag whose slot the shard
//! serves ([`Slots::tag`]) and puts it in front of its keys ([`tagged`]): the shard's
//! canary and heartbeats land in that shard whatever key the runbook names.
//!
//! The tag depends only on the shard's slots. The members of a Global Datastore have
//! the same shards serving the same slots, so a shard's heartbeats written through the
//! old primary are read back under the same key from the new one, and the data-loss
//! window is measured shard by shard.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How many hash slots a cluster has.
pub const SLOTS: u16 = 16384;

/// How many candidate tags [`Slots::tag`] tries: far more than every slot needs (a
/// unit test finds the last slot's first tag well below it).
const TAG_SEARCH: u32 = 1_000_000;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum Valkey and
/// Redis hash keys with.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of a key: its hash tag's when it has a non-empty one, else the whole key's.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % SLOTS
}

/// `key` with the hash tag `tag` in front, so it lives in the tag's slot whatever the
/// key holds (a `{` later in the key no longer decides).
pub fn tagged(tag: &str, key: &str) -> String {
    format!("{{{tag}}}{key}")
}

/// The slots a shard serves: sorted, merged, inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slots(Vec<(u16, u16)>);

impl Slots {
    /// The union of `ranges` (inclusive). Ranges reversed or past the last slot are
    /// dropped: they are not slots.
    pub fn new(ranges: impl IntoIterator<Item = (u16, u16)>) -> Slots {
        let mut r: Vec<(u16, u16)> = ranges
            .into_iter()
            .filter(|&(a, b)| a <= b && b < SLOTS)
            .collect();
        r.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(r.len());
        for (a, b) in r {
            match merged.last_mut() {
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        Slots(merged)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    /// Whether `slot` is one of them.
    pub fn contains(&self, slot: u16) -> bool {
        self.0.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// How many slots.
    pub fn len(&self) -> u32 {
        self.0
            .iter()
            .map(|&(a, b)| u32::from(b) - u32::from(a) + 1)
            .sum()
    }

    /// No slot at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first hash tag, of `dp-0`, `dp-1`, ..., whose slot is one of these: where a
    /// shard serving them gets its canary and heartbeats. `None` only without slots.
    pub fn tag(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        (0..TAG_SEARCH)
            .map(|n| format!("dp-{n}"))
            .find(|t| self.contains(key_slot(t.as_bytes())))
    }

    /// `shards` shards' slots as `redis-cli --cluster create` and ElastiCache split
    /// them: consecutive, as even as whole slots allow (3 shards: 0-5460, 5461-10922,
    /// 10923-16383).
    pub fn even_split(shards: u16) -> Vec<Slots> {
        let n = shards.clamp(1, SLOTS);
        let per = f64::from(SLOTS) / f64::from(n);
        let mut out = Vec::with_capacity(usize::from(n));
        let mut first: u16 = 0;
        let mut cursor = 0.0_f64;
        for i in 0..n {
            let mut last = (cursor + per - 1.0).round() as u16;
            if last >= SLOTS || i == n - 1 {
                last = SLOTS - 1;
            }
            last = last.max(first);
            out.push(Slots(vec![(first, last)]));
            first = last.saturating_add(1);
            cursor += per;
        }
        out
    }
}

impl fmt::Display for Slots {
    /// `0-5460`, `0-99,200-299`, a single slot as `7`; none as `-`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, &(a, b)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}-{b}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Slots {
    type Err = String;

    /// What [`Slots`]'s `Display` writes, and ElastiCache's `NodeGroup.Slots`
    /// (`0-5460`, ranges separated by commas).
    fn from_str(text: &str) -> Result<Slots, String> {
        let text = text.trim();
        if text == "-" || text.is_empty() {
            return Ok(Slots::default());
        }
        let slot = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|&n| n < SLOTS)
                .ok_or_else(|| format!("{s:?} is not a slot (0-{})", SLOTS - 1))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let (a, b) = match part.split_once('-') {
                Some((a, b)) => (slot(a)?, slot(b)?),
                None => {
                    let s = slot(part)?;
                    (s, s)
                }
            };
            if a > b {
                return Err(format!("{part:?} is not a slot range (reversed)"));
            }
            ranges.push((a, b));
        }
        Ok(Slots::new(ranges))
    }
}

impl TryFrom<String> for Slots {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Slots> for String {
    fn from(s: Slots) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_xmodem() {
        // The check value of CRC-16/XMODEM, and the examples of the cluster spec.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn a_hash_tag_decides_the_slot() {
        let tag = key_slot(b"user1000");
        assert_eq!(key_slot(b"{user1000}.following"), tag);
        assert_eq!(key_slot(b"{user1000}.followers"), tag);
        // The first `{` and the next `}`; an empty tag hashes the whole key.
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"no brace }{"), crc16(b"no brace }{") % SLOTS);
        // drpilot's own tag goes first: a runbook key with braces cannot move it.
        let k = tagged("dp-3", "app:{sessions}:beat");
        assert_eq!(k, "{dp-3}app:{sessions}:beat");
        assert_eq!(key_slot(k.as_bytes()), key_slot(b"dp-3"));
    }

    #[test]
    fn slots_merge_print_and_parse() {
        let s = Slots::new([(100, 199), (0, 99), (300, 300), (16000, 20000), (9, 1)]);
        assert_eq!(s.ranges(), &[(0, 199), (300, 300)]);
        assert_eq!(s.to_string(), "0-199,300");
        assert_eq!(s.len(), 201);
        assert!(s.contains(300) && s.contains(0) && !s.contains(200));
        assert_eq!("0-199, 300".parse::<Slots>().unwrap(), s);
        assert_eq!("5461-10922".parse::<Slots>().unwrap().len(), 5462);
        assert!("-".parse::<Slots>().unwrap().is_empty());
        for bad in ["16384", "5-3", "a-b", "1-"] {
            assert!(bad.parse::<Slots>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"0-199,300\"");
        assert_eq!(serde_json::from_str::<Slots>(&json).unwrap(), s);
    }

    #[test]
    fn an_even_split_is_the_one_redis_cli_makes() {
        let three: Vec<String> = Slots::even_split(3).iter().map(Slots::to_string).collect();
        assert_eq!(three, ["0-5460", "5461-10922", "10923-16383"]);
        assert_eq!(Slots::even_split(1)[0].to_string(), "0-16383");
        for n in [2, 5, 6, 90] {
            let split = Slots::even_split(n);
            assert_eq!(split.len(), usize::from(n));
            assert_eq!(split.iter().map(Slots::len).sum::<u32>(), u32::from(SLOTS));
            let all = Slots::new(split.iter().flat_map(|s| s.ranges().to_vec()));
            assert_eq!(all.to_string(), "0-16383", "{n} shards");
        }
    }

    #[test]
    fn every_shard_gets_a_tag_in_its_own_slots() {
        for n in [1, 3, 6] {
            let split = Slots::even_split(n);
            let tags: Vec<String> = split.iter().map(|s| s.tag().unwrap()).collect();
            for (s, t) in split.iter().zip(&tags) {
                assert!(s.contains(key_slot(tagged(t, "drpilot:heartbeat").as_bytes())));
            }
            let mut unique = tags.clone();
            unique.dedup();
            assert_eq!(unique.len(), tags.len(), "{tags:?}");
        }
        // Stable: the same slots always give the same tag (a Global Datastore's
        // members agree on it).
        assert_eq!(Slots::even_split(3)[2].tag(), Slots::even_split(3)[2].tag());
        assert_eq!(Slots::default().tag(), None);
    }

    #[test]
    fn every_single_slot_has_a_tag_within_the_search() {
        // The worst case: a shard serving one slot. Every slot is hit well within
        // TAG_SEARCH candidates.
        let mut seen = vec![false; usize::from(SLOTS)];
        let mut left = usize::from(SLOTS);
        let mut n = 0u32;
        while left > 0 {
            assert!(
                n < TAG_SEARCH,
                "{left} slots have no tag below {TAG_SEARCH}"
            );
            let slot = usize::from(key_slot(format!("dp-{n}").as_bytes()));
            if !seen[slot] {
                seen[slot] = true;
                left -= 1;
            }
            n += 1;
        }
        assert!(n < TAG_SEARCH / 2, "the last slot needed {n} candidates");
    }
}
