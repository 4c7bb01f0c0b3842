"""The error tree is the exit-code table: every documented code has its class, and every class is used."""

from __future__ import annotations

import re
import threading

import pytest

from integration_agent import errors
from integration_agent.errors import IntagentError, Interrupted
from tests.conftest import REPO

PACKAGE = REPO / "integration_agent"


def _classes() -> list[type[IntagentError]]:
    found, todo = [], [IntagentError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in found if c.__module__ == errors.__name__]


def _readme_codes() -> set[int]:
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Exit codes"):].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d+) \|", table, re.M)}


def test_every_exit_code_in_the_readme_is_an_error_class_and_back():
    codes = {c.exit_code for c in _classes()}
    assert _readme_codes() == codes | {errors.EXIT_OK, errors.EXIT_USAGE}


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_every_error_class_is_used_by_the_package(cls):
    """A documented code no code path can produce is a lie in the table (exit 130 was set by hand once)."""
    if cls is IntagentError:
        return
    pattern = re.compile(rf"\b{cls.__name__}\b")
    users = [p for p in PACKAGE.rglob("*.py") if p.name != "errors.py" and pattern.search(p.read_text())]
    assert users, f"{cls.__name__} (exit {cls.exit_code}) is documented but nothing raises it or exits with it"


def test_an_interrupted_run_reports_interrupteds_exit_code(tmp_path):
    from tests.unit.test_lifecycle_recovery import lifecycle
    from tests.unit.test_rollout import Interrupting

    cancel = threading.Event()
    run = lifecycle(tmp_path, Interrupting([{}] * 3, cancel, at=2), [])  # stopped during apply
    run.cancel = cancel
    report = run.execute("install")
    assert report.status == "interrupted" and report.exit_code == Interrupted.exit_code == 130
    assert {h.status for h in report.hosts.values()} == {"unknown"}


def test_ctrl_c_outside_a_run_exits_with_interrupteds_code(monkeypatch, capsys):
    import integration_agent.cli as cli

    def interrupted(**_):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as info:
        cli.main(["list"])
    assert info.value.code == Interrupted.exit_code
    assert "intagent: interrupted" in capsys.readouterr().err
