"""The AWX entry playbooks in rolling batches: ``intagent_batches`` is the plays' ``serial`` and
``intagent_max_fail`` their ``max_fail_percentage``, run for real with ansible-runner (as AWX runs a job) on
six local-connection hosts and a stand-in role that changes nothing and fails where it is told to."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

HOSTS = [f"h{i}" for i in range(1, 7)]
ROLE = {
    "main.yml": "- name: Fail where the test says\n  ansible.builtin.fail:\n    msg: stand-in failure\n"
                "  when: inventory_hostname in (standin_fail_on | default([]))\n",
    "verify.yml": "- name: Evidence\n  ansible.builtin.set_fact:\n    standin_agent_evidence: {ok: true}\n",
    "uninstall.yml": "- name: Nothing to remove\n  ansible.builtin.debug:\n    msg: removed\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project with the entry playbooks, a stand-in role and an inventory of six local hosts."""
    root = tmp_path_factory.mktemp("awx-batches")
    shutil.copytree(REPO / "playbooks", root / "project" / "playbooks")
    tasks = root / "project" / "roles" / "standin_agent" / "tasks"
    tasks.mkdir(parents=True)
    for name, text in ROLE.items():
        (tasks / name).write_text(text)
    (root / "inventory").mkdir()
    (root / "inventory" / "hosts.yml").write_text(
        "all:\n  vars:\n    ansible_connection: local\n    ansible_become: false\n"
        "    ansible_python_interpreter: '{{ ansible_playbook_python }}'\n  hosts:\n"
        + "".join(f"    {h}: {{}}\n" for h in HOSTS))
    return root


def job(project: Path, playbook: str, **extravars):
    """Run one job; (status, artifacts published with set_stats, hosts that gathered facts)."""
    import ansible_runner

    with pytest.MonkeyPatch.context() as patch:  # ansible-playbook is found beside this Python
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        run = _run(ansible_runner, project, playbook, extravars)
    events = list(run.events)
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    gathered = {e["event_data"]["host"] for e in events
                if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Gather facts"}
    return run.status, stats.get("artifact_data", {}), gathered


def _run(ansible_runner, project: Path, playbook: str, extravars: dict):
    return ansible_runner.run(
        private_data_dir=str(project), playbook=playbook, quiet=True, suppress_env_files=True,
        extravars={"intagent_integration": "standin_agent", **extravars},
        envvars={"ANSIBLE_ROLES_PATH": str(project / "project" / "roles")})


def test_a_failing_canary_stops_the_job_before_any_other_host(project):
    status, artifacts, gathered = job(project, "playbooks/install.yml", intagent_batches=[1, "50%", "100%"],
                                      standin_fail_on=["h1"])
    assert status == "failed"
    assert artifacts["intagent_outcome"] == {"h1": "failed", **dict.fromkeys(HOSTS[1:], "skipped")}
    assert artifacts["intagent_failed_hosts"] == ["h1"]  # what the workflow's uninstall node rolls back
    assert gathered == {"h1"}  # no other host was touched at all


def test_a_failure_in_the_last_batch_leaves_the_earlier_ones_installed(project):
    status, artifacts, _ = job(project, "playbooks/install.yml", intagent_batches=[1, "50%", "100%"],
                               standin_fail_on=["h6"])
    assert status == "failed"
    assert artifacts["intagent_outcome"] == {**dict.fromkeys(HOSTS[:5], "installed"), "h6": "failed"}


def test_a_stopping_batch_finishes_its_other_hosts(project):
    """The failed host fails the job only after its batch ran: h1 and h3 are not stopped half way."""
    status, artifacts, gathered = job(project, "playbooks/install.yml", intagent_batches=[3], standin_fail_on=["h2"])
    assert status == "failed" and gathered == {"h1", "h2", "h3"}
    assert artifacts["intagent_outcome"] == {"h1": "installed", "h2": "failed", "h3": "installed",
                                             **dict.fromkeys(HOSTS[3:], "skipped")}


def test_failures_within_max_fail_go_on(project):
    status, artifacts, _ = job(project, "playbooks/install.yml", intagent_batches=[3], intagent_max_fail=40,
                               standin_fail_on=["h1"])
    assert status == "failed"  # the failed host still fails the job
    assert artifacts["intagent_outcome"] == {"h1": "failed", **dict.fromkeys(HOSTS[1:], "installed")}


def test_without_batches_every_host_is_one_batch(project):
    status, artifacts, gathered = job(project, "playbooks/install.yml", standin_fail_on=["h1"])
    assert status == "failed" and gathered == set(HOSTS)
    assert artifacts["intagent_outcome"] == {"h1": "failed", **dict.fromkeys(HOSTS[1:], "installed")}


def test_uninstall_rolls_out_in_batches_too(project):
    status, artifacts, gathered = job(project, "playbooks/uninstall.yml", intagent_batches=["50%"])
    assert status == "successful" and gathered == set(HOSTS)
    assert artifacts["intagent_outcome"] == dict.fromkeys(HOSTS, "uninstalled")
