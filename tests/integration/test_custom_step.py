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


def test_a_role_ansible_cannot_parse_fails_its_hosts_with_ansibles_error(tmp_path, monkeypatch, isolated_env):
    """An integration whose role is broken YAML: every host failed, Ansible's error and its file and line in the
    report, not 'run interrupted', nothing rolled back, the run closed (nothing to resume)."""
    import shutil

    plugin_root = tmp_path / "integrations"
    shutil.copytree(REPO / "tests" / "fixtures" / "plugin" / "intagent_example" / "integrations", plugin_root)
    broken = plugin_root / "roles" / "example_motd" / "tasks" / "verify.yml"
    broken.write_text("---\n- name: Read the motd: broken\n  ansible.builtin.stat:\n    path: /etc/motd\n")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    settings = load_settings(env={}, cwd=tmp_path, overrides={"runs_dir": str(tmp_path / "runs"), "learn": False})
    report = run_action("verify", "example_motd", inventory, settings=settings,
                        catalog=Catalog([(plugin_root, "intagent-example")]))
    here = report.hosts["here"]
    assert here.status == "failed" and here.cause == "playbook_refused", here
    assert here.failures[0].startswith("verify: Ansible refused the playbook before running it: "), here.failures
    assert f"{broken}:2:" in here.failures[0] and "run interrupted" not in " ".join(here.failures)
    assert report.exit_code == 12  # the verify action's code for hosts that failed it
    journal = [json.loads(line) for line in (Path(report.run_dir) / "journal.jsonl").read_text().splitlines()]
    assert journal[-1]["type"] == "run_finished"
