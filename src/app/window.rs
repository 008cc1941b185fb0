//! `drpilot drill --window SPEC`: when a scheduled drill may start.
//!
//! A game day is agreed with the people on call: "Tuesdays 14:00-16:00 Berlin time". A
//! drill started by cron or CI outside that window (a clock in the wrong zone, a
//! re-run hours later) must refuse to start rather than fail production over when
//! nobody expects it. The spec is `DAYS HH:MM-HH:MM ZONE`:
//!
//! - `DAYS`: `*` (every day), a day (`Tue`), a range (`Mon-Fri`, `Fri-Mon` wraps), or a
//!   comma-separated list of those (`Tue,Thu`). Three-letter or full English names, any
//!   case.
//! - `HH:MM-HH:MM`: local time in the zone; the end may be `24:00`. An end before the
//!   start crosses midnight: the window opens on the named day and closes the next.
//! - `ZONE`: an IANA time zone (`Europe/Berlin`, `UTC`). Required: a window without a
//!   zone would follow whatever zone the scheduler's machine is in.
//!
//! Times are civil times in the zone, so a window stays at 14:00 local across daylight
//! saving changes. On the day clocks spring forward a window inside the skipped hour does
//! not open; on the day they fall back a window across the repeated hour lasts an hour
//! longer (jiff's "compatible" disambiguation: the earlier of two readings, the later
//! side of a gap).

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

/// A parsed `--window`.
#[derive(Clone, Debug)]
pub struct Window {
    /// The spec as given, for messages.
    spec: String,
    /// Which days the window opens on, Monday first.
    days: [bool; 7],
    start: Time,
    /// `None`: midnight at the end of the day (`24:00`).
    end: Option<Time>,
    tz: TimeZone,
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

const DAY_NAMES: [(&str, &str, Weekday); 7] = [
    ("mon", "monday", Weekday::Monday),
    ("tue", "tuesday", Weekday::Tuesday),
    ("wed", "wednesday", Weekday::Wednesday),
    ("thu", "thursday", Weekday::Thursday),
    ("fri", "friday", Weekday::Friday),
    ("sat", "saturday", Weekday::Saturday),
    ("sun", "sunday", Weekday::Sunday),
];

fn day(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, long, _)| lower == *short || lower == *long)
        .ok_or_else(|| format!("`{s}` is not a day (write Mon, Tue, Wed, Thu, Fri, Sat or Sun)"))
}

fn days(s: &str) -> Result<[bool; 7], String> {
    let mut out = [false; 7];
    if s == "*" {
        return Ok([true; 7]);
    }
    for item in s.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut i = a;
                loop {
                    out[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None if item.is_empty() => {
                return Err(format!("`{s}` has an empty day in its list"));
            }
            None => out[day(item)?] = true,
        }
    }
    Ok(out)
}

/// `HH:MM`; `24:00` only where `allow_24` (the end of a window).
fn time(s: &str, allow_24: bool) -> Result<Option<Time>, String> {
    let bad = || format!("`{s}` is not a time of day (write HH:MM, e.g. 14:00)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if allow_24 && h == 24 && m == 0 {
        return Ok(None);
    }
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Time::new(h, m, 0, 0).map(Some).map_err(|_| bad())
}

impl Window {
    /// Parses `DAYS HH:MM-HH:MM ZONE`; the error says what is wrong, for people.
    pub fn parse(spec: &str) -> Result<Window, String> {
        let parts: Vec<&str> = spec.split_whitespace().collect();
        let [d, range, zone] = parts.as_slice() else {
            return Err(format!(
                "`{spec}` is not a window: expected DAYS HH:MM-HH:MM ZONE, e.g. \"Tue 14:00-16:00 Europe/Berlin\" or \"Mon-Fri 09:00-17:00 UTC\""
            ));
        };
        let days = days(d)?;
        let (a, b) = range
            .split_once('-')
            .ok_or_else(|| format!("`{range}` is not a time range (write HH:MM-HH:MM)"))?;
        let start = time(a, false)?.expect("24:00 is refused for a start");
        let end = time(b, true)?;
        if end == Some(start) {
            return Err(format!(
                "`{range}` is empty: the window starts and ends at {a} (for all day write 00:00-24:00)"
            ));
        }
        let tz = TimeZone::get(zone).map_err(|e| {
            format!(
                "`{zone}` is not a time zone ({e}); write an IANA name such as Europe/Berlin or UTC"
            )
        })?;
        Ok(Window {
            spec: parts.join(" "),
            days,
            start,
            end,
            tz,
        })
    }

    /// The window that opens on `date` (if it opens that day): its start and end.
    fn on(&self, date: Date) -> Option<(ZonedDateTime, ZonedDateTime)> {
        let wd = date.weekday().to_monday_zero_offset() as usize;
        if !self.days[wd] {
            return None;
        }
        let start = date
            .to_datetime(self.start)
            .to_zoned_datetime(self.tz.clone())
            .ok()?;
        let end = match self.end {
            Some(end) if end > self.start => date.to_datetime(end),
            // Crosses midnight, or ends at 24:00: closes the next day.
            Some(end) => date.checked_add(1.day()).ok()?.to_datetime(end),
            None => date
                .checked_add(1.day())
                .ok()?
                .to_datetime(Time::midnight()),
        }
        .to_zoned_datetime(self.tz.clone())
        .ok()?;
        // A window inside the hour skipped by a spring-forward change is empty.
        (start.timestamp() < end.timestamp()).then_some((start, end))
    }

    /// The days around `now` a window touching it may open on (yesterday's may still
    /// be open after midnight), then a week ahead for the next opening.
    fn dates(&self, now: Timestamp) -> impl Iterator<Item = Date> {
        let today = now.to_zoned_datetime(self.tz.clone()).date();
        (-1..=8).filter_map(move |d| today.checked_add(d.days()).ok())
    }

    /// Whether `now` is inside the window.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.dates(now)
            .filter_map(|d| self.on(d))
            .any(|(start, end)| start.timestamp() <= now && now < end.timestamp())
    }

    /// The first opening after `now`, in the window's zone.
    pub fn next_opening(&self, now: Timestamp) -> Option<ZonedDateTime> {
        self.dates(now)
            .filter_map(|d| self.on(d))
            .map(|(start, _)| start)
            .find(|start| start.timestamp() > now)
    }

    /// Why a drill may not start at `now`, or `None` when it may.
    pub fn refusal(&self, now: Timestamp) -> Option<String> {
        if self.contains(now) {
            return None;
        }
        let here = now.to_zoned_datetime(self.tz.clone());
        let next = match self.next_opening(now) {
            Some(next) => {
                let wait = next
                    .timestamp()
                    .duration_since(now)
                    .as_secs()
                    .max(0)
                    .unsigned_abs();
                format!(
                    "next opening {} (in {})",
                    next.strftime("%a %Y-%m-%d %H:%M %Z"),
                    humantime::format_duration(std::time::Duration::from_secs(wait / 60 * 60))
                )
            }
            None => "it never opens".to_string(),
        };
        Some(format!(
            "outside the drill window \"{self}\" (now {}); {next}",
            here.strftime("%a %Y-%m-%d %H:%M %Z")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn specs_parse_or_say_what_is_wrong() {
        for ok in [
            "Tue 14:00-16:00 Europe/Berlin",
            "Mon-Fri 09:00-17:00 UTC",
            "Tue,Thu 9:30-10:00 America/New_York",
            "* 00:00-24:00 UTC",
            "fri-mon 22:00-02:00 Asia/Tokyo",
            "Saturday 01:00-05:00 UTC",
        ] {
            assert!(
                Window::parse(ok).is_ok(),
                "{ok}: {:?}",
                Window::parse(ok).err()
            );
        }
        for (bad, says) in [
            ("Tue 14:00-16:00", "expected DAYS HH:MM-HH:MM ZONE"),
            ("Tus 14:00-16:00 UTC", "`Tus` is not a day"),
            ("Tue 14:00 UTC", "not a time range"),
            ("Tue 25:00-26:00 UTC", "`25:00` is not a time of day"),
            ("Tue 14:60-16:00 UTC", "`14:60` is not a time of day"),
            ("Tue 24:00-02:00 UTC", "`24:00` is not a time of day"),
            ("Tue 14:00-14:00 UTC", "is empty"),
            (
                "Tue 14:00-16:00 Europe/Berlinn",
                "`Europe/Berlinn` is not a time zone",
            ),
            ("Mon,,Tue 14:00-16:00 UTC", "empty day"),
            ("", "is not a window"),
        ] {
            let e = Window::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn inside_and_outside_a_weekly_window() {
        let w = Window::parse("Tue 14:00-16:00 Europe/Berlin").unwrap();
        // 2025-03-04 is a Tuesday; Berlin is UTC+1 in winter.
        assert!(
            w.contains(at("2025-03-04T13:00:00Z")),
            "14:00 local opens it"
        );
        assert!(w.contains(at("2025-03-04T14:59:59Z")));
        assert!(
            !w.contains(at("2025-03-04T15:00:00Z")),
            "16:00 local closes it"
        );
        assert!(!w.contains(at("2025-03-04T12:59:59Z")));
        assert!(!w.contains(at("2025-03-05T13:30:00Z")), "a Wednesday");
        let next = w.next_opening(at("2025-03-04T15:00:00Z")).unwrap();
        assert_eq!(next.timestamp(), at("2025-03-11T13:00:00Z"));
        let why = w.refusal(at("2025-03-03T09:15:00Z")).unwrap();
        assert!(why.contains("\"Tue 14:00-16:00 Europe/Berlin\""), "{why}");
        assert!(
            why.contains("next opening Tue 2025-03-04 14:00 CET (in 1day 3h 45m)"),
            "{why}"
        );
        assert_eq!(w.refusal(at("2025-03-04T14:00:00Z")), None);
    }

    #[test]
    fn a_window_across_midnight_belongs_to_its_first_day() {
        let w = Window::parse("Fri 22:00-02:00 UTC").unwrap();
        // 2025-03-07 is a Friday.
        assert!(w.contains(at("2025-03-07T23:00:00Z")));
        assert!(w.contains(at("2025-03-08T01:59:00Z")), "Saturday morning");
        assert!(!w.contains(at("2025-03-08T02:00:00Z")));
        assert!(
            !w.contains(at("2025-03-08T23:00:00Z")),
            "not Saturday night"
        );
        let w = Window::parse("Mon-Fri 09:00-24:00 UTC").unwrap();
        assert!(w.contains(at("2025-03-07T23:59:59Z")));
        assert!(!w.contains(at("2025-03-08T00:00:00Z")));
        assert_eq!(
            w.next_opening(at("2025-03-08T00:00:00Z"))
                .unwrap()
                .timestamp(),
            at("2025-03-10T09:00:00Z"),
            "Monday"
        );
    }

    #[test]
    fn windows_keep_local_time_across_daylight_saving_in_berlin() {
        // Clocks go forward on Sunday 2025-03-30 at 02:00 (to 03:00), back on Sunday
        // 2025-10-26 at 03:00 (to 02:00).
        let w = Window::parse("Sun 14:00-16:00 Europe/Berlin").unwrap();
        assert!(w.contains(at("2025-03-23T13:30:00Z")), "CET: UTC+1");
        assert!(w.contains(at("2025-03-30T12:30:00Z")), "CEST: UTC+2");
        assert!(
            !w.contains(at("2025-03-30T14:00:00Z")),
            "16:00 CEST closes it"
        );
        assert!(
            !w.contains(at("2025-03-30T11:30:00Z")),
            "13:30 CEST: it would be 14:30 a week before"
        );
        assert_eq!(
            w.next_opening(at("2025-03-24T00:00:00Z"))
                .unwrap()
                .timestamp(),
            at("2025-03-30T12:00:00Z")
        );
        // The skipped hour: a window inside it does not open that day.
        let gap = Window::parse("Sun 02:00-03:00 Europe/Berlin").unwrap();
        assert!(!gap.contains(at("2025-03-30T01:00:00Z")));
        assert_eq!(
            gap.next_opening(at("2025-03-29T12:00:00Z"))
                .unwrap()
                .timestamp(),
            at("2025-04-06T00:00:00Z"),
            "the Sunday after, 02:00 CEST"
        );
        // The repeated hour: the window opens at the first 02:00 and closes at 03:00
        // after the second: two hours.
        assert!(gap.contains(at("2025-10-26T00:00:00Z")), "02:00 CEST");
        assert!(gap.contains(at("2025-10-26T01:30:00Z")), "02:30 CET");
        assert!(!gap.contains(at("2025-10-26T02:00:00Z")), "03:00 CET");
    }

    #[test]
    fn day_lists_and_wrapping_ranges() {
        let w = Window::parse("Fri-Mon,Wed 10:00-11:00 UTC").unwrap();
        let open: Vec<bool> =
            (3..=9) // 2025-03-03 is a Monday
                .map(|d| w.contains(at(&format!("2025-03-{d:02}T10:30:00Z"))))
                .collect();
        assert_eq!(open, [true, false, true, false, true, true, true]);
        assert!(
            Window::parse("* 10:00-11:00 UTC")
                .unwrap()
                .contains(at("2025-03-05T10:00:00Z"))
        );
    }
}
