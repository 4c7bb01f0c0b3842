"""Each curated role stops at its first task on a platform it does not support, naming that platform.

The roles run on the controller against facts a test module sets (an old Debian, a newer one a vendor does
not package for yet, another distribution) and in check mode, so nothing could change even if a role went on.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from integration_agent.executor import Executor, HostRun

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BUSTER = {"distribution": "Debian", "distribution_version": "10.13", "distribution_major_version": "10",
          "distribution_release": "buster", "os_family": "Debian", "architecture": "x86_64"}
TRIXIE = {**BUSTER, "distribution_version": "13.2", "distribution_major_version": "13",
          "distribution_release": "trixie"}
FEDORA = {"distribution": "Fedora", "distribution_version": "41", "distribution_major_version": "41",
          "distribution_release": "", "os_family": "RedHat", "architecture": "x86_64"}
CASES = [
    ("node_exporter", BUSTER,
     "node_exporter does not support Debian 10.13 (buster); it supports Debian 11, 12, 13; Ubuntu 22.04, 24.04."),
    ("node_exporter", FEDORA, "node_exporter does not support Fedora 41 ()"),
    ("zabbix_agent", BUSTER, "zabbix_agent does not support Debian 10.13 (buster); it supports Debian 11, 12, 13."),
    ("zabbix_agent", FEDORA, "zabbix_agent does not support Fedora 41"),
    ("infra_agent", TRIXIE,
     "infra_agent does not support Debian 13.2 (trixie, x86_64); it supports Debian 11, 12; Ubuntu"),
    ("infra_agent", {**BUSTER, "distribution_version": "12.8", "distribution_major_version": "12",
                     "architecture": "ppc64le"}, "infra_agent does not support Debian 12.8 (buster, ppc64le)"),
]


def _run_role(tmp_path: Path, role: str, facts: dict, extra: dict | None = None) -> HostRun:
    """Run ``role`` in check mode on the controller with ``facts`` (and the variables ``extra``) set; return
    what the host did."""
    (tmp_path / "library").mkdir()
    shutil.copy(FIXTURES / "library" / "fake_facts.py", tmp_path / "library")  # found beside the playbook
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{
        "hosts": "here", "gather_facts": False, "vars": {"infra_agent_license_key": "not-a-real-key", **(extra or {})},
        "tasks": [{"fake_facts": {"facts": facts}}, {"ansible.builtin.include_role": {"name": role}}]}]))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         f"      ansible_python_interpreter: {sys.executable}\n")
    run = Executor().run(playbook, inventory, check=True)
    assert run.completed and set(run.hosts) == {"here"}
    return run.hosts["here"]


def _case_id(case: tuple[str, dict, str]) -> str:
    role, facts, _ = case
    return f"{role}-{facts['distribution_release'] or facts['distribution']}-{facts['architecture']}"


@pytest.mark.parametrize(("role", "facts", "message"), CASES, ids=[_case_id(c) for c in CASES])
def test_an_unsupported_platform_fails_at_the_first_task(tmp_path, role, facts, message):
    host = _run_role(tmp_path, role, facts)
    assert host.failed == 1 and host.changed == 0 and len(host.failures) == 1, host
    assert host.ok == 3, host  # fake_facts, include_role and the argument spec check: no role task before it
    task, _, failure = host.failures[0].partition(": ")
    assert task.startswith("Check the platform is supported"), host.failures
    assert message in " ".join(failure.split()), failure
    assert failure.rstrip().endswith("Nothing was changed on this host.")


def test_node_exporters_first_task_also_refuses_bad_parameters_on_a_supported_platform(tmp_path):
    bookworm = {**BUSTER, "distribution_version": "12.8", "distribution_major_version": "12",
                "distribution_release": "bookworm"}
    host = _run_role(tmp_path, "node_exporter", bookworm, {"node_exporter_install_method": "binary"})
    assert host.failed == 1 and host.ok == 3 and host.changed == 0, host
    assert host.failures == ["Check the platform is supported and the parameters: node_exporter_install_method is "
                             "package or binary; the binary method needs node_exporter_version."]
