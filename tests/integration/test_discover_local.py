"""``intagent discover`` through the real CLI, real Ansible and the real discovery module, on the controller
(connection local: discovery is read only) and an unreachable host."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import yaml

from integration_agent.errors import ExecutionFailed
from tests.conftest import local_and_closed_inventory, run_cli


def test_discover_reports_what_runs_and_recommends_by_rule(tmp_path, isolated_env):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    sleeper = subprocess.Popen(["sleep", "300"])
    # An integration folder (the integrations_path setting) whose only rule is this listening port.
    folder = tmp_path / "extra" / "knowledge" / "port_watcher"
    folder.mkdir(parents=True)
    (folder / "integration.yml").write_text(yaml.safe_dump({
        "name": "port_watcher", "description": "test", "version": "1.0.0",
        "platforms": [{"family": "debian", "distributions": ["Debian"], "versions": ["12"]}],
        "owns": {"packages": ["port-watcher"]}, "sources": [{"title": "t", "url": "https://example.org"}],
        "discovery": {"any": [{"port": port}], "all": [{"process": "sleep"}]}}))
    env = {**isolated_env, "INTAGENT_INTEGRATIONS_PATH": str(tmp_path / "extra")}
    try:
        proc = run_cli("discover", "-i", str(local_and_closed_inventory(tmp_path)), "--json", env=env)
    finally:
        listener.close()
        sleeper.kill()
    assert proc.returncode == ExecutionFailed.exit_code, proc.stdout + proc.stderr  # one host did not answer
    report = json.loads(proc.stdout)
    assert report["status"] == "partial"
    here, closed = report["hosts"]["here"], report["hosts"]["closed"]
    assert closed["status"] == "unreachable" and closed["recommended"] == []
    assert here["status"] == "discovered" and port in here["ports"]
    assert "sleep" in here["facts"]["processes"]
    recs = {r["integration"]: r for r in here["recommended"]}
    assert recs["port_watcher"]["why"] == [f"TCP port {port} is listening", "process sleep is running"]
    assert recs["port_watcher"]["blocked"] == "no curated role (install it with --generate)"
    # node_exporter belongs on every Debian host; the controller runs Debian.
    assert recs["node_exporter"]["why"] == ["os_family is Debian"] and recs["node_exporter"]["blocked"] is None
    assert not any(r in recs for r in ("infra_agent", "zabbix_agent", "collectd"))  # no rule: by name only
    run_dir = Path(report["run_dir"])
    assert json.loads((run_dir / "report.json").read_text())["hosts"]["here"]["status"] == "discovered"
    assert not (run_dir / "reserve").exists()


def test_discover_off_a_terminal_prints_a_plain_table(tmp_path, isolated_env):
    proc = run_cli("discover", "-i", str(local_and_closed_inventory(tmp_path)), "-l", "here", env=isolated_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "discover: ok" in proc.stdout and "node_exporter (os_family is Debian)" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_show_names_the_discovery_rules(isolated_env):
    proc = run_cli("show", "node_exporter", env=isolated_env)
    assert proc.returncode == 0, proc.stderr
    assert "recommended where: any of: os_family Debian" in proc.stdout
    assert "recommended where" not in run_cli("show", "infra_agent", env=isolated_env).stdout
