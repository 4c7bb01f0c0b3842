#!/usr/bin/env bash
# The whole test suite: unit, integration (real Ansible) and end-to-end on lab hosts (needs root).
# Extra arguments go to pytest, for example: ./scripts/test.sh -m "not lab"
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest --durations=15 "$@"
