#!/usr/bin/env bash
# Set up .venv/ (first run only; idempotent), then start LoFTR Live. Arguments go to the app (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tools/setup_venv.sh requirements.txt
exec .venv/bin/python -m app "$@"
