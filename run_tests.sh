#!/usr/bin/env bash
# Set up .venv/ (first run only; idempotent) with the runtime and test requirements, then run the tests.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k parity
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tools/setup_venv.sh requirements-dev.txt
exec .venv/bin/python -m pytest "$@"
