"""Runs that are interrupted, and runs that compete for the same host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integration_agent.locks import HostLocks
from tests.conftest import REPO, run_cli, ssh

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2", "lab3"]


def start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_")}
    return subprocess.Popen([sys.executable, "-m", "integration_agent", *args], cwd=REPO, env={**base, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 180, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def run_processes() -> list[int]:
    """Processes on the controller that belong to any intagent run (they carry the run marker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if b"INTAGENT_RUN_MARKER=" in Path(f"/proc/{entry}/environ").read_bytes():
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def applying(runs: Path) -> bool:
    """Has a run under ``runs`` that is still going (no report yet) started its apply stage?"""
    return any('"stage": "apply", "event": "runner_on_start"' in p.read_text()
               for p in runs.glob("*/events.jsonl") if not (p.parent / "report.json").exists())


@pytest.fixture
def fresh(lab):
    lab.reset(HOSTS)
    return lab


def host_leftovers(lab, host: str) -> list[str]:
    """What an interrupted run may leave on a host: Ansible's temp dirs, a package manager still running."""
    found = ssh(lab, host, "ls -d /root/.ansible/tmp/ansible-tmp-* /tmp/ansible-* 2>/dev/null; "
                           "pgrep -a -x 'apt-get|apt|dpkg|unattended-upgr' || true").stdout
    return found.split("\n") if found.strip() else []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_apply_stops_everything_and_records_unknown_hosts(fresh, isolated_env, figure, signum):
    runs = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "runs"
    proc = start("install", "node_exporter", "-i", str(fresh.inventory_path), "-l", ",".join(HOSTS), "--json",
                 env=isolated_env)

    wait_for(lambda: applying(runs), what="the apply stage")
    proc.send_signal(signum)
    signalled = time.monotonic()
    stdout, stderr = proc.communicate(timeout=120)
    check = f"04 {signal.Signals(signum).name} mid-apply"
    figure(check, "seconds to stop", round(time.monotonic() - signalled, 1))
    assert proc.returncode == 130, stderr
    report = json.loads(stdout)
    assert report["status"] == "interrupted"
    assert {h["status"] for h in report["hosts"].values()} == {"unknown"}
    figure(check, "controller processes left at exit", len(run_processes()))
    wait_for(lambda: not run_processes(), timeout=10, what="run processes to end")
    # intagent never kills a package manager in the middle of a transaction (that breaks dpkg's state): an apt
    # the interrupted run started on a host finishes there on its own, and resume's reconcile waits for it.
    figure(check, "package managers still running at the interrupt",
           sum(map(len, (host_leftovers(fresh, host) for host in HOSTS))))
    assert not list((runs.parent / "locks").glob("*.lock")), "locks must be released"
    shown = run_cli("runs", "show", report["run_id"], env=isolated_env)
    assert "interrupted" in shown.stdout

    resumed = run_cli("resume", report["run_id"], "--json", env=isolated_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["run_id"] == report["run_id"]
    assert {h["status"] for h in final["hosts"].values()} <= {"installed", "unchanged"}
    for host in HOSTS:
        assert final["hosts"][host]["evidence"]["endpoint_ok"] in (True, "True")
    left = {host: host_leftovers(fresh, host) for host in HOSTS}
    figure(check, "temp dirs and package managers left on the hosts after resume", sum(map(len, left.values())))
    assert left == {host: [] for host in HOSTS}
    journal = [json.loads(line) for line in (runs / report["run_id"] / "journal.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in journal] == list(range(1, len(journal) + 1))
    flow = [(e["type"], e.get("step")) for e in journal]
    assert flow[:5] == [("run_requested", None), ("step_started", "plan"), ("step_finished", "plan"),
                        ("step_started", "apply"), ("run_interrupted", "apply")]
    assert flow[5:] == [("step_started", "reconcile"), ("step_finished", "reconcile"),
                        ("step_started", "apply"), ("step_finished", "apply"),
                        ("step_started", "verify"), ("step_finished", "verify"),
                        ("step_started", "recover"), ("step_finished", "recover"),
                        ("step_started", "learn"), ("step_finished", "learn"), ("run_finished", None)]
    again = run_cli("resume", report["run_id"], env=isolated_env)
    assert again.returncode == 3 and "not interrupted" in again.stderr


def test_a_controller_killed_mid_apply_is_interrupted_and_resumes(fresh, isolated_env, figure):
    runs = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "runs"
    locks = runs.parent / "locks"
    proc = start("install", "node_exporter", "-i", str(fresh.inventory_path), "-l", "lab1,lab2", "--json",
                 env=isolated_env)

    wait_for(lambda: applying(runs), what="the apply stage")
    proc.kill()  # SIGKILL: no handler runs, nothing is written, Ansible's processes are orphaned
    proc.communicate(timeout=30)
    (run_dir,) = runs.iterdir()
    listed = json.loads(run_cli("runs", "list", "--json", env=isolated_env).stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_dir.name, "interrupted")]
    # The dead run's host locks are free at once: nobody holds them, another run may take its hosts.
    assert [HostLocks(locks).holder(h) for h in ("lab1", "lab2")] == [None, None]

    resumed = run_cli("resume", run_dir.name, "--json", env=isolated_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = json.loads(resumed.stdout)
    assert {h["status"] for h in final["hosts"].values()} <= {"installed", "unchanged"}, final["hosts"]
    assert all(h["evidence"]["endpoint_ok"] in (True, "True") for h in final["hosts"].values())
    flow = [(e["type"], e.get("step"), tuple(e.get("hosts") or ()) if e["type"] == "run_interrupted" else ())
            for e in map(json.loads, (run_dir / "journal.jsonl").read_text().splitlines())]
    # The crash is recorded where it happened (apply, on both hosts), then reconciled like an interruption.
    assert ("run_interrupted", "apply", ("lab1", "lab2")) in flow
    assert flow[flow.index(("run_interrupted", "apply", ("lab1", "lab2"))) + 1][:2] == ("step_started", "reconcile")
    assert flow[-1][0] == "run_finished"
    figure("11 controller SIGKILL", "orphan processes after resume", len(run_processes()))
    figure("11 controller SIGKILL", "private dirs left in /dev/shm", len(list(Path("/dev/shm").glob("intagent-run-*"))))
    assert not list(Path("/dev/shm").glob("intagent-run-*")), "the dead run's private dirs are removed"
    figure("11 controller SIGKILL", "hosts verified after resume", len(final["hosts"]))
    wait_for(lambda: not run_processes(), timeout=10, what="the dead run's processes to be gone")
    assert not list(locks.glob("*.lock")), "locks must be released"


def test_a_host_lost_mid_apply_is_unreachable_and_never_rolled_back(fresh, isolated_env, figure):
    runs = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "runs"
    proc = start("install", "node_exporter", "-i", str(fresh.inventory_path), "-l", ",".join(HOSTS), "--json",
                 env=isolated_env)

    wait_for(lambda: applying(runs), what="the apply stage")
    victim = next(h for h in fresh.hosts() if h.name == "lab3")
    victim.stop()  # the host goes away in the middle of apply (halted: its sshd is gone)
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        fresh.up(len(HOSTS))  # brings lab3 back for the tests after this one
    report = json.loads(stdout)
    statuses = {h: r["status"] for h, r in report["hosts"].items()}
    events = [json.loads(line) for line in (Path(report["run_dir"]) / "events.jsonl").read_text().splitlines()]
    rolled = [e for e in events if e.get("stage") == "recover" and (e.get("event_data") or {}).get("host") == "lab3"]
    figure("01 host lost mid-apply", "rollback events on the lost host", len(rolled))
    assert proc.returncode == 10, stderr[-2000:]
    assert statuses == {"lab1": "installed", "lab2": "installed", "lab3": "unreachable"}, statuses
    assert rolled == [] and not report["hosts"]["lab3"]["needs_rollback"]
    assert report["hosts"]["lab3"]["cause"] == "unreachable"


def test_one_run_at_a_time_per_host(fresh, isolated_env):
    locks = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "locks"
    inventory = str(fresh.inventory_path)
    first = start("install", "node_exporter", "-i", inventory, "-l", "lab1", "--json", env=isolated_env)
    wait_for(lambda: (locks / "lab1.lock").exists(), what="the first run to lock lab1")
    holder = json.loads((locks / "lab1.lock").read_text())["run_id"]

    started = time.monotonic()
    second = run_cli("install", "node_exporter", "-i", inventory, "-l", "lab1", env=isolated_env)
    assert second.returncode == 9, second.stderr
    assert f"host lab1 is being changed by run {holder}" in second.stderr
    assert time.monotonic() - started < 15, "the second run must fail at once, not wait"

    other = run_cli("install", "node_exporter", "-i", inventory, "-l", "lab2", "--json", env=isolated_env)
    assert other.returncode == 0, other.stderr
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err


def test_a_lock_left_by_a_dead_process_is_released(fresh, isolated_env):
    locks = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "locks"
    locks.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (locks / "lab3.lock").write_text(json.dumps({"run_id": "20260101T000000-dead00", "pid": int(dead.stdout)}))
    proc = run_cli("uninstall", "node_exporter", "-i", str(fresh.inventory_path), "-l", "lab3", env=isolated_env)
    assert proc.returncode == 0, proc.stderr
    assert not (locks / "lab3.lock").exists()
