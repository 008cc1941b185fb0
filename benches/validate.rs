//! `drpilot validate` of every shipped runbook (target: under 20 ms), and planning them.
//!
//! Run with `cargo bench --bench validate`. The figures go in BENCHMARKS.md with the
//! machine they came from.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use drpilot::plan::Plan;
use drpilot::runbook;

fn shipped() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("runbooks/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no shipped runbooks in {}",
        dir.display()
    );
    files
}

fn bench(c: &mut Criterion) {
    let files = shipped();
    // What `drpilot validate runbooks/*.toml` does after start-up: read, parse, check.
    c.bench_function("validate all shipped runbooks", |b| {
        b.iter(|| {
            for f in &files {
                let loaded = runbook::load(f).expect("shipped runbooks are valid");
                std::hint::black_box(loaded);
            }
        })
    });
    let loaded: Vec<_> = files.iter().map(|f| runbook::load(f).unwrap()).collect();
    c.bench_function("plan all shipped runbooks", |b| {
        b.iter(|| {
            for l in &loaded {
                std::hint::black_box(Plan::new(&l.runbook));
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
