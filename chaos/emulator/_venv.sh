# Sourced by start, seed and test.sh: create chaos/emulator/.venv once (pinned
# requirements), reuse it afterwards. Output goes to stderr so `start` keeps stdout
# for its URL line.
EMULATOR_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$EMULATOR_DIR/.venv"
STAMP="$VENV/.requirements.sha256"

ensure_venv() {
    local want have=""
    want="$(sha256sum "$EMULATOR_DIR/requirements.txt" | cut -d' ' -f1)"
    [ -f "$STAMP" ] && have="$(cat "$STAMP")"
    if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ]; then
        return 0
    fi
    local py="${PYTHON:-}"
    if [ -z "$py" ]; then
        for cand in python3.11 python3.12 python3.13 python3; do
            if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
        done
    fi
    if [ -z "$py" ]; then
        echo "chaos/emulator: no python3 found" >&2
        return 1
    fi
    {
        [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$EMULATOR_DIR/requirements.txt"
    } >&2 || return 1
    echo "$want" > "$STAMP"
}
