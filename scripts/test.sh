#!/usr/bin/env bash
# Installs what the tests need (idempotently) and runs the whole test suite.
# Used by developers and by CI (.ci/run). One cargo build is shared by every step.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

# --- what the tests need from the system ---------------------------------------------
# graphviz: the plan's DOT output is rendered with `dot` to prove it is valid.
need_apt=()
command -v dot >/dev/null 2>&1 || need_apt+=(graphviz)
# chromium: the HTML report and plan pages are rendered headless (tests/it/browser.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# tmux: guided mode is driven in a pseudo-terminal and its screens are snapshotted.
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# postgresql, redis-server: the data-plane checks run against real primaries and replicas
# (tests/it/local_servers.rs); the tests start and stop their own servers, not the services.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# --- static checks -------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- the AWS emulator (Python: moto's server plus our extensions) ------------------
# Creates chaos/emulator/.venv from pinned requirements on first use, reuses it after.
# Prepared before the Rust tests: tests/it/emulator.rs drives the shipped runbooks
# through the real AWS SDK against emulators it starts (free 127.0.0.1 ports, stopped
# by pid).
command -v python3 >/dev/null 2>&1 || { need_python=1; }
if [ "${need_python:-0}" = 1 ] || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
fi
log "AWS emulator venv"
bash -c 'source chaos/emulator/_venv.sh && ensure_venv'

# --- tests ---------------------------------------------------------------------------
log "cargo test (unit, integration, snapshot and property tests)"
# Both members of the workspace: drpilot and its test machinery (chaos/harness, whose
# checks have unit tests of their own; tests/it uses it too). chaos/run builds with
# the same `--workspace --all-targets`, so the features resolve alike and no dependency
# is compiled twice. The bench targets are compiled and run once in test mode (`cargo
# test --benches` would time nothing); they stay runnable with `cargo bench`.
cargo test --workspace --all-targets --locked

log "the shipped runbooks validate"
# The binary `cargo test` just built (with the test build's features): `cargo run`
# would compile the AWS SDK a second time with the plain build's.
"${CARGO_TARGET_DIR:-target}/debug/drpilot" validate runbooks/*.toml

log "chaos suite: 200 seeded scenarios and the hand-written ones (chaos/README.md)"
# A fixed seed: a failure prints the scenario file that replays it.
chaos_args=(--seed 20261128 --count 200)
for f in chaos/scenarios/*.toml; do chaos_args+=(--scenario "$f"); done
chaos/run "${chaos_args[@]}"

log "chaos suite against the AWS emulator: 6 seeded scenarios and the hand-written ones"
# Real-time runs (drpilot polls as against AWS), three emulators side by side: about
# 4 minutes on 2 cores (chaos/README.md). The venv was prepared above.
emu_args=(--emulator --seed 20261128 --count 6 --jobs 3)
for f in chaos/scenarios/emulator/*.toml; do emu_args+=(--scenario "$f"); done
chaos/run "${emu_args[@]}"

log "AWS emulator test suite (chaos/emulator)"
bash chaos/emulator/test.sh -q

log "all tests passed"
