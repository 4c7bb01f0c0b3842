"""A lab that looks like a fleet: three Debian releases, the ops sudo user, a bastion, the fleet-like files.

One lab layout is brought up for the whole module (base images of bullseye and trixie are built on first
use, about a minute each); the last test puts the plain lab back for the test files that follow.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from integration_agent.lab import Lab
from integration_agent.lab.host import ssh_argv
from integration_agent.lab.layout import OPS_PASSWORD, OPS_USER, RELEASES, Layout
from tests.conftest import node_exporter_metrics, run_cli, ssh
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2", "lab3"]
FLEET = Layout(releases=RELEASES, bastion=True, fleet=True)
ANSIBLE = Path(sys.executable).parent / "ansible"


@pytest.fixture(scope="module")
def fleet(lab_settings) -> Lab:
    lab = Lab(lab_settings)
    if len(lab.hosts()) > len(HOSTS):  # `lab up 3` keeps a bigger lab's other hosts: start from three
        lab.down()
    report = lab.up(3, layout=FLEET)
    assert report.hosts == HOSTS and report.bastion and report.fleet == lab.fleet_dir
    return lab


def _address(lab: Lab, name: str) -> str:
    return next(h.address for h in lab.hosts() if h.name == name)


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, stdin=kwargs.pop("stdin", subprocess.DEVNULL), capture_output=True, text=True,
                          timeout=60, **kwargs)


def _as(lab: Lab, user: str, host: str, command: str, *, direct: bool = False, **kwargs):
    """Run ``command`` as ``user`` on ``host``: through the bastion (as root there), or straight at it."""
    jump = None if direct else f"root@{lab.bastion().address}"
    return _run(ssh_argv(lab.key, f"{user}@{_address(lab, host)}", command, jump=jump), **kwargs)


def _ansible(home: Path, config: Path, inventory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain Ansible as an operator runs it: their ansible.cfg, their home (SSH control sockets live there)."""
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{ANSIBLE.parent}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "ANSIBLE_CONFIG": str(config)}
    return subprocess.run([str(ANSIBLE), "all", "-i", str(inventory), *args], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_each_host_runs_its_release_and_uses_its_mirror(fleet):
    inventory = yaml.safe_load(fleet.inventory_path.read_text())["all"]["children"]["lab"]["hosts"]
    assert {name: inventory[name]["intagent_lab_release"] for name in HOSTS} == dict(zip(HOSTS, RELEASES, strict=False))
    for name, release in zip(HOSTS, RELEASES, strict=False):
        assert ssh(fleet, name, ". /etc/os-release; echo $VERSION_CODENAME").stdout.strip() == release
        assert release in ssh(fleet, name, "cat /etc/apt/sources.list").stdout
        assert inventory[name]["intagent_lab_mirror_url"] == fleet.mirror_url_for(release)


def test_ops_logs_in_with_the_lab_key_and_sudo_asks_for_its_password(fleet):
    assert _as(fleet, OPS_USER, "lab3", "id -un").stdout.strip() == OPS_USER
    no_password = _as(fleet, OPS_USER, "lab3", "sudo -n true")
    assert no_password.returncode != 0 and "password is required" in no_password.stderr
    wrong = _as(fleet, OPS_USER, "lab3", "sudo -S -p '' true", stdin=None, input="not-the-password\n")
    assert wrong.returncode != 0
    right = _as(fleet, OPS_USER, "lab1", "sudo -S -p '' id -un", stdin=None, input=f"{OPS_PASSWORD}\n")
    assert right.returncode == 0 and right.stdout.strip() == "root", right.stderr


def test_hosts_refuse_ssh_except_from_the_bastion(fleet):
    for user in ("root", OPS_USER):
        direct = _as(fleet, user, "lab2", "true", direct=True)
        assert direct.returncode == 255 and "Permission denied" in direct.stderr, direct.stderr
        assert _as(fleet, user, "lab2", "true").returncode == 0
    bastion = fleet.bastion()
    assert _run(ssh_argv(fleet.key, f"root@{bastion.address}", "true")).returncode == 0
    assert {s.name: s.answers for s in fleet.status()} == {"bastion": True, **dict.fromkeys(HOSTS, True)}


def test_fleet_files_reach_the_hosts_as_ops_with_checked_host_keys(fleet, tmp_path):
    config, hosts = fleet.fleet_dir / "ansible.cfg", fleet.fleet_dir / "hosts.yml"
    assert "ansible_user" not in hosts.read_text() and "private_key" not in hosts.read_text()
    password = tmp_path / "become.yml"
    password.write_text(json.dumps({"ansible_become_password": OPS_PASSWORD}))
    became = _ansible(tmp_path / "home", config, hosts, "-b", "-m", "command", "-a", "id -un", "-e", f"@{password}")
    assert became.returncode == 0, became.stdout + became.stderr
    assert became.stdout.count("CHANGED") == 3 and "| CHANGED | rc=0 >>\nroot" in became.stdout
    without = _ansible(tmp_path / "home", config, hosts, "-b", "-m", "command", "-a", "id -un")
    assert without.returncode != 0 and "Missing sudo password" in without.stdout + without.stderr
    # Host keys are checked against the lab's known_hosts: a wrong key there is refused.
    fleet.known_hosts_path.write_text(fleet.known_hosts_path.read_text().replace(
        _address(fleet, "lab1") + " ", _address(fleet, "lab1") + "-not "))
    refused = _ansible(tmp_path / "other-home", config, hosts, "-m", "ping", "--limit", "lab1")  # no open master
    assert refused.returncode != 0 and "Host key verification failed" in refused.stdout + refused.stderr


def test_login_user_ops_changes_the_inventory_only(fleet, tmp_path):
    report = fleet.up(3, layout=dataclasses.replace(FLEET, login_user=OPS_USER))
    assert report.started == []  # no host is re-created for another login user
    lab_vars = yaml.safe_load(fleet.inventory_path.read_text())["all"]["vars"]
    assert lab_vars["ansible_user"] == OPS_USER and not [k for k in lab_vars if "become" in k]
    password = tmp_path / "become.yml"
    password.write_text(json.dumps({"ansible_become_password": OPS_PASSWORD}))
    empty_config = tmp_path / "ansible.cfg"
    empty_config.write_text("")
    became = _ansible(tmp_path / "home", empty_config, fleet.inventory_path, "-b", "-m", "command", "-a", "id -un",
                      "-e", f"@{password}")
    assert became.returncode == 0 and became.stdout.count("rc=0 >>\nroot") == 3, became.stdout + became.stderr
    assert fleet.up(3, layout=FLEET).started == []


def test_intagent_runs_as_the_operator_does_ops_sudo_vault_and_bastion(fleet, isolated_env, tmp_path):
    """The operator's ansible.cfg (remote_user ops, private_key_file, the bastion), -b with the become
    password in the environment, a vault-encrypted group var: install and uninstall on three releases,
    and neither password in any output or file of the run."""
    vault_password = f"VAULTCANARY{uuid.uuid4().hex}"
    inventory = tmp_path / "fleet" / "hosts.yml"
    (inventory.parent / "group_vars").mkdir(parents=True)
    shutil.copy(fleet.fleet_dir / "hosts.yml", inventory)
    secret_file = tmp_path / "vault.pass"
    secret_file.write_text(vault_password)
    encrypted = subprocess.run([str(ANSIBLE.with_name("ansible-vault")), "encrypt_string", "--vault-password-file",
                                str(secret_file), "--name", "node_exporter_listen_address", "0.0.0.0:9100"],
                               capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout
    (inventory.parent / "group_vars" / "all.yml").write_text(encrypted)
    secret_file.unlink()  # only the environment knows it now
    env = {**isolated_env, "ANSIBLE_CONFIG": str(fleet.fleet_dir / "ansible.cfg"),
           "INTAGENT_BECOME_PASSWORD": OPS_PASSWORD, "INTAGENT_VAULT_PASSWORD": vault_password}

    cleaned = run_cli("uninstall", "node_exporter", "-i", str(fleet.inventory_path), env=isolated_env)  # as root
    assert cleaned.returncode == 0, cleaned.stderr
    no_password = {k: v for k, v in env.items() if k != "INTAGENT_BECOME_PASSWORD"}
    refused = run_cli("install", "node_exporter", "-i", str(inventory), "-b", "--json", env=no_password)
    assert refused.returncode == 11, refused.stdout  # sudo asks ops for a password: nothing can be done
    assert "password" in refused.stdout.lower(), refused.stdout
    outputs = []
    for action, status in (("install", "installed"), ("uninstall", "uninstalled")):
        proc = run_cli(action, "node_exporter", "-i", str(inventory), "-b", "-v", "--json", env=env)
        report = json.loads(proc.stdout)
        assert proc.returncode == 0, (report, proc.stderr)
        assert {h: r["status"] for h, r in report["hosts"].items()} == dict.fromkeys(HOSTS, status)
        assert "TASK [" in proc.stderr  # -v: Ansible's own output, and still no password in it
        outputs.append(proc.stdout + proc.stderr)
        if action == "install":
            for host in HOSTS:
                assert "node_exporter_build_info" in node_exporter_metrics(fleet, host)
    state = Path(isolated_env["XDG_STATE_HOME"])
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "journal.jsonl" for p in files) and any(p.name == "events.jsonl" for p in files)
    for secret in (OPS_PASSWORD, vault_password):
        assert not [o for o in outputs if secret in o]
        assert not [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert not list(Path("/dev/shm").glob("intagent-run-*")), "private data dirs must not outlive the run"


def test_install_node_exporter_on_every_release_through_the_bastion(fleet, isolated_env):
    proc = run_cli("install", "node_exporter", "-i", str(fleet.inventory_path), "--json", env=isolated_env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, (report, proc.stderr)
    assert {h: r["status"] for h, r in report["hosts"].items()} == dict.fromkeys(HOSTS, "installed")
    for host in HOSTS:
        assert "node_exporter_build_info" in node_exporter_metrics(fleet, host)


def _install(lab: Lab, integration: str, *args: str, env: dict[str, str]) -> tuple[int, dict]:
    proc = run_cli("install", integration, "-i", str(lab.inventory_path), *args, "--json", env=env)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (rc {proc.returncode}): {proc.stdout!r} {proc.stderr!r}") from None


def test_install_zabbix_agent_on_every_release(fleet, isolated_env):
    rc, report = _install(fleet, "zabbix_agent", env=isolated_env)
    assert rc == 0, report
    assert {h: r["status"] for h, r in report["hosts"].items()} == dict.fromkeys(HOSTS, "installed")
    versions = {h: report["hosts"][h]["evidence"]["agent_version"].split(".")[0] for h in HOSTS}
    assert versions == {"lab1": "5", "lab2": "6", "lab3": "7"}  # Debian's zabbix-agent of each release


def test_infra_agent_installs_where_new_relic_packages_it_and_refuses_trixie_untouched(fleet, isolated_env, tmp_path):
    fleet.add_packages([build_standin_deb(tmp_path / "standin")])
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": "lab-test-not-a-key"}
    rc, report = _install(fleet, "infra_agent", "--var", f"apt_source=deb [trusted=yes] {fleet.mirror_url} ./",
                          "--var", "gpg_key_url=", env=env)
    statuses = {h: r["status"] for h, r in report["hosts"].items()}
    assert rc == 10 and statuses["lab1"] == statuses["lab2"] == "installed", report
    assert statuses["lab3"] != "installed"
    refused = json.dumps(report["hosts"]["lab3"])
    assert "infra_agent does not support Debian 13" in refused and "(trixie" in refused, refused
    leftovers = ssh(fleet, "lab3", "ls /etc/apt/sources.list.d /etc/newrelic-infra.yml 2>/dev/null;"
                                   " dpkg -s newrelic-infra")
    assert leftovers.returncode != 0 and "newrelic" not in leftovers.stdout, leftovers.stdout


def test_the_plain_lab_comes_back(fleet):
    report = fleet.up(3)
    assert sorted(report.started) == HOSTS and report.bastion is None and fleet.bastion() is None
    assert not fleet.fleet_dir.exists()
    assert {h.release for h in fleet.hosts()} == {"bookworm"}
    assert _as(fleet, "root", "lab2", "dpkg -s prometheus-node-exporter", direct=True).returncode == 1
    assert "bastion" not in [s.name for s in fleet.status()]
