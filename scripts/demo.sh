#!/usr/bin/env bash
# The main job, end to end on the lab: set up, start 3 lab hosts, and reach every one of them
# through intagent's own Ansible runner.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/intagent lab up --hosts 3
.venv/bin/intagent ping --inventory "$(.venv/bin/intagent lab inventory)"
