"""Recovery decisions per failure class, with a fake executor (the real one is exercised on lab hosts)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from integration_agent.catalog import Catalog
from integration_agent.executor import HostRun, PlaybookRun
from integration_agent.lifecycle import Lifecycle
from integration_agent.params import ResolvedParams
from integration_agent.runs import RunDir


class ScriptedExecutor:
    """Answers each stage's run from a script of {host: (failed, message, changed)} per call."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[tuple[str, str]] = []

    def run(self, playbook, inventory, *, limit, stage, **_):
        self.calls.append((stage, limit))
        outcome = self.script.pop(0)
        hosts = {}
        for host in limit.split(","):
            failed, message, changed = outcome.get(host, (False, "", 0))
            hosts[host] = HostRun(host, ok=1, changed=changed, failed=int(failed),
                                  failures=[f"Install the Debian package: {message}"] if failed else [])
        return PlaybookRun("failed" if any(h.failed for h in hosts.values()) else "successful", 0, hosts, True)

    def stop_leftovers(self):
        return []

    def fact_cache(self):
        return contextlib.nullcontext()


def lifecycle(tmp_path: Path, executor, sleeps: list[float]) -> Lifecycle:
    integration = Catalog().get("node_exporter")
    run = RunDir.create(tmp_path / "runs")
    return Lifecycle(integration, tmp_path / "hosts.yml", ["a", "b"], ResolvedParams(), run, executor=executor,
                     sleep=sleeps.append)


def test_package_manager_lock_is_transient_and_retried_with_backoff(tmp_path):
    lock = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"
    executor = ScriptedExecutor([
        {},                                              # plan
        {"a": (True, lock, 0), "b": (False, "", 2)},     # apply: a is locked out
        {"a": (True, lock, 0)},                          # retry 1: still locked
        {"a": (False, "", 2)},                           # retry 2: done
        {}, {},                                          # verify (both), nothing to recover
    ])
    sleeps: list[float] = []
    report = lifecycle(tmp_path, executor, sleeps).execute("install")
    assert [c[0] for c in executor.calls] == ["plan", "apply", "apply", "apply", "verify"]
    assert executor.calls[2][1] == "a" and sleeps == [2.0, 4.0]
    assert {h: r.status for h, r in report.hosts.items()} == {"a": "installed", "b": "installed"}
    assert report.exit_code == 0


def test_unreachable_repository_is_not_rolled_back_on_an_untouched_host(tmp_path):
    fetch = ("Failed to update apt cache: W:Failed to fetch http://10.231.0.1:8080/./InRelease  "
             "Could not connect to 10.231.0.1:8080 (10.231.0.1). - connect (111: Connection refused)")
    executor = ScriptedExecutor([{}, {"a": (True, fetch, 0), "b": (False, "", 2)}, {"b": (False, "", 0)}])
    report = lifecycle(tmp_path, executor, []).execute("install")
    assert [c[0] for c in executor.calls] == ["plan", "apply", "verify"]  # no recover run for a
    assert report.hosts["a"].status == "failed" and not report.hosts["a"].needs_rollback
    assert report.hosts["b"].status == "installed" and report.exit_code == 10


def test_a_persistent_failure_is_rolled_back(tmp_path):
    start = "Unable to start service prometheus-node-exporter: Job for prometheus-node-exporter.service failed"
    executor = ScriptedExecutor([{}, {"a": (True, start, 2)}, {"b": (False, "", 0)}, {"a": (False, "", 3)}])
    report = lifecycle(tmp_path, executor, []).execute("install")
    assert [c for c in executor.calls] == [("plan", "a,b"), ("apply", "a,b"), ("verify", "b"), ("recover", "a")]
    assert report.hosts["a"].status == "rolled_back"


def test_rollbacks_read_the_run_of_the_uninstall_entry_point():
    from integration_agent.recovery import Rollback, rollbacks

    result = PlaybookRun("failed", 2, {"web1": HostRun("web1", changed=3),
                                       "web2": HostRun("web2", failed=1, failures=["apt: held package"])}, True)
    assert rollbacks(["web1", "web2", "web3"], result) == {
        "web1": Rollback(True), "web2": Rollback(False, ("recover: apt: held package",)),
        "web3": Rollback(False, ("recover: no result",))}
