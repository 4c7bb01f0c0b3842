"""Recovery decisions per failure class, with a fake executor (the real one is exercised on lab hosts)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import yaml

from integration_agent.catalog import Catalog
from integration_agent.executor import HostRun, PlaybookRun
from integration_agent.lifecycle import CustomStep, Lifecycle
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


class TwoPlayExecutor(ScriptedExecutor):
    """Like ScriptedExecutor, and an apply run asked for later plays also answers them: {host: failed}."""

    def __init__(self, script, verify):
        super().__init__(script)
        self.verify = verify
        self.playbooks: list[str] = []

    def run(self, playbook, inventory, *, limit, stage, later=(), **kwargs):
        self.playbooks.append(Path(playbook).name)
        result = super().run(playbook, inventory, limit=limit, stage=stage, **kwargs)
        if "verify" in later:
            result.later["verify"] = {
                h: HostRun(h, ok=1, failed=int(self.verify[h]), evidence={"active": not self.verify[h]},
                           failures=["Check: not working"] if self.verify[h] else [])
                for h in limit.split(",") if not result.hosts[h].failed}
        return result


def test_an_install_verifies_in_the_apply_playbooks_second_play(tmp_path):
    changed = {"a": (False, "", 2), "b": (False, "", 2)}
    executor = TwoPlayExecutor([{}, changed, {}], verify={"a": False, "b": True})  # plan, apply (+ verify), recover
    report = lifecycle(tmp_path, executor, []).execute("install")
    assert executor.calls == [("plan", "a,b"), ("apply", "a,b"), ("recover", "b")]  # no verify playbook of its own
    assert executor.playbooks == ["main.yml", "apply.yml", "uninstall.yml"]
    apply = (tmp_path / "runs").glob("*/playbooks/apply.yml")
    assert [p.read_text().count("- name: intagent node_exporter") for p in apply] == [2]  # main's play, verify's
    assert report.hosts["a"].status == "installed" and report.hosts["a"].evidence == {"active": True}
    assert report.hosts["b"].status == "rolled_back"
    assert "verify: Check: not working" in report.hosts["b"].failures


def test_a_step_between_apply_and_verify_gets_a_verify_playbook_of_its_own(tmp_path):
    executor = TwoPlayExecutor([{}, {}, {}], verify={"a": False, "b": False})
    integration = Catalog().get("node_exporter")
    run = RunDir.create(tmp_path / "runs")
    seen = []
    step = CustomStep("look", after="apply", run=lambda view: seen.append(dict(view.hosts)))
    report = Lifecycle(integration, tmp_path / "hosts.yml", ["a", "b"], ResolvedParams(), run, executor=executor,
                       steps=(step,)).execute("install")
    assert [c[0] for c in executor.calls] == ["plan", "apply", "verify"]
    assert executor.playbooks == ["main.yml", "main.yml", "verify.yml"]
    assert seen and report.exit_code == 0


class ChainedExecutor(TwoPlayExecutor):
    """An executor whose plays set their own check mode (intagent's strategy): a plan run asked for later plays
    answers apply from the next entry of the script too, and verify from ``verify``."""

    play_modes = True

    def __init__(self, script, verify, completed=True):
        super().__init__(script, verify)
        self.completed = completed
        self.later: list[tuple[str, ...]] = []
        self.flags: list[tuple[bool, bool]] = []

    def run(self, playbook, inventory, *, limit, stage, later=(), check=False, diff=False, **kwargs):
        self.later.append(tuple(later))
        self.flags.append((check, diff))
        if "apply" not in later:
            return super().run(playbook, inventory, limit=limit, stage=stage, later=later, **kwargs)
        self.playbooks.append(Path(playbook).name)
        plan = ScriptedExecutor.run(self, playbook, inventory, limit=limit, stage=stage)
        on_event = kwargs.get("on_event")
        if on_event is not None:  # what the journal hears of the playbook: the plan's failures, then apply's start
            for host in (h for h, r in plan.hosts.items() if r.failed):
                on_event({"event": "runner_on_failed", "stage": "plan",
                          "event_data": {"host": host, "task": "Check", "res": {"msg": "unsupported"}}})
            on_event({"event": "playbook_on_play_start", "stage": "apply", "event_data": {}})
        applied = ScriptedExecutor.run(self, playbook, inventory, limit=limit, stage="apply")
        self.calls.pop()  # one playbook: the plan's call
        plan.completed = self.completed
        plan.later["apply"] = {h: r for h, r in applied.hosts.items() if not plan.hosts[h].failed}
        if "verify" in later:
            plan.later["verify"] = {h: HostRun(h, ok=1, failed=int(self.verify[h]), evidence={"up": not self.verify[h]},
                                               failures=["Check: not working"] if self.verify[h] else [])
                                    for h, r in plan.later["apply"].items() if not r.failed}
        return plan


def test_with_intagents_strategy_an_install_is_one_playbook_of_plan_apply_and_verify(tmp_path):
    executor = ChainedExecutor([{}, {"a": (False, "", 2), "b": (False, "", 1)}, {}], verify={"a": False, "b": True})
    report = lifecycle(tmp_path, executor, []).execute("install")
    assert executor.calls == [("plan", "a,b"), ("recover", "b")]  # no apply or verify playbook of their own
    assert executor.playbooks == ["plan.yml", "uninstall.yml"] and executor.later[0] == ("apply", "verify")
    assert executor.flags[0] == (False, False)  # the plays set their modes: no --check for the whole playbook
    [playbook] = (tmp_path / "runs").glob("*/playbooks/plan.yml")
    text = playbook.read_text()
    assert [play["name"] for play in yaml.safe_load(text)] == [
        "intagent node_exporter main (dry run)",
        "intagent node_exporter main (install.yml, its preflight checks passed in the dry run)",
        "intagent node_exporter verify"]
    assert text.count("check_mode: true") == 1
    assert text.count("rolespec_validate: false") == 2  # the plan play checked what apply's and verify's ask
    # node_exporter's main is its preflight checks then its changes: the apply play imports the changes alone.
    assert [line.strip() for line in text.splitlines() if "tasks_from:" in line] == [
        "tasks_from: main", "tasks_from: install", "tasks_from: verify"]
    assert report.hosts["a"].status == "installed" and report.hosts["a"].evidence == {"up": True}
    assert report.hosts["a"].changed == {"plan": 0, "apply": 2, "verify": 0}
    assert report.hosts["b"].status == "rolled_back" and "verify: Check: not working" in report.hosts["b"].failures
    journal = [json.loads(line) for line in Path(report.run_dir, "journal.jsonl").read_text().splitlines()]
    assert [(e["type"], e.get("step")) for e in journal][:8] == [
        ("run_requested", None), ("step_started", "plan"), ("step_finished", "plan"), ("step_started", "apply"),
        ("step_finished", "apply"), ("step_started", "verify"), ("step_finished", "verify"),
        ("step_started", "recover")]


def test_a_host_that_fails_the_plan_play_is_not_applied_and_a_transient_failure_is_retried_alone(tmp_path):
    lock = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"
    executor = ChainedExecutor([{"a": (True, "unsupported", 0)}, {"b": (True, lock, 0)}, {"b": (False, "", 2)}],
                               verify={"a": False, "b": False})
    executor.script.insert(2, {})  # the retry's apply playbook answers b, then its verify play
    report = lifecycle(tmp_path, executor, [4.0, 4.0, 4.0]).execute("install")
    assert executor.calls == [("plan", "a,b"), ("apply", "b")]
    assert executor.playbooks == ["plan.yml", "apply.yml"]
    assert report.hosts["a"].status == "failed" and report.hosts["a"].changed.get("apply") is None
    assert report.hosts["b"].status == "unchanged" and any("transient" in f for f in report.hosts["b"].failures)
    journal = [json.loads(line) for line in Path(report.run_dir, "journal.jsonl").read_text().splitlines()]
    planned = next(e for e in journal if e["type"] == "step_finished" and e["step"] == "plan")
    assert planned["hosts"]["a"]["status"] == "failed" and planned["hosts"]["b"]["status"] == "planned"
    assert planned["hosts"]["a"]["failures"] == ["plan: Check: unsupported"]
    assert next(e for e in journal if e["type"] == "step_started" and e["step"] == "apply")["hosts"] == ["b"]


def test_asked_first_or_held_to_a_saved_plan_the_plan_stays_a_playbook_of_its_own(tmp_path):
    executor = ChainedExecutor([{}, {}, {}], verify={"a": False, "b": False})
    integration = Catalog().get("node_exporter")
    run = RunDir.create(tmp_path / "runs")
    report = Lifecycle(integration, tmp_path / "hosts.yml", ["a", "b"], ResolvedParams(), run, executor=executor,
                       confirm=lambda hosts: True).execute("install")
    assert [c[0] for c in executor.calls] == ["plan", "apply"] and executor.later[:2] == [(), ("verify",)]
    assert executor.flags[0] == (True, True) and report.exit_code == 0


def test_a_chained_install_stopped_part_way_leaves_its_hosts_unknown(tmp_path):
    executor = ChainedExecutor([{}, {}], verify={"a": False, "b": False}, completed=False)
    life = lifecycle(tmp_path, executor, [])
    life.cancel.set()
    report = life.execute("install")
    assert [c[0] for c in executor.calls] == ["plan"]
    assert {h: r.status for h, r in report.hosts.items()} == {"a": "unknown", "b": "unknown"}
    assert report.status == "interrupted"
    journal = [json.loads(line) for line in Path(report.run_dir, "journal.jsonl").read_text().splitlines()]
    assert [(e["type"], e.get("step")) for e in journal] == [  # known to have started changing hosts
        ("run_requested", None), ("step_started", "plan"), ("step_finished", "plan"), ("step_started", "apply"),
        ("run_interrupted", "apply")]


def test_a_later_play_skips_only_an_argument_spec_an_earlier_one_checked_in_full():
    from integration_agent.lifecycle import spec_covered

    main = {"options": {"x_port": {"type": "int", "default": 1, "description": "the port"},
                        "x_mode": {"type": "str", "choices": ["a", "b"]}}}
    verify = {"short_description": "Prove it", "options": {"x_port": {"type": "int", "default": 1,
                                                                      "description": "where it listens"}}}
    assert spec_covered({"main": main, "verify": verify}, "verify", ["main"])
    assert spec_covered({"main": main}, "verify", ["main"])  # no spec: nothing to check
    stricter = {"options": {"x_port": {"type": "int", "default": 1, "choices": [1, 2]}}}
    assert not spec_covered({"main": main, "verify": stricter}, "verify", ["main"])
    assert not spec_covered({"main": main, "verify": {"options": {"x_other": {"type": "str"}}}}, "verify", ["main"])
    rule = {**verify, "required_if": [["x_port", 1, ["x_mode"]]]}
    assert not spec_covered({"main": main, "verify": rule}, "verify", ["main"])


def test_a_split_main_entry_point_is_its_preflight_checks_then_its_changes_and_nothing_else():
    """The contract that lets a chained playbook's apply play skip preflight.yml (``preflight_split``): main.yml
    imports the two files and nothing else, and the checks change nothing and register nothing another task
    file of the role reads."""
    import re

    from integration_agent.lifecycle import PREFLIGHT_SPLIT, preflight_split

    read_only = {"ansible.builtin.assert", "ansible.builtin.fail", "ansible.builtin.stat"}
    split = [i for i in Catalog().integrations.values() if preflight_split(i.role_dir, "main")]
    assert "node_exporter" in {i.name for i in split}
    for integration in split:
        tasks = integration.role_dir / "tasks"
        main = yaml.safe_load((tasks / "main.yml").read_text())
        assert [t.get("ansible.builtin.import_tasks") for t in main] == [f"{n}.yml" for n in PREFLIGHT_SPLIT]
        checks = yaml.safe_load((tasks / "preflight.yml").read_text())
        modules = {next(k for k in t if k.startswith("ansible.builtin.")) for t in checks}
        assert modules <= read_only, (integration.name, modules - read_only)
        registered = {t["register"] for t in checks if "register" in t}
        others = "".join(p.read_text() for p in tasks.glob("*.yml") if p.name != "preflight.yml")
        assert not [r for r in registered if re.search(rf"\b{r}\b", others)], integration.name
    assert not preflight_split(split[0].role_dir, "verify")


def test_verify_reads_an_exporters_service_state_after_probing_it_until_it_settles():
    """An exporter that cannot bind its port dies right after its start and may be restarted a few times: a
    verify that read the service state first, or once, could record it active. Each curated verify that reads
    a service's state and probes an HTTP endpoint reads the state after the probe, retried until it settles."""
    checked = []
    for integration in Catalog().integrations.values():
        path = integration.role_dir / "tasks" / "verify.yml"
        if not path.is_file():
            continue
        tasks = yaml.safe_load(path.read_text())
        modules = [next((k for k in t if k.startswith("ansible.builtin.")), "") for t in tasks]
        if "ansible.builtin.uri" not in modules or "ansible.builtin.systemd_service" not in modules:
            continue
        read = modules.index("ansible.builtin.systemd_service")
        state = tasks[read]
        assert "state" not in state["ansible.builtin.systemd_service"], integration.name  # a read, not a change
        assert read > modules.index("ansible.builtin.uri"), integration.name
        assert state.get("retries") and "ActiveState" in state.get("until", ""), integration.name
        checked.append(integration.name)
    assert {"node_exporter", "mysqld_exporter", "postgres_exporter", "nginx_exporter",
            "redis_exporter"} <= set(checked), checked
