//! Property tests: nothing panics on any input, every problem points inside the file,
//! and plans of random DAGs keep their invariants.

use std::path::Path;

use drpilot::plan::Plan;
use drpilot::runbook::{self, LoadError, SourceFile};
use proptest::prelude::*;

use crate::shipped;

/// Loads bytes and checks every reported span lies in the file on character boundaries.
fn load_and_check(bytes: &[u8]) {
    match runbook::load_bytes(Path::new("fuzz.toml"), bytes) {
        Ok(loaded) => {
            for p in &loaded.warnings {
                assert!(loaded.source.text.is_char_boundary(p.span.start));
            }
            let plan = Plan::new(&loaded.runbook);
            crate::plan::check_invariants(&plan);
        }
        Err(LoadError::Invalid(err)) => {
            assert!(err.error_count() >= 1, "rejected without an error");
            let text = &err.file.text;
            for p in &err.problems {
                assert!(p.span.start <= p.span.end, "{p:?}");
                assert!(
                    p.span.end <= text.len(),
                    "{p:?} past the end ({})",
                    text.len()
                );
                assert!(
                    text.is_char_boundary(p.span.start) && text.is_char_boundary(p.span.end),
                    "{p:?}"
                );
                assert!(!p.message.is_empty());
            }
            // Rendering never panics either.
            let _ = err.render(runbook::RenderStyle::Short);
            let _ = err.render(runbook::RenderStyle::Fancy {
                color: false,
                width: 80,
            });
        }
        Err(LoadError::TooLarge { .. }) => assert!(bytes.len() > runbook::MAX_RUNBOOK_BYTES),
        Err(LoadError::Read { .. }) => unreachable!("no file is read"),
    }
}

fn shipped_texts() -> Vec<String> {
    shipped()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// TOML-ish fragments, so random inputs reach the walker and not only the tokenizer.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[runbook]\nname = \"x\"\nmode = \"unplanned\"\n".to_string()),
        Just("[[step]]\n".to_string()),
        Just("[step.gate]\n".to_string()),
        Just("[step.rollback]\n".to_string()),
        Just("[params]\nto = \"us-west-2\"\n".to_string()),
        Just("[objectives]\nrpo = \"30s\"\n".to_string()),
        "[a-z_]{1,12}".prop_map(|k| format!("{k} = \"{{{{{k}}}}}\"\n")),
        ("[a-z_.]{1,16}", "[ -~]{0,20}")
            .prop_map(|(k, v)| format!("{k} = \"{}\"\n", v.replace(['"', '\\'], ""))),
        ("[a-z]{1,8}", any::<i64>()).prop_map(|(k, v)| format!("{k} = {v}\n")),
        "[a-z]{1,8}".prop_map(|k| format!("id = \"{k}\"\naction = \"wait\"\nduration = \"1s\"\n")),
        "[a-z]{1,8}".prop_map(|k| format!("after = [\"{k}\"]\n")),
        Just("action = \"aurora.failover\"\n".to_string()),
        Just("check = \"aurora.lag_below\"\n".to_string()),
        "[ -~\n]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        load_and_check(&bytes);
    }

    #[test]
    fn runbook_shaped_text_never_panics(parts in proptest::collection::vec(fragment(), 0..40)) {
        load_and_check(parts.concat().as_bytes());
    }

    #[test]
    fn mutated_shipped_runbooks_never_panic(
        which in 0usize..3,
        cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4), 1..6),
    ) {
        let texts = shipped_texts();
        let mut text = texts[which % texts.len()].clone().into_bytes();
        for (a, b, op) in cuts {
            if text.is_empty() { break; }
            let i = a.index(text.len());
            let j = b.index(text.len());
            let (lo, hi) = (i.min(j), i.max(j));
            match op {
                0 => { text.drain(lo..hi); }                      // delete a range
                1 => { text.truncate(lo); }                        // truncate
                2 => { let dup = text[lo..hi].to_vec(); text.splice(hi..hi, dup); } // duplicate
                _ => { text[lo] = text[hi]; }                      // overwrite a byte
            }
        }
        load_and_check(&text);
    }

    #[test]
    fn random_dags_plan_with_their_invariants(
        edges in proptest::collection::vec(proptest::collection::vec(any::<prop::sample::Index>(), 0..4), 1..60),
        secs in proptest::collection::vec(1u64..600, 60),
    ) {
        // Step i may only run after steps < i: acyclic by construction.
        let mut text = String::from("[runbook]\nname = \"dag\"\nmode = \"unplanned\"\n[defaults]\ntimeout = \"1h\"\n");
        for (i, deps) in edges.iter().enumerate() {
            let mut after: Vec<String> = if i == 0 { vec![] } else {
                deps.iter().map(|d| format!("\"s{}\"", d.index(i))).collect()
            };
            after.sort();
            after.dedup();
            text.push_str(&format!(
                "[[step]]\nid = \"s{i}\"\naction = \"wait\"\nduration = \"{}s\"\nafter = [{}]\n",
                secs[i], after.join(", ")
            ));
        }
        let loaded = runbook::load_str(Path::new("dag.toml"), &text)
            .unwrap_or_else(|e| panic!("{}", e.render(runbook::RenderStyle::Short)));
        crate::plan::check_invariants(&Plan::new(&loaded.runbook));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for (open, close) in [("[", "]"), ("{a=", "}")] {
        let depth = 100_000;
        let text = format!("a = {}{}\n", open.repeat(depth), close.repeat(depth));
        load_and_check(text.as_bytes());
    }
}

#[test]
fn a_huge_file_is_refused_by_size_without_parsing() {
    let dir = std::env::temp_dir().join(format!("drpilot-huge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.toml");
    // Valid UTF-8 made of 2-byte characters, so a cut in the middle of one would show.
    std::fs::write(&path, "é".repeat(1_500_000)).unwrap();
    let err = runbook::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    match err {
        LoadError::TooLarge { size, .. } => assert_eq!(size, 3_000_000),
        other => panic!("{other:?}"),
    }
}

#[test]
fn line_and_column_are_one_based_and_count_characters() {
    let src = SourceFile::new("x", "é\n\tb");
    assert_eq!(src.line_col(0), (1, 1));
    assert_eq!(src.line_col(3), (2, 1));
    assert_eq!(src.line_col(4), (2, 2));
}

// ----------------------------------------------- the fuzz targets' checks, in CI

fn corpus(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Every input the fuzzers kept (fuzz/corpus, committed) still passes their checks:
/// what a fuzzing session found stays fixed.
#[test]
fn the_fuzz_corpus_replays_without_a_failure() {
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 3] = [
        ("runbook", drpilot_chaos::fuzzing::runbook),
        ("sim_config", drpilot_chaos::fuzzing::sim_config),
        ("journal", drpilot_chaos::fuzzing::journal),
    ];
    for (target, check) in targets {
        for (path, bytes) in corpus(target) {
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails its check", path.display());
        }
    }
}

/// The journals in the corpus are real runs' journals (a success, a rollback).
fn real_journals() -> Vec<Vec<u8>> {
    corpus("journal")
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "ndjson"))
        .map(|(_, b)| b)
        .collect()
}

fn sim_configs() -> Vec<String> {
    corpus("sim_config")
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "toml"))
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A journal cut anywhere (a crash in mid-write, a truncated copy) is read up to the
    /// cut, dropping only the torn line, or refused when the header itself is cut; never
    /// a skipped event.
    #[test]
    fn a_truncated_journal_is_a_prefix_or_a_refusal(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let journals = real_journals();
        let full = &journals[pick.index(journals.len())];
        let whole = drpilot::journal::Replay::parse(Path::new("j"), full).unwrap();
        let at = cut.index(full.len() + 1);
        let part = &full[..at];
        drpilot_chaos::fuzzing::journal(part);
        let header_end = full.iter().position(|b| *b == b'\n').unwrap() + 1;
        match drpilot::journal::Replay::parse(Path::new("j"), part) {
            Ok(r) => {
                prop_assert!(at >= header_end);
                prop_assert_eq!(&r.events[..], &whole.events[..r.events.len()]);
                let complete = part[header_end..].iter().filter(|b| **b == b'\n').count();
                prop_assert_eq!(r.events.len(), complete);
            }
            Err(e) => {
                prop_assert!(at < header_end, "refused past the header: {}", e);
            }
        }
    }

    /// A journal with a byte changed, a line dropped or two lines swapped is read or
    /// refused, never half-read: the checks of the fuzz target hold.
    #[test]
    fn a_damaged_journal_never_panics(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        how in 0..3u8,
    ) {
        let journals = real_journals();
        let full = journals[pick.index(journals.len())].clone();
        let damaged = match how {
            0 => {
                let mut d = full;
                let i = at.index(d.len());
                d[i] = byte;
                d
            }
            1 => {
                let mut lines: Vec<&[u8]> = full.split_inclusive(|b| *b == b'\n').collect();
                lines.remove(at.index(lines.len()));
                lines.concat()
            }
            _ => {
                let mut lines: Vec<&[u8]> = full.split_inclusive(|b| *b == b'\n').collect();
                let i = at.index(lines.len() - 1);
                lines.swap(i, i + 1);
                lines.concat()
            }
        };
        drpilot_chaos::fuzzing::journal(&damaged);
    }

    /// Sim configs with a byte changed, cut, or with random fragments: read or refused
    /// with problems inside the file, and a world built from what reads.
    #[test]
    fn a_damaged_sim_config_never_panics(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let configs = sim_configs();
        let text = configs[pick.index(configs.len())].as_bytes().to_vec();
        let i = at.index(text.len());
        let damaged = if cut {
            text[..i].to_vec()
        } else {
            let mut d = text;
            d[i] = byte;
            d
        };
        drpilot_chaos::fuzzing::sim_config(&damaged);
    }

    #[test]
    fn arbitrary_sim_configs_and_journals_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        drpilot_chaos::fuzzing::sim_config(&bytes);
        drpilot_chaos::fuzzing::journal(&bytes);
    }
}
