"""infra_agent's secret parameters reach the role's configuration through real Ansible, and nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

from integration_agent.catalog import Catalog
from integration_agent.executor import Executor
from integration_agent.params import resolve
from tests.conftest import local_and_closed_inventory

PROXY = "http://ops:s3cret-proxy-password@proxy.example:3128"


def test_the_proxy_secret_reaches_the_merged_agent_configuration(tmp_path: Path):
    """The proxy, now a secret, still lands in ``infra_agent__managed_config`` (what config.yml writes) under
    its role variable, and its value is in no event."""
    integration = Catalog().get("infra_agent")
    params = resolve(integration, [], env={"NEW_RELIC_LICENSE_KEY": "key", "NEW_RELIC_PROXY": PROXY})
    role = integration.role_dir
    playbook = tmp_path / "config.yml"
    playbook.write_text(
        "- hosts: here\n  gather_facts: false\n"
        f"  vars_files: [{role / 'defaults' / 'main.yml'}, {role / 'vars' / 'main.yml'}]\n"
        "  tasks:\n    - name: intagent evidence\n      ansible.builtin.debug:\n        var: config_evidence\n"
        "      vars:\n        config_evidence:\n"
        "          proxy_sha1: \"{{ infra_agent__managed_config.proxy | default('') | hash('sha1') }}\"\n")
    events = tmp_path / "events.jsonl"
    result = Executor().run(playbook, local_and_closed_inventory(tmp_path), limit="here",
                            extravars=params.extravars, secrets=params.secrets, events_file=events)
    assert result.hosts["here"].succeeded, result.hosts["here"].failures
    assert result.hosts["here"].evidence == {"proxy_sha1": hashlib.sha1(PROXY.encode()).hexdigest()}
    assert "s3cret-proxy-password" not in events.read_text()


def test_every_config_task_that_sees_the_proxy_hides_it():
    """The proxy reaches the host only through ``infra_agent__managed_config``; each task using it (or what
    is merged from it) has no_log and no diff."""
    import yaml

    role = Catalog().get("infra_agent").role_dir
    touching = []
    for path in sorted((role / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            text = yaml.safe_dump(task)
            if any(name in text
                   for name in ("infra_agent_proxy", "infra_agent__managed_config", "infra_agent__config ")):
                touching.append((path.name, task["name"], task.get("no_log"), task.get("diff")))
    assert touching, "no task writes the proxy"
    assert all(no_log is True and diff is False for *_, no_log, diff in touching), touching
