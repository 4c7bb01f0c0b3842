"""Asking before changing hosts: install shows its plan, uninstall what it would remove; only on a terminal,
never with --yes or --json. The lifecycle runs with a fake executor, the command line with a fake API."""

from __future__ import annotations

import pytest

from integration_agent.lifecycle import HostReport, RunReport
from tests.unit.test_lifecycle_recovery import ScriptedExecutor, lifecycle

REMOVES = {"a": (False, "", 2), "b": (False, "", 1)}  # uninstall's tasks would change (remove) something on both


class CheckRecorder(ScriptedExecutor):
    """A scripted executor that also records whether each run was in check mode."""

    def __init__(self, script):
        super().__init__(script)
        self.check: list[bool] = []

    def run(self, playbook, inventory, *, limit, stage, check=False, **kwargs):
        self.check.append(check)
        return super().run(playbook, inventory, limit=limit, stage=stage, **kwargs)


def _asked(answer: bool, seen: list[dict[str, HostReport]]):
    def confirm(hosts: dict[str, HostReport]) -> bool:
        seen.append({h: (r.status, r.changed.get("preview")) for h, r in hosts.items()})
        return answer
    return confirm


def test_uninstall_shows_what_it_would_remove_and_asks_first(tmp_path):
    executor, seen = CheckRecorder([REMOVES, REMOVES]), []
    run = lifecycle(tmp_path, executor, [])
    run.confirm = _asked(True, seen)
    report = run.execute("uninstall")
    assert executor.calls == [("preview", "a,b"), ("uninstall", "a,b")]
    assert executor.check == [True, False]  # the preview is the uninstall entry point in check mode
    assert seen == [{"a": ("planned", 2), "b": ("planned", 1)}]
    assert {h: r.status for h, r in report.hosts.items()} == {"a": "uninstalled", "b": "uninstalled"}
    assert report.exit_code == 0


def test_a_declined_uninstall_removes_nothing(tmp_path):
    executor, seen = CheckRecorder([REMOVES]), []
    run = lifecycle(tmp_path, executor, [])
    run.confirm = _asked(False, seen)
    report = run.execute("uninstall")
    assert executor.calls == [("preview", "a,b")] and executor.check == [True]
    assert {r.status for r in report.hosts.values()} == {"unchanged"}
    assert report.hosts["a"].failures == ["not uninstalled: the plan was not confirmed"]


def test_a_host_failing_after_the_preview_is_failed_not_planned(tmp_path):
    executor = ScriptedExecutor([REMOVES, {"b": (True, "dpkg was interrupted", 0)}])
    run = lifecycle(tmp_path, executor, [])
    run.confirm = _asked(True, [])
    report = run.execute("uninstall")
    assert report.hosts["b"].status == "failed" and report.exit_code == 10


def test_without_anyone_to_ask_uninstall_runs_no_preview(tmp_path):
    executor = ScriptedExecutor([REMOVES])
    report = lifecycle(tmp_path, executor, []).execute("uninstall")
    assert executor.calls == [("uninstall", "a,b")] and report.exit_code == 0


# -- the command line -------------------------------------------------------------------------------

def _cli(monkeypatch, tmp_path, *args: str, terminal: bool, answer: str = "") -> tuple[dict, str]:
    """Run ``intagent ARGS`` against a fake run_action that asks its ``confirm`` (when given) about a host
    whose plan removes the package; return what the API got (and the answer) and the output."""
    from typer.testing import CliRunner

    import integration_agent.api as api
    import integration_agent.cli.lifecycle as lifecycle_cli
    from integration_agent.cli import app

    seen: dict = {}

    def fake_run_action(action, name, inventory, **kwargs):
        seen.update(kwargs, action=action)
        if kwargs["confirm"] is not None:
            planned = HostReport("web1", status="planned", changes=[{"task": "Remove the package"}])
            seen["answer"] = kwargs["confirm"]({"web1": planned})
        return RunReport("r1", name, action, "ok", 0, {}, str(tmp_path), "", "", "")

    monkeypatch.setattr(api, "run_action", fake_run_action)
    monkeypatch.setattr(lifecycle_cli, "interactive", lambda: terminal)
    result = CliRunner().invoke(app, [*args, "-i", str(tmp_path / "hosts.yml")], input=answer)
    assert result.exit_code == 0, result.output  # --yes is accepted by both verbs: no usage error
    return seen, result.output


@pytest.mark.parametrize("action, question", [("install", "Apply to 1 host(s)?"),
                                              ("uninstall", "Uninstall from 1 host(s)?")])
def test_on_a_terminal_both_verbs_show_the_plan_and_ask(monkeypatch, isolated_env, tmp_path, action, question):
    seen, output = _cli(monkeypatch, tmp_path, action, "node_exporter", terminal=True, answer="n\n")
    assert seen["answer"] is False
    assert "would change: Remove the package" in output and question in output
    assert output.index("would change") < output.index(question)  # the plan is shown before the question
    seen, _ = _cli(monkeypatch, tmp_path, action, "node_exporter", terminal=True, answer="y\n")
    assert seen["answer"] is True


@pytest.mark.parametrize("action", ["install", "uninstall"])
@pytest.mark.parametrize("flags, terminal", [(["--yes"], True), (["-y"], True), (["--json"], True), ([], False)])
def test_with_yes_json_or_no_terminal_nobody_is_asked(monkeypatch, isolated_env, tmp_path, action, flags, terminal):
    seen, output = _cli(monkeypatch, tmp_path, action, "node_exporter", *flags, terminal=terminal)
    assert seen["action"] == action and seen["confirm"] is None and "answer" not in seen
    assert "host(s)?" not in output
