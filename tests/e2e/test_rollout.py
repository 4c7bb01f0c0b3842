"""Rolling batches on six lab hosts, from the CLI: a failing canary stops the rollout before any other host is
touched, a failure in the last batch leaves the earlier batches installed, and a rolling upgrade of
node_exporter between two stand-in package versions moves every host, one batch at a time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import node_exporter_metrics, run_cli, ssh
from tests.e2e.test_node_exporter import assert_clean, cli_json

pytestmark = pytest.mark.lab
SIX = [f"lab{i}" for i in range(1, 7)]
ROLLING = ("--batch", "1", "--batch", "50%", "--batch", "100%")  # lab1 | lab2 lab3 lab4 | lab5 lab6
PACKAGE = "prometheus-node-exporter"


@pytest.fixture(scope="module")
def lab6(lab_settings):
    """One lab of six hosts for the whole module."""
    from integration_agent.lab import Lab

    the_lab = Lab(lab_settings)
    the_lab.up(6)
    return the_lab


@pytest.fixture
def fresh(lab6):
    lab6.reset(SIX)
    return lab6


def block_port(lab, host: str) -> None:
    """Another program listens on 9100, so node_exporter cannot start on ``host`` (its apply fails)."""
    blocker = ssh(lab, host, "systemd-run --unit=port-blocker python3 -m http.server 9100 --bind 0.0.0.0")
    assert blocker.returncode == 0, blocker.stderr


def rolling_install(lab, env, *extra: str) -> tuple[int, dict]:
    return cli_json("install", "node_exporter", "-i", str(lab.inventory_path), "-l", ",".join(SIX), *extra,
                    env=env)


def events_hosts(report: dict) -> set[str]:
    """Every host that any Ansible event of the run names (check mode included)."""
    hosts = set()
    for line in (Path(report["run_dir"]) / "events.jsonl").read_text().splitlines():
        host = (json.loads(line).get("event_data") or {}).get("host")
        if host:
            hosts.add(host)
    return hosts


def installed_version(lab, host: str) -> str:
    return ssh(lab, host, f"dpkg-query -W -f='${{Version}}' {PACKAGE} 2>/dev/null").stdout.strip()


def test_a_failing_canary_stops_the_rollout_and_no_other_host_is_touched(fresh, isolated_env, figure):
    block_port(fresh, "lab1")
    rc, report = rolling_install(fresh, isolated_env, *ROLLING)
    assert rc == 10, report
    assert {h: r["status"] for h, r in report["hosts"].items()} == {"lab1": "rolled_back",
                                                                   **dict.fromkeys(SIX[1:], "skipped")}
    assert report["status"] == "partial" and report["rollout"]["stopped_after"] == 1
    assert [(b["index"], b["hosts"], b["status"]) for b in report["batches"]] == [
        (1, ["lab1"], "failed"), (2, ["lab2", "lab3", "lab4"], "skipped"), (3, ["lab5", "lab6"], "skipped")]
    # The canary is clean again (but for the listener that is not ours); the others never saw a playbook.
    assert installed_version(fresh, "lab1") == ""
    assert ssh(fresh, "lab1", "systemctl is-active port-blocker").stdout.strip() == "active"
    figure("03 canary batch failure", "hosts touched after the canary", len(events_hosts(report) - {"lab1"}))
    assert events_hosts(report) == {"lab1"}
    for host in SIX[1:]:
        assert_clean(fresh, host)

    shown = run_cli("runs", "show", report["run_id"], "--json", env=isolated_env)
    timeline = json.loads(shown.stdout)["timeline"]
    assert [t["summary"] for t in timeline if t["type"] == "batch_started"] == ["batch 1: lab1"]
    stop = next(t["summary"] for t in timeline if t["type"] == "batch_finished")
    assert stop.startswith("batch 1 failed (failed: lab1); rollout stopped: 1 of 1 host(s) failed"), stop
    text = run_cli("runs", "show", report["run_id"], env=isolated_env).stdout
    assert "lab2: skipped" in text and "rollout stopped after batch 1" in text


def test_a_failure_in_the_last_batch_leaves_the_earlier_batches_installed_and_verified(fresh, isolated_env):
    block_port(fresh, "lab6")
    rc, report = rolling_install(fresh, isolated_env, *ROLLING)
    assert rc == 10, report
    assert {h: r["status"] for h, r in report["hosts"].items()} == {**dict.fromkeys(SIX[:5], "installed"),
                                                                   "lab6": "rolled_back"}
    assert [b["status"] for b in report["batches"]] == ["ok", "ok", "failed"]
    for host in SIX[:5]:
        assert report["hosts"][host]["evidence"]["endpoint_ok"] in (True, "True")
        assert "node_exporter_build_info" in node_exporter_metrics(fresh, host)
    assert installed_version(fresh, "lab6") == ""


def standin_debs(lab, out: Path) -> list[tuple[str, Path]]:
    """Two STAND-IN versions of the mirror's real prometheus-node-exporter .deb, repacked with dpkg-deb:
    ``<orig>~intagent1`` and ``<orig>~intagent2``. The ``~`` sorts them below the real package, so a run that
    pins no version on this shared lab still gets the real one."""
    cache = lab.mirror.repository(lab.settings.suite).cache  # the release of the plain lab's hosts
    real = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    assert real, f"no {PACKAGE} .deb in {cache}"
    tree = out / "tree"
    subprocess.run(["dpkg-deb", "-R", str(real[-1]), str(tree)], check=True)
    control = (tree / "DEBIAN" / "control").read_text()
    original = next(line.split(":", 1)[1].strip() for line in control.splitlines() if line.startswith("Version:"))
    built = []
    for n in (1, 2):
        version = f"{original}~intagent{n}"
        lines = [f"Version: {version}" if line.startswith("Version:") else
                 f"{line} (STAND-IN for tests: the Debian package repacked by intagent as {version})"
                 if line.startswith("Description:") else line for line in control.splitlines()]
        (tree / "DEBIAN" / "control").write_text("\n".join(lines) + "\n")
        deb = out / f"{PACKAGE}_{version}_amd64.deb"
        subprocess.run(["dpkg-deb", "-b", "--root-owner-group", str(tree), str(deb)], check=True,
                       capture_output=True)
        built.append((version, deb))
    return built


def test_a_rolling_upgrade_moves_every_host_to_the_new_version_one_at_a_time(fresh, isolated_env, tmp_path):
    (old, old_deb), (new, new_deb) = standin_debs(fresh, tmp_path)
    fresh.add_packages([old_deb, new_deb])
    four = ",".join(SIX[:4])
    inventory = str(fresh.inventory_path)
    rc, first = cli_json("install", "node_exporter", "-i", inventory, "-l", four, "--var", f"version={old}",
                         env=isolated_env)
    assert rc == 0, first
    assert {installed_version(fresh, h) for h in SIX[:4]} == {old}

    rc, upgrade = cli_json("install", "node_exporter", "-i", inventory, "-l", four, "--batch", "1",
                           "--var", f"version={new}", env=isolated_env)
    assert rc == 0, upgrade
    assert {h: r["status"] for h, r in upgrade["hosts"].items()} == dict.fromkeys(SIX[:4], "installed")
    assert [(b["hosts"], b["status"]) for b in upgrade["batches"]] == [([h], "ok") for h in SIX[:4]]
    for host in SIX[:4]:
        assert installed_version(fresh, host) == new
        assert upgrade["hosts"][host]["evidence"]["endpoint_ok"] in (True, "True")
    journal = [json.loads(line) for line in (Path(upgrade["run_dir"]) / "journal.jsonl").read_text().splitlines()]
    assert [e["hosts"] for e in journal if e["type"] == "batch_started"] == [[h] for h in SIX[:4]]
    # One host at a time: each batch planned, applied and verified before the next one started.
    steps = [(e["type"], e.get("step") or e.get("index")) for e in journal if e["type"] != "note"]
    assert steps[1:10] == [("batch_started", 1), ("step_started", "plan"), ("step_finished", "plan"),
                           ("step_started", "apply"), ("step_finished", "apply"), ("step_started", "verify"),
                           ("step_finished", "verify"), ("step_started", "recover"), ("step_finished", "recover")]
    assert steps[10] == ("batch_finished", 1)
