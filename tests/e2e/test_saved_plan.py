"""A saved plan binds the install: ``plan --out FILE`` then ``install --plan FILE`` applies exactly what was
planned, or refuses before any change (a role file edited since, a parameter given again, a host that no
longer shows the planned changes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from integration_agent.api import run_action
from integration_agent.catalog import Catalog, Integration
from integration_agent.errors import ValidationFailed
from integration_agent.paths import PROJECT_ROOT
from integration_agent.settings import load_settings
from tests.conftest import run_cli, ssh

pytestmark = pytest.mark.lab
HOST = "lab1"


@pytest.fixture
def fresh(lab):
    lab.reset([HOST])
    return lab


def cli(*args: str, env) -> tuple[int, dict, str]:
    proc = run_cli(*args, "--json", env=env)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}), proc.stderr


def test_install_applies_the_saved_plan(fresh, isolated_env, tmp_path, figure):
    saved = tmp_path / "node_exporter.plan.json"
    inventory = str(fresh.inventory_path)
    rc, planned, err = cli("plan", "node_exporter", "-i", inventory, "-l", HOST,
                           "--var", "collectors_enabled=[systemd]", "--out", str(saved), env=isolated_env)
    assert rc == 0 and saved.is_file(), err
    data = json.loads(saved.read_text())
    assert data["targets"] == [HOST] and data["changes"][HOST] and data["fingerprint"] == planned["fingerprint"]
    assert data["parameters"]["node_exporter_collectors_enabled"] == ["systemd"]

    rc, _, err = cli("install", "node_exporter", "-i", inventory, "-l", HOST, "--plan", str(saved), "--var",
                     "listen_address=0.0.0.0:9200", env=isolated_env)
    assert rc == 5 and "--var cannot be combined with --plan" in err  # the plan fixes the parameters

    rc, report, err = cli("install", "node_exporter", "-i", inventory, "-l", HOST, "--plan", str(saved),
                          env=isolated_env)
    assert rc == 0, err
    assert report["hosts"][HOST]["status"] == "installed" and report["fingerprint"] == data["fingerprint"]
    request = json.loads((Path(report["run_dir"]) / "request.json").read_text())
    assert request["saved_plan"]["run_id"] == data["run_id"] and request["fingerprint"] == data["fingerprint"]
    args = ssh(fresh, HOST, "cat /etc/default/prometheus-node-exporter").stdout
    assert "--collector.systemd" in args  # the saved parameters were applied, without --var


def test_a_host_that_changed_since_the_plan_is_refused_before_apply(fresh, isolated_env, tmp_path, figure):
    saved = tmp_path / "plan.json"
    inventory = str(fresh.inventory_path)
    assert cli("plan", "node_exporter", "-i", inventory, "-l", HOST, "--out", str(saved), env=isolated_env)[0] == 0
    # Someone installs the package by hand: the dry run no longer shows what the saved plan showed.
    assert ssh(fresh, HOST, "apt-get update -q >/dev/null 2>&1; "
                            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus-node-exporter"
                            " >/dev/null 2>&1; dpkg -l prometheus-node-exporter | grep -c '^ii'").stdout.strip() == "1"
    rc, report, err = cli("install", "node_exporter", "-i", inventory, "-l", HOST, "--plan", str(saved),
                          env=isolated_env)
    figure("12 binding plan", "hosts applied although their dry run drifted",
           sum(1 for h in report.get("hosts", {}).values() if h.get("changed", {}).get("apply")))
    assert rc == 7 and report["status"] == "refused", (rc, report, err)
    host = report["hosts"][HOST]
    assert host["status"] == "unchanged" and not host["changed"].get("apply")
    assert any("differs from the saved plan" in f for f in host["failures"]), host


def test_a_role_changed_since_the_plan_is_refused_before_any_playbook(fresh, isolated_env, tmp_path, figure):
    # A copy of the integration whose role is edited between plan and install.
    root = tmp_path / "integration"
    for part in ("roles/node_exporter", "knowledge/node_exporter"):
        shutil.copytree(PROJECT_ROOT / part, root / part)
    copy = Integration(Catalog().get("node_exporter").manifest, root, origin="test copy")
    settings = load_settings(env={}, overrides={"runs_dir": str(tmp_path / "runs"), "learn": False})
    saved = tmp_path / "plan.json"
    run_action("plan", copy, fresh.inventory_path, limit=HOST, settings=settings, plan_out=saved)
    tasks = root / "roles/node_exporter/tasks/main.yml"
    tasks.write_text(tasks.read_text() + "\n# edited after the plan\n")
    runs_before = set((tmp_path / "runs").iterdir())
    with pytest.raises(ValidationFailed, match="changed since the plan"):
        run_action("install", copy, fresh.inventory_path, limit=HOST, settings=settings, saved_plan=saved)
    figure("12 binding plan", "runs started from a stale plan", len(set((tmp_path / "runs").iterdir()) - runs_before))
    assert set((tmp_path / "runs").iterdir()) == runs_before  # refused before any run directory or playbook
    assert ssh(fresh, HOST, "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii'").stdout.strip() == "0"
