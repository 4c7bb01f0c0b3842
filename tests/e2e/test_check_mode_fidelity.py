"""Check-mode fidelity: on a fresh host, what the plan says would change is what apply changes.

One install run holds both: its plan stage (check mode) and its apply stage, in the run's events. Every
task apply changes was announced by the plan, as a change or as unpredictable (a task check mode cannot
run, such as one skipped by a condition on ansible_check_mode); every task the plan announced as a change
was changed by apply, or was the plan's own stand-in for a step check mode cannot take (a task that runs in
check mode only, skipped by apply).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
HOST = "lab3"
CASES = {
    "node_exporter": [],
    "zabbix_agent": [],
    "infra_agent": ["--var", "apt_source=deb [trusted=yes] http://10.231.0.1:8080/ ./", "--var", "gpg_key_url="],
}


def tasks(events: list[dict], stage: str, kind: str) -> set[str]:
    return {e["event_data"]["task"] for e in events if e.get("stage") == stage and e.get("event") == kind
            and (kind != "runner_on_ok" or (e["event_data"].get("res") or {}).get("changed"))}


@pytest.mark.parametrize("name", list(CASES))
def test_the_plan_announces_exactly_what_apply_changes(name, lab, isolated_env, tmp_path, figure):
    if name == "infra_agent":
        lab.add_packages([build_standin_deb(tmp_path)])
    lab.reset([HOST])
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": "0123456789abcdef0123456789abcdef01234567"}
    proc = run_cli("install", name, "-i", str(lab.inventory_path), "-l", HOST, *CASES[name], "--json", env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    events = [json.loads(line) for line in (Path(report["run_dir"]) / "events.jsonl").read_text().splitlines()]
    announced = tasks(events, "plan", "runner_on_ok")
    changed = tasks(events, "apply", "runner_on_ok")
    plan_skipped = tasks(events, "plan", "runner_on_skipped")
    apply_skipped = tasks(events, "apply", "runner_on_skipped")
    unpredictable = {u.split(": ", 1)[0] for u in report["hosts"][HOST]["unpredictable"]}  # from the plan

    surprises = changed - announced - unpredictable
    broken_promises = announced - changed - apply_skipped
    figure("09 check-mode fidelity", f"{name}: changes the plan did not announce", len(surprises))
    figure("09 check-mode fidelity", f"{name}: announced changes apply did not make", len(broken_promises))
    assert not surprises, (surprises, announced, unpredictable)
    assert not broken_promises, (broken_promises, changed)
    # A task skipped in check mode by a condition on ansible_check_mode, and run by apply, is listed as
    # unpredictable: never counted as ok.
    assert (plan_skipped & changed) <= unpredictable, (plan_skipped & changed, unpredictable)
    run_cli("uninstall", name, "-i", str(lab.inventory_path), "-l", HOST, *CASES[name], env=env)

