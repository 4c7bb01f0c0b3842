"""node_exporter through the whole lifecycle on three lab hosts, as a user drives it from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import node_exporter_metrics, run_cli, ssh

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2", "lab3"]
LIMIT = ",".join(HOSTS)



def cli_json(*args: str, env: dict[str, str]) -> tuple[int, dict]:
    proc = run_cli(*args, "--json", env=env)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc {proc.returncode}): {proc.stdout!r} {proc.stderr!r}") from None


def assert_clean(lab, host: str) -> None:
    leftovers = ssh(lab, host, "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii';"
                               "ls /lib/systemd/system/prometheus-node-exporter.service"
                               " /etc/systemd/system/node_exporter.service"
                               " /etc/default/prometheus-node-exporter /usr/bin/prometheus-node-exporter"
                               " /var/lib/prometheus 2>/dev/null;"
                               "getent passwd prometheus node_exporter; ss -Hltn 'sport = :9100'")
    assert leftovers.stdout.strip() in ("", "0"), f"{host} still has: {leftovers.stdout}"


@pytest.fixture
def fresh(lab):
    lab.reset(HOSTS)
    return lab


def test_install_verify_uninstall_on_three_hosts(fresh, isolated_env):
    inventory = str(fresh.inventory_path)
    rc, report = cli_json("install", "node_exporter", "-i", inventory, "-l", LIMIT, env=isolated_env)
    assert rc == 0, report
    assert report["status"] == "ok" and report["action"] == "install"
    assert {h: r["status"] for h, r in report["hosts"].items()} == dict.fromkeys(HOSTS, "installed")
    for host in HOSTS:
        assert "node_exporter_build_info" in node_exporter_metrics(fresh, host)
        evidence = report["hosts"][host]["evidence"]
        assert evidence["endpoint_ok"] in (True, "True") and evidence["listening"] in (True, "True")
        # Started once, with intagent's arguments: the package's install did not start it with its own.
        starts = ssh(fresh, host, "journalctl -u prometheus-node-exporter --no-pager -o cat | grep -c '^Started'")
        assert starts.stdout.strip() == "1", starts.stdout

    rc, again = cli_json("install", "node_exporter", "-i", inventory, "-l", LIMIT, env=isolated_env)
    assert rc == 0
    assert all(r["status"] == "unchanged" and r["changed"]["apply"] == 0 for r in again["hosts"].values()), again

    rc, verified = cli_json("verify", "node_exporter", "-i", inventory, "-l", LIMIT, env=isolated_env)
    assert rc == 0 and all(r["status"] == "verified" for r in verified["hosts"].values())

    rc, removed = cli_json("uninstall", "node_exporter", "-i", inventory, "-l", LIMIT, env=isolated_env)
    assert rc == 0 and all(r["status"] == "uninstalled" for r in removed["hosts"].values()), removed
    for host in HOSTS:
        assert_clean(fresh, host)
    rc, twice = cli_json("uninstall", "node_exporter", "-i", inventory, "-l", LIMIT, env=isolated_env)
    assert rc == 0 and all(r["status"] == "unchanged" and r["changed"]["uninstall"] == 0
                           for r in twice["hosts"].values()), twice

    rc, after = cli_json("verify", "node_exporter", "-i", inventory, "-l", "lab1", env=isolated_env)
    assert rc == 12 and after["hosts"]["lab1"]["status"] == "failed"
    assert after["hosts"]["lab1"]["evidence"]["listening"] in (False, "False")  # refused: nothing listens

    listed = run_cli("runs", "list", "--json", env=isolated_env)
    runs = json.loads(listed.stdout)
    assert [r["action"] for r in runs[:3]] == ["verify", "uninstall", "uninstall"]
    shown = run_cli("runs", "show", report["run_id"], env=isolated_env)
    assert shown.returncode == 0 and "lab1: installed" in shown.stdout


def test_a_host_whose_port_is_taken_is_rolled_back(fresh, isolated_env):
    blocker = ssh(fresh, "lab2", "systemd-run --unit=port-blocker python3 -m http.server 9100 --bind 0.0.0.0")
    assert blocker.returncode == 0, blocker.stderr
    rc, report = cli_json("install", "node_exporter", "-i", str(fresh.inventory_path), "-l", LIMIT,
                          env=isolated_env)
    assert rc == 10, report
    assert report["status"] == "partial"
    statuses = {h: r["status"] for h, r in report["hosts"].items()}
    assert statuses == {"lab1": "installed", "lab2": "rolled_back", "lab3": "installed"}
    # The exporter cannot bind its port: it dies right after systemd starts it, and verify finds it inactive
    # (something else answers on the port).
    host = report["hosts"]["lab2"]
    assert any(f.startswith("verify: ") and "node_exporter does not work" in f and "active=False" in f
               for f in host["failures"]), host
    assert host["evidence"]["active"] in (False, "False"), host
    assert host["evidence"]["listening"] in (True, "True"), host  # the blocker answers, without the metrics
    assert_clean_except_blocker = ssh(fresh, "lab2", "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii'")
    assert assert_clean_except_blocker.stdout.strip() == "0"
    assert ssh(fresh, "lab2", "systemctl is-active port-blocker").stdout.strip() == "active"  # not ours: untouched
    assert "node_exporter_build_info" in node_exporter_metrics(fresh, "lab1")


def test_plan_changes_nothing_on_fresh_hosts(fresh, isolated_env):
    proc = run_cli("plan", "node_exporter", "-i", str(fresh.inventory_path), "-l", "lab1", env=isolated_env)
    assert proc.returncode == 0, proc.stderr
    assert "would change: Install the Debian package" in proc.stdout
    assert ssh(fresh, "lab1", "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii'").stdout.strip() == "0"


def test_unreachable_host_is_reported_not_rolled_back(fresh, isolated_env, tmp_path, figure):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(fresh.inventory_path.read_text().replace(
        "lab3:\n          ansible_host: 10.231.0.13",
        "lab3:\n          ansible_host: 10.231.0.13\n          ansible_port: 2"))
    rc, report = cli_json("install", "node_exporter", "-i", str(inventory), "-l", LIMIT, env=isolated_env)
    assert rc == 10
    assert report["hosts"]["lab3"]["status"] == "unreachable"
    assert {report["hosts"][h]["status"] for h in ("lab1", "lab2")} == {"installed"}  # the others proceed
    # No rollback for the unreachable host: no playbook of the recover step (or of apply or verify) ran on it.
    events = [json.loads(line) for line in (Path(report["run_dir"]) / "events.jsonl").read_text().splitlines()]
    on_lab3 = [e for e in events if e.get("stage") in ("apply", "verify", "recover")
               and (e.get("event_data") or {}).get("host") == "lab3"]
    figure("01 unreachable host", "rollback events on the unreachable host",
           sum(1 for e in on_lab3 if e["stage"] == "recover"))
    figure("01 unreachable host", "other hosts installed", sum(report["hosts"][h]["status"] == "installed"
                                                               for h in ("lab1", "lab2")))
    assert on_lab3 == [], on_lab3[:3]
    journal = json.loads(run_cli("runs", "show", report["run_id"], "--json", env=isolated_env).stdout)["journal"]
    assert all("lab3" not in e["hosts"] for e in journal if e["type"] == "step_started" and e["step"] != "plan")
    assert report["hosts"]["lab3"]["changed"].get("recover") is None and not report["hosts"]["lab3"]["needs_rollback"]
