"""The collection intagent.integrations: built from roles/, installed offline, documented, lint-clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from integration_agent.collection import VERSION, curated_roles, stage
from integration_agent.executor import ansible_env
from integration_agent.paths import ROLES_DIR
from tests.conftest import REPO, run_cli

BIN = Path(sys.executable).parent


def tool(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an Ansible command line tool with no project ansible.cfg in effect, as a user's own playbook would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "INTAGENT_"))}
    base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**base, **(env or {})}, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = run_cli("collection", "build", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    tarball = Path(proc.stdout.strip())
    assert tarball == out / f"intagent-integrations-{VERSION}.tar.gz" and tarball.is_file()
    return tarball


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("collections")
    proc = tool("ansible-galaxy", "collection", "install", "--offline", "-p", str(path), str(built), cwd=path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


def test_tarball_holds_every_curated_role_and_no_test_scaffolding(built):
    with tarfile.open(built) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    roles = {p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "argument_specs.yml").is_file()}
    assert roles and {n.split("/")[1] for n in names if n.startswith("roles/") and n.count("/") >= 1} == roles
    for role in roles:
        for entry in ("main", "verify", "uninstall"):
            assert f"roles/{role}/tasks/{entry}.yml" in names
        assert f"roles/{role}/README.md" in names and f"roles/{role}/meta/argument_specs.yml" in names
    assert {"playbooks/install.yml", "playbooks/verify.yml", "playbooks/uninstall.yml",
            "meta/runtime.yml"} <= set(names)
    assert not [n for n in names if "molecule" in n or "__pycache__" in n or n.endswith(".pyc")]
    info = manifest["collection_info"]
    assert info["namespace"] == "intagent" and info["name"] == "integrations"


def test_role_filters_become_collection_filters_called_by_full_name(installed, tmp_path):
    # Ansible loads no plugin from inside a collection's role: infra_agent's filter must be the collection's.
    root = installed / "ansible_collections" / "intagent" / "integrations"
    assert not list(root.glob("roles/*/filter_plugins")) and (root / "plugins/filter/infra_agent_config.py").is_file()
    config_tasks = (root / "roles/infra_agent/tasks/config.yml").read_text()
    assert "| intagent.integrations.infra_agent_parse_config" in config_tasks
    assert "| infra_agent_parse_config" in (ROLES_DIR / "infra_agent/tasks/config.yml").read_text()  # unchanged
    play = tmp_path / "parse.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - ansible.builtin.assert:\n"
                    "        that: \"('proxy: http://p:3128' | intagent.integrations.infra_agent_parse_config)"
                    "['config']['proxy'] == 'http://p:3128'\"\n")
    proc = tool("ansible-playbook", "-i", "localhost,", "-c", "local", str(play), cwd=tmp_path,
                env={"ANSIBLE_COLLECTIONS_PATH": str(installed)})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_installs_offline_and_is_listed(installed):
    proc = tool("ansible-galaxy", "collection", "list", "-p", str(installed), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert any(c.get("intagent.integrations", {}).get("version") == VERSION for c in listed.values()), listed


def test_role_argument_specs_are_documented_by_ansible_doc(installed):
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed)}
    proc = tool("ansible-doc", "-t", "role", "--json", "intagent.integrations.node_exporter", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["intagent.integrations.node_exporter"]
    assert set(doc["entry_points"]) == {"main", "verify", "uninstall"}
    assert doc["entry_points"]["main"]["options"]["node_exporter_install_method"]["choices"] == ["package", "binary"]
    listing = tool("ansible-doc", "-t", "role", "-l", "intagent.integrations", env=env)
    listed = {line.rstrip(":") for line in listing.stdout.splitlines() if line and not line.startswith(" ")}
    assert listed == {f"intagent.integrations.{r.name}" for r in curated_roles()}, listing.stdout


def test_entry_playbooks_resolve_by_full_name(installed, tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n")
    env = {"ANSIBLE_COLLECTIONS_PATH": str(installed)}
    for action in ("install", "verify", "uninstall"):
        proc = tool("ansible-playbook", "--syntax-check", "-i", str(inventory), f"intagent.integrations.{action}",
                    "-e", "intagent_integration=node_exporter", env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_role_validates_its_arguments_before_touching_a_host(installed, tmp_path):
    """A wrong type is refused by the argument spec before any connection (the host's port is closed)."""
    playbook = tmp_path / "site.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Use the role by its full name", "hosts": "all", "gather_facts": False,
        "roles": [{"role": "intagent.integrations.node_exporter", "vars": {"node_exporter_install_method": "tarball"}}],
    }]))
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    proc = tool("ansible-playbook", "-i", str(inventory), str(playbook),
                env={"ANSIBLE_COLLECTIONS_PATH": str(installed)}, cwd=tmp_path)
    assert proc.returncode != 0
    assert "node_exporter_install_method" in proc.stdout, proc.stdout
    assert "Validation of arguments failed" in proc.stdout, proc.stdout
    assert "UNREACHABLE" not in proc.stdout


def _lint(target: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor", str(target)],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **ansible_env()})


def test_collection_passes_ansible_lint_production(tmp_path):
    source = stage(tmp_path / "ansible_collections" / "intagent" / "integrations")
    proc = _lint(source, source)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "production" in proc.stderr and "passed" in proc.stderr


def test_entry_playbooks_pass_ansible_lint_production():
    proc = _lint(REPO / "playbooks", REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = re.search(r"in (\d+) files processed of (\d+) encountered", proc.stderr)
    assert counts, proc.stderr  # every file lint found was processed, and that is at least every playbook
    assert int(counts[1]) == int(counts[2]) >= len(list((REPO / "playbooks").rglob("*.yml"))) >= 4
