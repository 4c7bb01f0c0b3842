#!/usr/bin/env bash
# The main job, end to end on the lab: set up, start 3 lab hosts, and
# install node_exporter on them (plan, apply, verify) through intagent.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/intagent lab up --hosts 3
.venv/bin/intagent install node_exporter --inventory "$(.venv/bin/intagent lab inventory)" --limit lab1,lab2,lab3 --yes
