#!/usr/bin/env bash
# Static checks: ruff (style and likely bugs) over the whole checkout, then mypy on the package (strict
# for the public API and the records; see pyproject.toml). Installs what is missing first
# (scripts/setup.sh). .ci/run runs it before the test suite; a finding fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "check: ruff check ." >&2
.venv/bin/ruff check --no-cache .
echo "check: mypy" >&2
.venv/bin/mypy --no-incremental
