#!/usr/bin/env bash
# Create or update .venv/ at the repo root, idempotently.
# Usage: tools/setup_venv.sh [requirements-file]   (default: requirements.txt)
# Installs the exact versions of the matching lock file (requirements.txt -> requirements.lock,
# requirements-dev.txt -> requirements-dev.lock); re-installs only when that lock changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="${1:-requirements.txt}"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    # One clear line instead of pip's or venv's tracebacks further down.
    if ! command -v "$PY" > /dev/null; then
        echo "error: $PY not found; install Python 3.10 or newer, or set PYTHON=/path/to/python3" >&2; exit 2
    fi
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "error: LoFTR Live needs Python 3.10 or newer, $PY is $("$PY" -V 2>&1); set PYTHON=/path/to/python3.10+" >&2
        exit 2
    fi
    if ! "$PY" -c 'import venv, ensurepip' 2> /dev/null; then
        echo "error: $PY cannot create virtual environments; install its venv module (Debian/Ubuntu: apt install python3-venv)" >&2
        exit 2
    fi
    echo "[setup] creating virtual environment in .venv/ ..." >&2
    "$PY" -m venv "$VENV"
fi
LOCK="${REQ%.txt}.lock"
if [ ! -f "$ROOT/$LOCK" ]; then
    echo "error: $LOCK not found next to $REQ; run tools/lock.sh to generate it" >&2; exit 2
fi
STAMP="$VENV/.installed-$(basename "$LOCK")"
PEERS=""
if [ "$(basename "$REQ")" = "requirements-dev.txt" ]; then PEERS="$ROOT/requirements-peers.txt"; fi
HASH="$(cat "$ROOT/$LOCK" $PEERS | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
    echo "[setup] installing $LOCK into .venv/ (first run takes a few minutes) ..." >&2
    # torch first and alone, so no later requirement can resolve a different build.
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/$LOCK"
    if [ -n "$PEERS" ]; then "$VENV/bin/python" -m pip install --quiet --no-deps -r "$PEERS"; fi
    echo "$HASH" > "$STAMP"
fi
