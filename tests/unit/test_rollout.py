"""Rolling batches: sizes as Ansible's ``serial`` splits them, the stop rule, and a batched lifecycle with a
fake executor (what runs on which host, what is skipped, the journal, the report and resume)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_agent.journal import fold
from integration_agent.lifecycle import Lifecycle, ResumePoint, resume_point
from integration_agent.params import ResolvedParams
from integration_agent.rollout import Rollout, RolloutPlan, batch_sizes, exceeds, parse_batch, parse_max_fail
from integration_agent.runs import RunDir
from tests.unit.test_lifecycle_recovery import ScriptedExecutor

SIX = ["h1", "h2", "h3", "h4", "h5", "h6"]
CHANGED = {h: (False, "", 2) for h in SIX}  # an apply that changed every host it ran on
START = "Unable to start service prometheus-node-exporter: Job for prometheus-node-exporter.service failed"


# -- parsing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("given_, expected", [(1, 1), ("3", 3), (" 25% ", "25%"), ("050%", "50%"), ("100%", "100%")])
def test_batch_sizes_parse(given_, expected):
    assert parse_batch(given_) == expected


@pytest.mark.parametrize("bad", [0, -1, "0", "0%", "101%", "abc", "1.5", 1.5, True, None, "", "%"])
def test_bad_batch_sizes_are_refused_naming_the_value(bad):
    with pytest.raises(ValueError, match="is not a number of hosts"):
        parse_batch(bad)


@pytest.mark.parametrize("given_, expected", [(0, 0.0), ("20", 20.0), ("20%", 20.0), (12.5, 12.5), ("100", 100.0)])
def test_max_fail_parses(given_, expected):
    assert parse_max_fail(given_) == expected


@pytest.mark.parametrize("bad", [-1, 101, "nan", "inf", "x%", True, None, "", [10]])
def test_bad_max_fail_is_refused(bad):
    with pytest.raises(ValueError, match="is not a percentage of the batch"):
        parse_max_fail(bad)


def test_rollout_of_names_the_bad_part():
    with pytest.raises(ValueError, match=r"^batches: 0 is not"):
        Rollout.of([1, 0])
    with pytest.raises(ValueError, match=r"^max_fail: 'lots' is not"):
        Rollout.of([1], "lots")
    with pytest.raises(ValueError, match="not a list"):
        Rollout.of("1")  # type: ignore[arg-type]


# -- planning ---------------------------------------------------------------------------------------

def test_canary_then_half_then_the_rest():
    plan = Rollout.of([1, "50%", "100%"]).plan(SIX)
    assert plan.batches == (("h1",), ("h2", "h3", "h4"), ("h5", "h6"))
    assert plan.batched and plan.max_fail == 0.0


def test_the_last_size_repeats_and_percentages_round_down_to_at_least_one():
    assert batch_sizes([2], 5) == [2, 2, 1]
    assert batch_sizes(["30%"], 10) == [3, 3, 3, 1]
    assert batch_sizes(["10%"], 3) == [1, 1, 1]  # int(0.3) is 0: at least one host
    assert batch_sizes([1, "100%"], 1) == [1]
    assert batch_sizes([], 4) == [4] and batch_sizes([1], 0) == []


def test_no_batches_is_one_unbatched_batch():
    plan = Rollout().plan(SIX)
    assert plan.batches == (tuple(SIX),) and not plan.batched and plan.max_fail is None


def _ansible_batches(serial: list, hosts: list[str]) -> list[list[str]]:
    """How ansible-playbook itself splits ``hosts`` for a play with this ``serial``."""
    from ansible.executor.playbook_executor import PlaybookExecutor

    executor = SimpleNamespace(_inventory=SimpleNamespace(get_hosts=lambda pattern, order=None: list(hosts)))
    play = SimpleNamespace(hosts="all", order=None, serial=serial)
    return PlaybookExecutor._get_serialized_batches(executor, play)  # type: ignore[arg-type]


@given(st.lists(st.one_of(st.integers(1, 12), st.integers(1, 100).map(lambda n: f"{n}%")), min_size=1, max_size=4),
       st.integers(0, 40))
@settings(deadline=None)  # the first example imports ansible
def test_batches_are_split_exactly_as_ansible_serial_splits_them(serial, count):
    hosts = [f"h{i}" for i in range(count)]
    ours = [list(batch) for batch in Rollout.of(serial).plan(hosts).batches]
    assert ours == _ansible_batches(serial, hosts)


def test_stop_rule_is_more_than_max_fail_percent_of_the_batch():
    assert exceeds(1, 1, 0) and not exceeds(0, 1, 0)
    assert not exceeds(1, 2, 50) and exceeds(2, 3, 50)
    assert not exceeds(5, 5, 100) and not exceeds(3, 3, None)
    plan = Rollout.of([2], 20).plan(SIX)
    assert plan.stops(1, 2) and not plan.stops(0, 2)


def test_the_record_gives_back_the_same_batches():
    plan = Rollout.of([1, "50%"], "10%").plan(SIX)
    record = json.loads(json.dumps(plan.to_record()))
    assert record == {"batches": [1, "50%"], "max_fail": 10.0, "plan": [["h1"], ["h2", "h3", "h4"], ["h5", "h6"]]}
    assert RolloutPlan.from_record(record) == plan


# -- a rolling lifecycle (fake executor) ------------------------------------------------------------

def rolling(tmp_path: Path, executor, batches=(1, "50%", "100%"), max_fail=None, hosts=SIX,
            run: RunDir | None = None) -> Lifecycle:
    from integration_agent.catalog import Catalog

    run = run or RunDir.create(tmp_path / "runs")
    return Lifecycle(Catalog().get("node_exporter"), tmp_path / "hosts.yml", list(hosts), ResolvedParams(), run,
                     executor=executor, sleep=lambda _: None, rollout=Rollout.of(batches, max_fail).plan(hosts))


def touched(executor) -> set[str]:
    return {host for _stage, limit in executor.calls for host in limit.split(",")}


def journal_of(report) -> list[dict]:
    return [json.loads(line) for line in (Path(report.run_dir) / "journal.jsonl").read_text().splitlines()]


def test_a_failing_canary_is_rolled_back_and_no_other_host_is_touched(tmp_path):
    executor = ScriptedExecutor([{}, {"h1": (True, START, 2)}, {"h1": (False, "", 3)}])  # plan, apply, recover
    report = rolling(tmp_path, executor).execute("install")
    assert executor.calls == [("plan", "h1"), ("apply", "h1"), ("recover", "h1")]
    assert touched(executor) == {"h1"}
    assert {h: r.status for h, r in report.hosts.items()} == {"h1": "rolled_back", **dict.fromkeys(SIX[1:], "skipped")}
    assert report.exit_code == 10 and report.status == "partial"
    assert report.rollout["stopped_after"] == 1 and "1 of 1 host(s) failed" in report.rollout["reason"]
    assert [(b["index"], b["status"]) for b in report.batches] == [(1, "failed"), (2, "skipped"), (3, "skipped")]
    assert report.hosts["h2"].failures == [f"skipped: the rollout stopped after batch 1 ({report.rollout['reason']})"]
    data = report.to_json()
    assert data["batches"][1] == {"index": 2, "hosts": ["h2", "h3", "h4"], "status": "skipped"}
    events = journal_of(report)
    assert [e["index"] for e in events if e["type"] == "batch_started"] == [1]
    finished = [e for e in events if e["type"] == "batch_finished"]
    assert finished == [{**finished[0], "index": 1, "hosts": ["h1"], "status": "failed", "failed": ["h1"],
                         "stopped": True}]
    assert all(set(e["hosts"]) <= {"h1"} for e in events if e["type"] == "step_started" and e["step"] != "learn")


def test_a_failure_in_the_last_batch_leaves_the_earlier_batches_installed(tmp_path):
    executor = ScriptedExecutor([{}, CHANGED, {},                            # batch 1: plan, apply, verify
                                 {}, CHANGED, {},                            # batch 2
                                 {}, {**CHANGED, "h6": (True, START, 2)}, {}, {}])  # batch 3: h6 fails, recover
    report = rolling(tmp_path, executor).execute("install")
    assert executor.calls[-4:] == [("plan", "h5,h6"), ("apply", "h5,h6"), ("verify", "h5"), ("recover", "h6")]
    statuses = {h: r.status for h, r in report.hosts.items()}
    assert statuses == {**dict.fromkeys(SIX[:5], "installed"), "h6": "rolled_back"}
    assert [b["status"] for b in report.batches] == ["ok", "ok", "failed"]
    assert report.exit_code == 10 and report.rollout["stopped_after"] == 3


def test_failures_within_max_fail_go_on_to_the_next_batch(tmp_path):
    executor = ScriptedExecutor([{}, CHANGED, {},
                                 {}, {"h3": (True, START, 2)}, {}, {},       # batch 2: 1 of 3 fails, rolled back
                                 {}, CHANGED, {}])
    report = rolling(tmp_path, executor, max_fail=40).execute("install")
    assert [b["status"] for b in report.batches] == ["ok", "partial", "ok"]
    assert report.rollout["stopped_after"] is None and report.hosts["h6"].status == "installed"
    assert report.exit_code == 10 and report.status == "partial"


def test_without_max_fail_any_failure_stops_a_batched_rollout(tmp_path):
    executor = ScriptedExecutor([{}, {}, {}, {}, {"h3": (True, START, 2)}, {}, {}])
    report = rolling(tmp_path, executor).execute("install")
    assert report.rollout["stopped_after"] == 2 and report.hosts["h5"].status == "skipped"
    assert touched(executor) == {"h1", "h2", "h3", "h4"}


def test_a_batched_uninstall_stops_too(tmp_path):
    executor = ScriptedExecutor([{}, {"h2": (True, "boom", 0)}])
    report = rolling(tmp_path, executor, batches=(1,), hosts=SIX[:4]).execute("uninstall")
    assert executor.calls == [("uninstall", "h1"), ("uninstall", "h2")]
    assert [r.status for r in report.hosts.values()] == ["unchanged", "failed", "skipped", "skipped"]
    assert report.exit_code == 10


def test_a_declined_plan_stops_the_rollout(tmp_path):
    executor = ScriptedExecutor([{}])
    lifecycle = rolling(tmp_path, executor, batches=(2,), hosts=SIX[:4])
    lifecycle.confirm = lambda hosts: sorted(hosts) == ["h9"]  # only ever shown its own batch: says no
    report = lifecycle.execute("install")
    assert executor.calls == [("plan", "h1,h2")]
    assert [b["status"] for b in report.batches] == ["declined", "skipped"]
    assert report.hosts["h3"].status == "skipped"


def test_without_batches_the_report_has_no_rollout(tmp_path):
    from tests.unit.test_lifecycle_recovery import lifecycle

    report = lifecycle(tmp_path, ScriptedExecutor([{}, {}, {}]), []).execute("install")
    data = report.to_json()
    assert "batches" not in data and "rollout" not in data
    assert not any(e["type"].startswith("batch") for e in journal_of(report))


# -- resume -----------------------------------------------------------------------------------------

class Interrupting(ScriptedExecutor):
    """Sets ``cancel`` during the stage call numbered ``at`` (a run interrupted there)."""

    def __init__(self, script, cancel, at: int):
        super().__init__(script)
        self.cancel, self.at = cancel, at

    def run(self, playbook, inventory, *, limit, stage, **kwargs):
        result = super().run(playbook, inventory, limit=limit, stage=stage, **kwargs)
        if len(self.calls) == self.at:
            self.cancel.set()
            result = type(result)("failed", 1, {}, False)  # interrupted: no result for any host
        return result


def _interrupted(tmp_path, at: int):
    import threading

    cancel = threading.Event()
    executor = Interrupting([{}] * 12, cancel, at)
    lifecycle = rolling(tmp_path, executor)
    lifecycle.cancel = cancel
    return lifecycle.execute("install"), executor


def test_interrupted_in_apply_of_batch_two_resumes_there_with_reconcile(tmp_path):
    report, executor = _interrupted(tmp_path, at=5)  # batch 1: plan apply verify; batch 2: plan, apply (cut)
    assert executor.calls[-1] == ("apply", "h2,h3,h4") and report.status == "interrupted"
    assert {report.hosts[h].status for h in ("h2", "h3", "h4")} == {"unknown"}
    assert {report.hosts[h].status for h in ("h5", "h6")} == {"skipped"}
    state = fold(journal_of(report))
    assert state.batch == 2 and state.batch_steps == ["plan"]
    point = resume_point("install", state)
    assert point == ResumePoint(("reconcile", "apply", "verify", "recover", "learn"), 2, in_batch=True)

    resumed = ScriptedExecutor([{}] * 8)
    again = rolling(tmp_path, resumed, run=RunDir(Path(report.run_dir)))
    for host, status in state.hosts.items():
        again.hosts[host].status = status
    final = again.execute("install", resume=point)
    assert resumed.calls == [("plan", "h2,h3,h4"), ("apply", "h2,h3,h4"), ("verify", "h2,h3,h4"),  # reconciled
                             ("plan", "h5,h6"), ("apply", "h5,h6"), ("verify", "h5,h6")]
    assert final.exit_code == 0 and [b["status"] for b in final.batches] == ["ok", "ok", "ok"]
    events = journal_of(final)
    assert [e["index"] for e in events if e["type"] == "batch_started"] == [1, 2, 3]  # batch 2 is not restarted
    assert any(e["type"] == "note" and e["text"] == "resuming batch 2" for e in events)


def test_interrupted_between_batches_resumes_with_the_next_batch(tmp_path):
    from integration_agent.journal import BatchFinished, BatchStarted, RunInterrupted, RunRequested, StepFinished

    state = fold([RunRequested("install", "node_exporter", tuple(SIX)), BatchStarted(1, ("h1",)),
                  StepFinished("plan", {}), StepFinished("apply", {}), StepFinished("verify", {}),
                  StepFinished("recover", {}), BatchFinished(1, ("h1",)), RunInterrupted(None)])
    assert resume_point("install", state) == ResumePoint(("learn",), 2)
    assert state.batches == [{"index": 1, "hosts": ["h1"], "status": "ok"}]


def test_resume_without_batches_is_as_before():
    from integration_agent.journal import RunInterrupted, RunRequested, StepFinished

    state = fold([RunRequested("install", "x", ("a",)), StepFinished("plan", {}), RunInterrupted("apply")])
    assert resume_point("install", state) == ResumePoint(("reconcile", "apply", "verify", "recover", "learn"))
    state = fold([RunRequested("uninstall", "x", ("a",)), RunInterrupted("uninstall")])
    assert resume_point("uninstall", state).steps == ("uninstall", "learn")


# -- the command line, the settings and the API -----------------------------------------------------

def _captured_cli(monkeypatch, *args: str) -> dict:
    """What ``intagent ARGS`` hands the API (a fake run_action records it; nothing runs)."""
    from typer.testing import CliRunner

    import integration_agent.api as api
    from integration_agent.cli import app

    seen: dict = {}

    def fake_run_action(action, name, inventory, **kwargs):
        seen.update(kwargs, action=action)
        return SimpleNamespace(exit_code=0, to_json=lambda: {"status": "ok"})

    monkeypatch.setattr(api, "run_action", fake_run_action)
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return seen


@pytest.mark.parametrize("action", ["install", "uninstall"])
def test_batch_and_max_fail_flags_reach_the_run(monkeypatch, isolated_env, tmp_path, action):
    seen = _captured_cli(monkeypatch, action, "node_exporter", "-i", str(tmp_path / "hosts.yml"),
                         "--batch", "1", "--batch", "50%", "--batch", "100%", "--max-fail", "20%")
    assert seen["action"] == action and seen["batches"] == [1, "50%", "100%"] and seen["max_fail"] == 20.0


def test_without_the_flags_the_settings_decide(monkeypatch, isolated_env, tmp_path):
    seen = _captured_cli(monkeypatch, "install", "node_exporter", "-i", str(tmp_path / "hosts.yml"))
    assert seen["batches"] is None and seen["max_fail"] is None


@pytest.mark.parametrize("flag, value", [("--batch", "0"), ("--batch", "150%"), ("--batch", "two"),
                                         ("--max-fail", "120"), ("--max-fail", "some")])
def test_a_bad_flag_value_is_exit_5_naming_flag_and_value(isolated_env, tmp_path, flag, value):
    from tests.conftest import run_cli

    extra = [] if flag == "--batch" else ["--batch", "1"]
    proc = run_cli("install", "node_exporter", "-i", str(tmp_path / "absent.yml"), *extra, flag, value,
                   env=isolated_env)
    assert proc.returncode == 5, proc.stderr
    assert f"intagent: error: {flag}: " in proc.stderr and repr(value) in proc.stderr


def test_a_bad_rollout_setting_is_exit_3_naming_key_and_origin(isolated_env, tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "workflow_config.yaml").write_text("rollout:\n  batches: [1, 0%]\n")
    proc = run_cli("install", "node_exporter", "-i", "hosts.yml", env=isolated_env, cwd=tmp_path)
    assert proc.returncode == 3 and "rollout.batches" in proc.stderr and "'0%'" in proc.stderr, proc.stderr
    proc = run_cli("config", env={**isolated_env, "INTAGENT_ROLLOUT_MAX_FAIL": "150"}, cwd=tmp_path.parent)
    assert proc.returncode == 3 and "INTAGENT_ROLLOUT_MAX_FAIL" in proc.stderr and "150" in proc.stderr


def test_rollout_settings_from_file_and_environment(tmp_path, isolated_env):
    from integration_agent.settings import load_settings

    (tmp_path / "workflow_config.yaml").write_text("rollout:\n  batches: [1, '25%']\n  max_fail: 10\n")
    settings = load_settings(cwd=tmp_path, env={"INTAGENT_ROLLOUT_BATCHES": "2,100%"})
    assert settings.rollout.rollout() == Rollout((2, "100%"), 10.0)
    assert load_settings(cwd=tmp_path.parent, env={}).rollout.rollout() == Rollout()


def test_flags_win_over_settings_one_by_one_and_only_install_and_uninstall_roll_out():
    from integration_agent.api import _rollout
    from integration_agent.errors import IntegrationError
    from integration_agent.settings import Settings

    settings = Settings.model_validate({"rollout": {"batches": [2], "max_fail": 10}})
    assert _rollout("install", settings, None, None) == Rollout((2,), 10.0)
    assert _rollout("uninstall", settings, [1, "50%"], None) == Rollout((1, "50%"), 10.0)
    assert _rollout("install", settings, None, 0) == Rollout((2,), 0.0)
    assert _rollout("verify", settings, None, None) == Rollout()  # the settings do not batch a verify
    with pytest.raises(IntegrationError, match="install and uninstall"):
        _rollout("plan", settings, [1], None)
    with pytest.raises(IntegrationError, match="batches: 0 is not"):
        _rollout("install", settings, [0], None)


def test_resume_restores_what_earlier_batches_changed():
    from integration_agent.api import _restore_changes
    from integration_agent.lifecycle import HostReport

    hosts = {"h1": HostReport("h1", status="verified"), "h2": HostReport("h2")}
    _restore_changes(hosts, [{"type": "step_finished", "step": "apply", "hosts": {"h1": {"status": "applied",
                                                                                         "changed": 3}}},
                             {"type": "note", "text": "x"}])
    assert hosts["h1"].changed == {"apply": 3} and hosts["h2"].changed == {}


def test_runs_show_summarises_batch_events():
    from integration_agent.cli.runs import _summary

    assert _summary({"type": "batch_started", "index": 2, "hosts": ["h2", "h3"]}) == "batch 2: h2, h3"
    stopped = {"type": "batch_finished", "index": 1, "status": "failed", "failed": ["h1"], "stopped": True,
               "reason": "1 of 1 host(s) failed"}
    assert _summary(stopped) == "batch 1 failed (failed: h1); rollout stopped: 1 of 1 host(s) failed"
    assert _summary({"type": "batch_finished", "index": 3, "status": "ok"}) == "batch 3 ok"


def test_the_report_table_lists_the_batches(tmp_path, capsys):
    from integration_agent.cli.output import print_report

    report = rolling(tmp_path, ScriptedExecutor([{}, {"h1": (True, START, 2)}, {}])).execute("install")
    print_report(report)
    out = capsys.readouterr().out
    assert "skipped" in out and "stopped after batch 1: 1 of 1 host(s) failed" in out and "h2, h3, h4" in out
