//! What must hold for any input to the three readers of untrusted bytes: the runbook,
//! the `--sim-config` file and the journal. Each function panics when a property is
//! violated, so the same checks serve the cargo-fuzz targets (`fuzz/`), the replay of
//! their committed corpus and the property tests (`tests/it`), which run in CI.
//!
//! The properties: nothing panics; a refusal names at least one problem, each pointing
//! inside the text on character boundaries, and renders; a journal is either read whole
//! (only a torn last line, never acknowledged, may be dropped) or refused naming a line,
//! and what was read is something a resumption can replay.

use std::path::Path;
use std::sync::OnceLock;

use drpilot::journal::{JournalError, Replay};
use drpilot::runbook::{self, LoadError, RenderStyle};
use drpilot::sim::{SimConfig, SimConfigError, SimWorld};

fn check_spans(text: &str, spans: impl Iterator<Item = std::ops::Range<usize>>) {
    for s in spans {
        assert!(s.start <= s.end, "span {s:?} runs backwards");
        assert!(
            s.end <= text.len(),
            "span {s:?} past the end ({})",
            text.len()
        );
        assert!(
            text.is_char_boundary(s.start) && text.is_char_boundary(s.end),
            "span {s:?} splits a character"
        );
    }
}

/// A runbook from any bytes.
pub fn runbook(bytes: &[u8]) {
    match runbook::load_bytes(Path::new("fuzz.toml"), bytes) {
        Ok(loaded) => {
            check_spans(
                &loaded.source.text,
                loaded.warnings.iter().map(|p| p.span.clone()),
            );
            let _ = drpilot::plan::Plan::new(&loaded.runbook);
        }
        Err(LoadError::Invalid(err)) => {
            assert!(err.error_count() >= 1, "refused without an error");
            check_spans(&err.file.text, err.problems.iter().map(|p| p.span.clone()));
            assert!(err.problems.iter().all(|p| !p.message.is_empty()));
            let _ = err.render(RenderStyle::Short);
            let _ = err.render(RenderStyle::Fancy {
                color: false,
                width: 80,
            });
        }
        Err(LoadError::TooLarge { .. }) => {
            assert!(
                bytes.len() > runbook::MAX_RUNBOOK_BYTES,
                "refused as too large"
            );
        }
        Err(LoadError::Read { .. }) => panic!("no file was read"),
    }
}

/// The shipped failover runbook, which a fuzzed sim config shapes a world for.
fn failover_runbook() -> &'static runbook::Runbook {
    static RB: OnceLock<runbook::Runbook> = OnceLock::new();
    RB.get_or_init(|| {
        runbook::load_str(
            Path::new("region-failover.toml"),
            include_str!("../../../runbooks/region-failover.toml"),
        )
        .expect("the shipped runbook loads")
        .runbook
    })
}

/// A sim config from any bytes (a file that is not UTF-8 is refused when it is read).
pub fn sim_config(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let refused = |e: &SimConfigError| {
        if let SimConfigError::Invalid { file, problems } = e {
            assert!(!problems.is_empty(), "refused without a problem");
            check_spans(&file.text, problems.iter().map(|p| p.span.clone()));
        }
        let _ = e.render(RenderStyle::Short);
        let _ = e.render(RenderStyle::Fancy {
            color: false,
            width: 80,
        });
    };
    match SimConfig::parse(Path::new("fuzz.toml"), text) {
        Ok(config) => {
            // The names it uses are checked against a world when one is built from it.
            let origin = jiff::Timestamp::from_second(1_700_000_000).expect("a valid time");
            let clock = drpilot::clock::Clock::resume(1.0, origin, std::time::Duration::ZERO);
            if let Err(e) = SimWorld::from_runbook(failover_runbook(), &config, 1, clock) {
                refused(&e);
            }
        }
        Err(e) => refused(&e),
    }
}

/// A journal from any bytes.
pub fn journal(bytes: &[u8]) {
    let lines = bytes.split_inclusive(|b| *b == b'\n').count();
    match Replay::parse(Path::new("journal.ndjson"), bytes) {
        Ok(r) => {
            // The header, then one event per complete line; a torn last line only.
            let read = 1 + r.events.len() + usize::from(r.torn_tail);
            assert_eq!(read, lines, "a line was skipped");
            assert!(r.events.iter().all(|e| e.run_id == r.header.run_id));
            // What a resumption does with it.
            let _ = drpilot::engine::Prior::from_events(&r.events);
            let _ = r.outcome();
        }
        Err(JournalError::Corrupted { line, reason, .. }) => {
            assert!(line >= 1 && line <= lines.max(1), "line {line} of {lines}");
            assert!(!reason.is_empty());
        }
        Err(e) => panic!("a journal's bytes are refused as corrupted, not {e}"),
    }
}
