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
