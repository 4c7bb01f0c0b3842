"""Run the reliability checks on lab hosts and print one line per figure they measured.

    .venv/bin/python benchmarks/reliability.py            # every check (about 15 minutes, needs root)
    .venv/bin/python benchmarks/reliability.py -k crash   # extra arguments go to pytest

Each check is a test (docs/reliability.md lists them); the tests record their figures (hosts affected,
residue, orphans, canary hits, time to stop) through the ``figure`` fixture of tests/conftest.py, and this
script prints them as a table. The tests assert the targets; the figures are what was measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKS = [
    "tests/e2e/test_node_exporter.py::test_unreachable_host_is_reported_not_rolled_back",
    "tests/e2e/test_rollout.py::test_a_failing_canary_stops_the_rollout_and_no_other_host_is_touched",
    "tests/e2e/test_interrupt_and_locks.py",
    "tests/e2e/test_infra_agent.py::test_a_license_key_the_vendor_rejects_fails_verify_and_is_rolled_back",
    "tests/e2e/test_idempotence.py",
    "tests/e2e/test_sandbox.py",
    "tests/integration/test_bad_input.py",
    "tests/e2e/test_saved_plan.py",
    "tests/e2e/test_partial_failure.py",
    "tests/e2e/test_check_mode_fidelity.py",
    "tests/e2e/test_learning.py",
    "tests/integration/test_disk_full.py",
    "tests/unit/test_locks.py",
]


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="intagent-reliability-") as tmp:
        figures = Path(tmp) / "figures.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHECKS, *extra],
                              cwd=REPO, env={**os.environ, "RELIABILITY_FIGURES_FILE": str(figures)},
                              capture_output=True, text=True, check=False)
        rows = json.loads(figures.read_text()) if figures.is_file() else []
    print(f"{'check':<28} {'figure':<66} value")
    for row in sorted(rows, key=lambda r: (r["check"], r["what"])):
        print(f"{row['check']:<28} {row['what']:<66} {row['value']}")
    summary = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else ["pytest printed nothing"]
    print(f"\npytest: {summary[0]} (exit {proc.returncode})")
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
