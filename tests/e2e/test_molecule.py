"""Every molecule scenario (one per curated role, plus check mode on fresh hosts) passes on lab hosts.

The scenarios run two at a time, each on a lane of its own lab hosts (MOLECULE_LAB_FIRST and _SECOND in the
scenarios' platforms), the longest first; each test waits for its scenario and reports it."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.lab
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
LANES = (("lab1", "lab2"), ("lab3", "lab4"))
# Started first, being the longest (the databases install a server in prepare).
LONGEST = ("mysqld_exporter", "postgres_exporter", "nginx_exporter", "check_mode", "infra_agent")


def run_scenario(scenario: str, lanes: queue.Queue[tuple[str, str]]) -> subprocess.CompletedProcess[str]:
    first, second = lanes.get()
    try:
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "NO_COLOR": "1",
               "ANSIBLE_FORCE_COLOR": "0", "MOLECULE_LAB_FIRST": first, "MOLECULE_LAB_SECOND": second}
        return subprocess.run([f"{bindir}/molecule", "test", "-s", scenario], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=1200)
    finally:
        lanes.put((first, second))


@pytest.fixture(scope="module")
def scenarios(lab_settings) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    from integration_agent.lab import Lab

    Lab(lab_settings).up(max(int(host.removeprefix("lab")) for lane in LANES for host in lane))
    lanes: queue.Queue[tuple[str, str]] = queue.Queue()
    for lane in LANES:
        lanes.put(lane)
    order = sorted(SCENARIOS, key=lambda s: (s not in LONGEST, LONGEST.index(s) if s in LONGEST else 0, s))
    with ThreadPoolExecutor(len(LANES)) as pool:
        yield {scenario: pool.submit(run_scenario, scenario, lanes) for scenario in order}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, scenarios):
    proc = scenarios[scenario].result(timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
