"""Ansible and AWX on lab hosts: the collection by full name, and the entry playbooks run as AWX runs a job.

An AWX job is ansible-runner on a private data dir holding a copy of the project (``project/``), the
inventory as a script (``inventory/hosts``) and the job's extra variables and environment
(``env/extravars``, ``env/envvars``, where credentials are injected). AWX keeps the job's stdout and
events, and the ``set_stats`` data of the final stats event (``artifact_data``) as the job's artifacts,
which a workflow passes to the next node as extra variables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, node_exporter_metrics, run_cli, ssh
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2"]
BIN = Path(sys.executable).parent
MIRROR_VARS = {"infra_agent_apt_source": "deb [trusted=yes] http://10.231.0.1:8080/ ./", "infra_agent_gpg_key_url": ""}



def serves_metrics(lab, host: str) -> bool:
    return "node_exporter_build_info" in node_exporter_metrics(lab, host)


def node_exporter_installed(lab, host: str) -> bool:
    return ssh(lab, host, "dpkg -l prometheus-node-exporter 2>/dev/null | grep -q '^ii'").returncode == 0


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "INTAGENT_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def fresh(lab):
    lab.reset(HOSTS)
    return lab


# -- the collection, used by full name from a user's own playbook --------------------------------------

def test_collection_role_by_full_name_installs_verifies_and_uninstalls(fresh, tmp_path):
    built = run_cli("collection", "build", "--out", str(tmp_path / "dist"))
    assert built.returncode == 0, built.stderr
    collections = tmp_path / "collections"
    env = {**clean_env(), "ANSIBLE_COLLECTIONS_PATH": str(collections)}
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
                           built.stdout.strip()], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr

    def play(name: str, body: dict) -> subprocess.CompletedProcess[str]:
        """Run one play on lab1 with cwd tmp_path: neither the project's ansible.cfg nor its roles/ are in
        reach, only the collection."""
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump([{"name": name, "hosts": "lab1", "become": True, **body}], sort_keys=False))
        run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(fresh.inventory_path), str(path)],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:]
        return run

    run = play("site", {
        "roles": [{"role": "intagent.integrations.node_exporter"}],
        "post_tasks": [{"name": "Prove it works", "ansible.builtin.include_role": {
            "name": "intagent.integrations.node_exporter", "tasks_from": "verify"}}]})
    assert "intagent.integrations.node_exporter : " in run.stdout
    assert serves_metrics(fresh, "lab1") and not node_exporter_installed(fresh, "lab2")

    play("remove", {"gather_facts": True, "tasks": [{"name": "Uninstall", "ansible.builtin.include_role": {
        "name": "intagent.integrations.node_exporter", "tasks_from": "uninstall"}}]})
    assert not node_exporter_installed(fresh, "lab1") and not serves_metrics(fresh, "lab1")


def test_collection_infra_agent_merges_an_existing_config_by_full_name(fresh, tmp_path):
    # The role parses the existing /etc/newrelic-infra.yml with its filter: in the collection that filter is
    # the collection's own, called by its full name (a role's filter_plugins are not loaded there).
    fresh.add_packages([build_standin_deb(tmp_path / "standin")])
    assert ssh(fresh, "lab1", "printf 'proxy: http://user-proxy:3128\\n' > /etc/newrelic-infra.yml").returncode == 0
    built = run_cli("collection", "build", "--out", str(tmp_path / "dist"))
    assert built.returncode == 0, built.stderr
    collections = tmp_path / "collections"
    env = {**clean_env(), "ANSIBLE_COLLECTIONS_PATH": str(collections)}
    installed = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p",
                                str(collections), built.stdout.strip()], capture_output=True, env=env, cwd=tmp_path,
                               timeout=120)
    assert installed.returncode == 0
    key = f"collection{uuid.uuid4().hex}"
    play = tmp_path / "site.yml"
    play.write_text(yaml.safe_dump([{"hosts": "lab1", "become": True, "roles": [{
        "role": "intagent.integrations.infra_agent", "vars": {**MIRROR_VARS, "infra_agent_license_key": key}}]}]))
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(fresh.inventory_path), str(play)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    config = ssh(fresh, "lab1", "cat /etc/newrelic-infra.yml").stdout
    assert "proxy: http://user-proxy:3128" in config and key in config  # merged, not overwritten
    assert key not in run.stdout


# -- the entry playbooks as AWX job templates ----------------------------------------------------------

class AwxJob:
    """A private data dir laid out the way AWX lays one out for a job, run with ansible-runner's CLI."""

    def __init__(self, root: Path, lab, hosts: list[str], *, credential_env: dict[str, str] | None = None) -> None:
        self.root = root
        project = root / "project"
        project.mkdir(parents=True)
        for item in ("ansible.cfg", "playbooks", "roles"):  # what a project update checks out that matters here
            source = REPO / item
            if source.is_dir():
                shutil.copytree(source, project / item, ignore=shutil.ignore_patterns("molecule", "__pycache__"))
            else:
                shutil.copy(source, project / item)
        self._inventory_script(lab, hosts)
        (root / "env").mkdir()
        # What AWX puts in the job's environment: its roles/collections paths around the project's
        # roles_path, colour on, host key checking off, and the credentials' injected variables.
        envvars = {
            "ANSIBLE_ROLES_PATH": f"{root}/requirements_roles:roles:~/.ansible/roles:/usr/share/ansible/roles",
            "ANSIBLE_COLLECTIONS_PATHS": f"{root}/requirements_collections:~/.ansible/collections",
            "ANSIBLE_FORCE_COLOR": "True", "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{root}/cp",
            "JOB_ID": "42", **(credential_env or {}),
        }
        (root / "env" / "envvars").write_text(json.dumps(envvars))

    def _inventory_script(self, lab, hosts: list[str]) -> None:
        listing = subprocess.run([str(BIN / "ansible-inventory"), "-i", str(lab.inventory_path), "--list"],
                                 capture_output=True, text=True, env=clean_env(), check=True, timeout=60)
        data = json.loads(listing.stdout)
        data["_meta"]["hostvars"] = {h: v for h, v in data["_meta"]["hostvars"].items() if h in hosts}
        data = {"all": {"children": ["lab"]}, "lab": {"hosts": hosts}, "_meta": data["_meta"]}
        script = self.root / "inventory" / "hosts"
        script.parent.mkdir()
        script.write_text(f"#!{sys.executable}\nimport json\nprint(json.dumps({data!r}))\n")
        script.chmod(0o700)

    def run(self, ident: str, playbook: str, extravars: dict[str, Any], limit: str | None = None,
            verbosity: int = 0, check: bool = False) -> JobResult:
        (self.root / "env" / "extravars").write_text(json.dumps(extravars))
        command = [str(BIN / "ansible-runner"), "run", str(self.root), "-p", playbook, "--ident", ident]
        if limit:
            command += ["--limit", limit]
        if verbosity:
            command.append("-" + "v" * verbosity)
        # Job type "Check". Written for every job: ansible-runner reuses env/cmdline if it is left behind.
        cmdline = self.root / "env" / "cmdline"
        cmdline.write_text("--check --diff") if check else cmdline.unlink(missing_ok=True)
        proc = subprocess.run(command, capture_output=True, text=True, env=clean_env(), timeout=900)
        return JobResult(self.root / "artifacts" / ident, proc)


class JobResult:
    def __init__(self, artifacts: Path, proc: subprocess.CompletedProcess[str]) -> None:
        self.artifacts, self.proc = artifacts, proc
        self.status = (artifacts / "status").read_text().strip()
        self.rc = int((artifacts / "rc").read_text().strip())
        self.events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"))]
        stats = [e for e in self.events if e["event"] == "playbook_on_stats"]
        assert len(stats) == 1, "the job must end with one stats event"
        self.stats = stats[0]["event_data"]  # what AWX records per host, from the final stats event
        self.artifact_data = self.stats.get("artifact_data", {})

    def stdout(self) -> str:
        return (self.artifacts / "stdout").read_text()


def test_awx_jobs_report_per_host_and_the_failure_path_rolls_back_only_the_failed_host(fresh, tmp_path):
    # lab2's port 9100 is taken, so node_exporter cannot start there.
    blocker = ssh(fresh, "lab2", "systemd-run --unit=port-blocker python3 -m http.server 9100 --bind 0.0.0.0")
    assert blocker.returncode == 0, blocker.stderr
    job = AwxJob(tmp_path / "job", fresh, HOSTS)

    dry_run = job.run("check", "playbooks/install.yml", {"intagent_integration": "node_exporter"}, check=True)
    assert dry_run.status == "successful", dry_run.stdout()[-3000:]
    assert dry_run.artifact_data["intagent_outcome"] == {"lab1": "planned", "lab2": "planned"}
    assert not node_exporter_installed(fresh, "lab1") and not node_exporter_installed(fresh, "lab2")

    install = job.run("install", "playbooks/install.yml", {"intagent_integration": "node_exporter"})
    assert install.status == "failed" and install.rc != 0, install.stdout()[-3000:]
    outcome = install.artifact_data
    assert outcome["intagent_outcome"] == {"lab1": "installed", "lab2": "failed"}, outcome
    assert outcome["intagent_failed_hosts"] == ["lab2"]
    assert outcome["intagent_evidence"]["lab1"]["endpoint_ok"] in (True, "True")
    assert outcome["intagent_failures"]["lab2"], outcome
    assert install.stats["failures"] == {"lab2": 1} and "lab1" not in install.stats.get("failures", {})
    assert serves_metrics(fresh, "lab1")

    # The workflow's failure node: the uninstall template, given the install job's artifacts.
    rollback = job.run("rollback", "playbooks/uninstall.yml", {"intagent_integration": "node_exporter", **outcome})
    assert rollback.status == "successful" and rollback.rc == 0, rollback.stdout()[-3000:]
    assert rollback.artifact_data["intagent_outcome"] == {"lab2": "uninstalled"}, rollback.artifact_data
    assert not node_exporter_installed(fresh, "lab2")
    assert serves_metrics(fresh, "lab1"), "the host that succeeded must be left alone"
    assert ssh(fresh, "lab2", "systemctl stop port-blocker").returncode == 0

    verify = job.run("verify", "playbooks/verify.yml", {"intagent_integration": "node_exporter"}, limit="lab1")
    assert verify.status == "successful", verify.stdout()[-3000:]
    assert verify.artifact_data["intagent_outcome"] == {"lab1": "verified"}
    assert verify.artifact_data["intagent_failed_hosts"] == []

    bad = job.run("bad", "playbooks/install.yml", {"intagent_integration": "node-exporter; rm -rf /"})
    assert bad.status == "failed" and "intagent_integration" in bad.stdout()
    assert not [e for e in bad.events if e["event"] == "runner_on_ok" and e["event_data"].get("task") == "Gather facts"]


def test_awx_credential_secret_reaches_the_host_but_no_job_output(lab, tmp_path):
    lab.add_packages([build_standin_deb(tmp_path / "standin")])
    lab.reset(["lab1"])
    canary = f"NRCANARY{uuid.uuid4().hex}"
    # A custom credential type injecting the license key as an environment variable, as docs/awx.md shows.
    job = AwxJob(tmp_path / "job", lab, ["lab1"], credential_env={"NEW_RELIC_LICENSE_KEY": canary})
    install = job.run("install", "playbooks/install.yml", {"intagent_integration": "infra_agent", **MIRROR_VARS},
                      verbosity=3)
    assert install.status == "successful", install.stdout()[-3000:]
    assert install.artifact_data["intagent_outcome"] == {"lab1": "installed"}
    assert ssh(lab, "lab1", f"grep -c {canary} /etc/newrelic-infra.yml").stdout.strip() == "1"
    # What AWX stores and shows: stdout, events (including -v output) and artifacts.
    kept = [install.artifacts / "stdout", *sorted((install.artifacts / "job_events").glob("*.json"))]
    assert [p.name for p in kept if canary in p.read_text()] == []
    assert canary not in json.dumps(install.artifact_data)

    removed = job.run("uninstall", "playbooks/uninstall.yml", {"intagent_integration": "infra_agent", **MIRROR_VARS})
    assert removed.status == "successful", removed.stdout()[-3000:]
    assert ssh(lab, "lab1", "test -e /etc/newrelic-infra.yml").returncode != 0
