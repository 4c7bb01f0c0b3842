"""A step added through the Python API runs in order and is recorded in the journal (docs/api.md)."""

from __future__ import annotations

import json
from pathlib import Path

from integration_agent import CustomStep, StepView, run_action
from integration_agent.catalog import Catalog
from integration_agent.settings import load_settings
from tests.conftest import REPO


def test_custom_step_after_verify(tmp_path, monkeypatch, isolated_env):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests" / "fixtures" / "plugin"))
    plugin_root = REPO / "tests" / "fixtures" / "plugin" / "intagent_example" / "integrations"
    catalog = Catalog([(plugin_root, "intagent-example")])
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    seen: list[StepView] = []

    def notify(view: StepView) -> dict:
        seen.append(view)
        return {"notified": sorted(view.hosts), "statuses": {h: r.status for h, r in view.hosts.items()}}

    settings = load_settings(env={}, cwd=tmp_path, overrides={"runs_dir": str(tmp_path / "runs"), "learn": False})
    # verify is read-only: the example integration's verify only stats a file, so the controller is untouched.
    report = run_action("verify", "example_motd", inventory, settings=settings, catalog=catalog,
                        steps=[CustomStep(name="notify", after="verify", run=notify)])
    assert report.hosts["here"].status == "failed"  # nothing was ever installed here
    assert len(seen) == 1 and seen[0].action == "verify" and seen[0].hosts["here"].status == "failed"
    journal = [json.loads(line) for line in (Path(report.run_dir) / "journal.jsonl").read_text().splitlines()]
    assert [(e["type"], e.get("step")) for e in journal] == [
        ("run_requested", None), ("step_started", "verify"), ("step_finished", "verify"),
        ("step_started", "notify"), ("note", "notify"), ("step_finished", "notify"),
        ("step_started", "learn"), ("step_finished", "learn"), ("run_finished", None)]
    assert json.loads(journal[4]["text"]) == {"notified": ["here"], "statuses": {"here": "failed"}}
