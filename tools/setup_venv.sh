#!/usr/bin/env bash
# Create or update .venv/ at the repo root, idempotently.
# Usage: tools/setup_venv.sh [requirements-file]   (default: requirements.txt)
# Re-installs only when the requirements file changed since the last successful install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="${1:-requirements.txt}"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment in .venv/ ..." >&2
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(basename "$REQ")"
HASH="$(cat "$ROOT/requirements.txt" "$ROOT/$REQ" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
    echo "[setup] installing $REQ into .venv/ (first run takes a few minutes) ..." >&2
    # torch first and alone, so no later requirement can resolve a different build.
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
    "$VENV/bin/python" -m pip install --quiet -r "$ROOT/$REQ"
    echo "$HASH" > "$STAMP"
fi
