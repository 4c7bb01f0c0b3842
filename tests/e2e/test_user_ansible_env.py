"""The operator's own Ansible setup on lab hosts: their ansible.cfg, connection flags, vault and -v.

The inventories here hold nothing but addresses, as a fleet's usually do: how to reach the hosts comes
from the operator's ansible.cfg or flags, and each test fails when intagent ignores them (no key, an
unknown host key, an encrypted variable it cannot read).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli, ssh
from tests.e2e.test_infra_agent import MIRROR_VARS, _files_containing
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
SSH_OPTS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


def bare_inventory(lab, folder: Path, hosts: list[str]) -> Path:
    """An inventory of addresses only (no user, key or SSH options)."""
    folder.mkdir(parents=True, exist_ok=True)
    address = {h.name: h.address for h in lab.hosts()}
    inv = folder / "hosts.yml"
    lines = ["all:", "  hosts:"] + [f"    {h}:\n      ansible_host: {address[h]}" for h in hosts]
    inv.write_text("\n".join(lines) + "\n  vars:\n    ansible_python_interpreter: /usr/bin/python3\n")
    return inv


def report_of(proc: subprocess.CompletedProcess[str]) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc {proc.returncode}): {proc.stdout!r} {proc.stderr!r}") from None


def statuses(report: dict) -> dict[str, str]:
    return {h: r["status"] for h, r in report["hosts"].items()}


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Path:
    script = tmp_path_factory.mktemp("worker") / "worker.sh"
    script.write_text('#!/bin/sh\nexec ansible-runner worker "$@"\n')
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("executor", ["local", "streaming"])
def test_the_operators_ansible_cfg_is_how_hosts_are_reached(lab, isolated_env, tmp_path, executor, worker):
    host = "lab3"
    lab.reset([host])
    project = tmp_path / "project"
    inventory = bare_inventory(lab, project, [host])
    (project / "ansible.cfg").write_text(
        f"[defaults]\nremote_user = root\nprivate_key_file = {lab.key}\n"
        f"[ssh_connection]\nssh_args = {SSH_OPTS}\n")
    env = dict(isolated_env)
    if executor == "streaming":
        env |= {"INTAGENT_ANSIBLE_EXECUTOR": "streaming", "INTAGENT_ANSIBLE_WORKER_COMMAND": str(worker)}

    proc = run_cli("install", "node_exporter", "-i", str(inventory), "--json", env=env, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(report_of(proc)) == {host: "installed"}

    # The same file named by ANSIBLE_CONFIG from anywhere else; -v shows Ansible's own output (redacted).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_cli("uninstall", "node_exporter", "-i", str(inventory), "-v", "--json", cwd=elsewhere,
                   env={**env, "ANSIBLE_CONFIG": str(project / "ansible.cfg")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(report_of(proc)) == {host: "uninstalled"}
    assert "TASK [" in proc.stderr and "PLAY RECAP" in proc.stderr

    # Without the operator's file the same inventory cannot be reached: the file was what made it work.
    proc = run_cli("verify", "node_exporter", "-i", str(inventory), "--json", env=env, cwd=elsewhere)
    assert proc.returncode != 0 and statuses(report_of(proc)) == {host: "unreachable"}
    assert "TASK [" not in proc.stderr  # no -v: Ansible's own output stays in the run directory


def test_connection_flags_work_like_ansible_playbooks(lab, isolated_env, tmp_path):
    host = "lab3"
    address = next(h.address for h in lab.hosts() if h.name == host)
    inventory = tmp_path / "hosts.yml"  # an address where nothing listens: only the SSH options reach lab3
    inventory.write_text(f"all:\n  hosts:\n    {host}:\n      ansible_host: 127.0.0.2\n")
    ssh_args = f"-o HostName={address} {SSH_OPTS}"
    flags = ["-u", "root", "--private-key", str(lab.key), "--ssh-common-args", ssh_args]

    def ping(*args: str, strategy: dict[str, str]) -> str:
        # A fresh SSH control path dir for each call (the operator's variable wins over intagent's
        # default): no connection of an earlier call is reused. Mitogen's strategy keeps no connection past
        # its run (and no control socket); Ansible's ssh connection keeps it in that dir.
        sockets = Path(tempfile.mkdtemp(prefix="cp", dir="/tmp"))
        proc = run_cli("ping", "-i", str(inventory), *args, "--json", cwd=tmp_path,
                       env={**isolated_env, **strategy, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(sockets)})
        used = list(sockets.iterdir())
        shutil.rmtree(sockets)
        status = report_of(proc)["hosts"][host]["status"]
        if strategy:
            assert used or status == "unreachable", "a reached host's connection lives in the operator's dir"
        return status

    for strategy in ({}, {"INTAGENT_ANSIBLE_MITOGEN": "false"}):  # Mitogen's (the default), Ansible's own
        assert ping(*flags, strategy=strategy) == "reachable"
        assert ping(*flags[:4], strategy=strategy) == "unreachable"  # without --ssh-common-args
        assert ping("-u", "root", *flags[4:], strategy=strategy) == "unreachable"  # without --private-key
        assert ping("-u", "nobody", *flags[2:], strategy=strategy) == "unreachable"  # --user is who logs in


@pytest.fixture
def standin(lab, tmp_path_factory):
    deb = build_standin_deb(tmp_path_factory.mktemp("standin"))
    lab.add_packages([deb])
    lab.reset(["lab2"])
    return lab


def encrypt(value: str, name: str, password_file: Path, vault_id: str | None = None) -> str:
    """``ansible-vault encrypt_string`` output for ``name: value`` (the YAML of a vaulted variable)."""
    who = ["--vault-id", f"{vault_id}@{password_file}"] if vault_id else ["--vault-password-file", str(password_file)]
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt_string", *who,
                           "--name", name, value], capture_output=True, text=True, check=True,
                          stdin=subprocess.DEVNULL)
    return proc.stdout


def test_a_vault_encrypted_group_var_reaches_the_role_and_no_password_leaks(standin, isolated_env, tmp_path):
    license_key = f"NRCANARY{uuid.uuid4().hex}"
    vault_password = f"VAULTCANARY{uuid.uuid4().hex}"
    secret_file = tmp_path / "vault.pass"  # the operator's own file, outside every run directory
    secret_file.write_text(vault_password + "\n")
    inv_dir = tmp_path / "inventory"
    inventory = bare_inventory(standin, inv_dir, ["lab2"])
    (inv_dir / "group_vars").mkdir()
    (inv_dir / "group_vars" / "all.yml").write_text(
        f"ansible_user: root\nansible_ssh_private_key_file: {standin.key}\nansible_ssh_common_args: {SSH_OPTS}\n"
        + encrypt(license_key, "infra_agent_license_key", secret_file, vault_id="prod"))
    assert license_key not in (inv_dir / "group_vars" / "all.yml").read_text()

    # Off a terminal, with no vault password anywhere: a clear error before anything runs.
    proc = run_cli("install", "infra_agent", "-i", str(inventory), *MIRROR_VARS, env=isolated_env, cwd=tmp_path)
    assert proc.returncode == 4 and "vault" in proc.stderr.lower(), proc.stderr
    assert ssh(standin, "lab2", "test -e /etc/newrelic-infra.yml").returncode == 1

    env = {**isolated_env, "INTAGENT_VAULT_PASSWORD": vault_password}
    proc = run_cli("install", "infra_agent", "-i", str(inventory), *MIRROR_VARS, "-v", "--json", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(report_of(proc)) == {"lab2": "installed"}
    on_host = ssh(standin, "lab2", f"grep -c {license_key} /etc/newrelic-infra.yml")
    assert on_host.stdout.strip() == "1", "the decrypted license key must reach the agent's config"
    for secret in (license_key, vault_password):
        assert secret not in proc.stdout and secret not in proc.stderr
        assert not _files_containing(Path(isolated_env["XDG_STATE_HOME"]), secret)
    assert not list(Path("/dev/shm").glob("intagent-run-*")), "private data dirs must not outlive the run"

    # The same with the operator's vault identity file instead of the environment.
    proc = run_cli("uninstall", "infra_agent", "-i", str(inventory), "--vault-id", f"prod@{secret_file}",
                   *MIRROR_VARS, "--json", env=isolated_env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert statuses(report_of(proc)) == {"lab2": "uninstalled"}
    assert not _files_containing(Path(isolated_env["XDG_STATE_HOME"]), license_key)
