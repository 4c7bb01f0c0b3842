"""Idempotence of every curated role through intagent, with Ansible's strategy and with Mitogen's: after an
install, a second install and a plan report 0 changes on every host; after an uninstall, a second uninstall
changes nothing.
(node_exporter's binary method: tests/e2e/test_node_exporter_binary.py.)"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2"]
CASES = {
    "node_exporter": [],
    "zabbix_agent": [],
    "infra_agent": ["--var", "apt_source=deb [trusted=yes] http://10.231.0.1:8080/ ./", "--var", "gpg_key_url="],
}


def run(action: str, name: str, lab, env) -> dict:
    proc = run_cli(action, name, "-i", str(lab.inventory_path), "-l", ",".join(HOSTS), *CASES[name], "--json",
                   env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)["hosts"]


def changes(hosts: dict) -> dict[str, int]:
    return {h: sum(r["changed"].values()) for h, r in hosts.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_a_second_install_a_plan_and_a_second_uninstall_change_nothing(name, lab, strategy_env, tmp_path, figure):
    if name == "infra_agent":
        lab.add_packages([build_standin_deb(tmp_path)])
    lab.reset(HOSTS)
    label = name + (" (ansible strategy)" if "INTAGENT_ANSIBLE_MITOGEN" in strategy_env else "")
    env = {**strategy_env, "NEW_RELIC_LICENSE_KEY": "0123456789abcdef0123456789abcdef01234567"}
    first = run("install", name, lab, env)
    assert {r["status"] for r in first.values()} == {"installed"} and all(changes(first).values())
    again = run("install", name, lab, env)
    figure("07 idempotence", f"{label}: changes on a second install", sum(changes(again).values()))
    assert {r["status"] for r in again.values()} == {"unchanged"}, again
    assert changes(again) == {h: 0 for h in HOSTS}
    planned = run("plan", name, lab, env)
    figure("07 idempotence", f"{label}: changes in a plan after install", sum(changes(planned).values()))
    assert {r["status"] for r in planned.values()} == {"unchanged"}, planned
    assert changes(planned) == {h: 0 for h in HOSTS} and all(not r["changes"] for r in planned.values())
    removed = run("uninstall", name, lab, env)
    assert {r["status"] for r in removed.values()} == {"uninstalled"} and all(changes(removed).values())
    twice = run("uninstall", name, lab, env)
    figure("08 uninstall", f"{label}: changes on a second uninstall", sum(changes(twice).values()))
    assert changes(twice) == {h: 0 for h in HOSTS}, twice
