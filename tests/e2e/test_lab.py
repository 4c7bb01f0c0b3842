"""The lab end to end: real hosts with their own systemd, file system and network, then nothing left."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from integration_agent.executor import Executor
from integration_agent.lab import Lab, network
from integration_agent.lab.system import mounts_under, process_state, processes_matching
from tests.conftest import run_cli
from tests.fixtures.debs import empty_deb

pytestmark = pytest.mark.lab


def _ssh(lab: Lab, host: str, command: str) -> subprocess.CompletedProcess[str]:
    address = next(h.address for h in lab.hosts() if h.name == host)
    return subprocess.run(lab.ssh_command(address, command), capture_output=True, text=True, timeout=60)


def _play(tmp_path: Path, name: str, tasks: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks}")
    return path


def _leftovers(lab: Lab) -> dict[str, list[str]]:
    return {
        "netns": network.lab_netns(),
        "links": network.lab_links(),
        "routes": network.lab_routes(),
        "mounts": mounts_under(str(lab.state_dir)),
        "processes": [str(p) for p in processes_matching(str(lab.state_dir))],
    }


def test_lab_lifecycle(lab_settings, tmp_path, isolated_env):
    lab = Lab(lab_settings)
    lab.down()
    try:
        grown = lab.up(2)
        assert grown.hosts == ["lab1", "lab2"]
        report = lab.up(3)  # grows by one, leaves the running two alone
        assert report.started == ["lab3"] and report.hosts == ["lab1", "lab2", "lab3"]
        assert lab.up(3).started == []  # idempotent
        inventory = report.inventory

        # Every host answers an Ansible ping through intagent's own runner (the CLI, as a user runs it).
        proc = run_cli("ping", "--inventory", str(inventory), "--json", env=isolated_env)
        assert proc.returncode == 0, proc.stderr
        assert '"status": "ok"' in proc.stdout and proc.stdout.count('"reachable"') == 3

        # Each host has its own systemd, hostname and file system.
        assert _ssh(lab, "lab2", "systemctl is-system-running --wait").stdout.strip() in {"running", "degraded"}
        assert _ssh(lab, "lab2", "hostname").stdout.strip() == "lab2"
        marker = f"/root/intagent-marker-{uuid.uuid4().hex}"
        written = Executor().run(
            _play(tmp_path, "write", f"    - ansible.builtin.copy:\n        dest: {marker}\n        content: hello\n"),
            inventory, limit="lab1")
        assert written.hosts["lab1"].changed == 1 and set(written.hosts) == {"lab1"}
        assert _ssh(lab, "lab1", f"cat {marker}").stdout == "hello"
        assert _ssh(lab, "lab2", f"test -e {marker}").returncode == 1
        assert not Path(marker).exists()

        # A package from the lab mirror, on host 1 only.
        controller_had_hello = subprocess.run(["dpkg", "-s", "hello"], capture_output=True).returncode == 0
        installed = Executor().run(
            _play(tmp_path, "pkg", "    - ansible.builtin.apt:\n        name: hello\n        update_cache: true\n"),
            inventory, limit="lab1")
        assert installed.hosts["lab1"].succeeded, installed.hosts["lab1"].failures
        assert _ssh(lab, "lab1", "hello").stdout.strip() == "Hello, world!"
        assert _ssh(lab, "lab2", "dpkg -s hello").returncode != 0
        assert (subprocess.run(["dpkg", "-s", "hello"], capture_output=True).returncode == 0) == controller_had_hello

        statuses = {s.name: s for s in lab.status()}
        assert all(s.running and s.answers for s in statuses.values())
        nspawns = [h.pid for h in lab.hosts()]
    finally:
        lab.down()

    # Gone when down returns, not merely exiting (an exiting process has already lost its command line).
    assert [pid for pid in nspawns if process_state(pid) not in ("", "Z", "X")] == []
    assert _leftovers(lab) == {"netns": [], "links": [], "routes": [], "mounts": [], "processes": []}
    assert lab.status() == []
    lab.down()  # safe to run twice
    proc = run_cli("lab", "down", env=isolated_env)
    assert proc.returncode == 0, proc.stderr


def test_lab_recovers_a_host_that_died(lab_settings):
    lab = Lab(lab_settings)
    lab.up(2)
    victim = next(h for h in lab.hosts() if h.name == "lab2")
    victim.stop()
    assert {s.name: s.running for s in lab.status()} == {"lab1": True, "lab2": False}
    assert lab.up(2).started == ["lab2"]
    assert all(s.answers for s in lab.status())


def test_cli_lab_commands(lab_settings, isolated_env):
    up = run_cli("lab", "up", "--hosts", "2", env=isolated_env)
    assert up.returncode == 0, up.stderr
    inventory = Path(up.stdout.strip().splitlines()[-1])
    assert inventory.is_file()
    assert run_cli("lab", "inventory", env=isolated_env).stdout.strip() == str(inventory)
    status = run_cli("lab", "status", "--json", env=isolated_env)
    assert status.returncode == 0 and '"answers": true' in status.stdout


def test_lab_refuses_non_root(lab_settings, isolated_env):
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           *run_cli_argv("lab", "up")], capture_output=True, text=True, cwd="/",
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent"}, timeout=60)
    assert proc.returncode == 6, proc.stderr
    assert "needs root" in proc.stderr


def run_cli_argv(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "integration_agent", *args]


def test_reset_gives_a_pristine_host(lab_settings):
    lab = Lab(lab_settings)
    lab.up(2)
    address = next(h.address for h in lab.hosts() if h.name == "lab1")
    assert subprocess.run(lab.ssh_command(address, "touch /etc/intagent-dirty"), timeout=30).returncode == 0
    assert lab.reset(["lab1"]) == ["lab1"]
    assert subprocess.run(lab.ssh_command(address, "test -e /etc/intagent-dirty"), timeout=30).returncode == 1
    with pytest.raises(Exception, match="no lab host named lab99"):
        lab.reset(["lab99"])


def test_hosts_read_a_consistent_current_index_while_the_mirror_changes(lab):
    """A host reading the mirror while a package is added gets a consistent index, and the current one."""
    from integration_agent.lab.mirror import write_index

    repo = lab.mirror.root / f"test-{uuid.uuid4().hex[:8]}"
    try:
        empty_deb(repo / "pool", "mirrortest", "1.0")
        write_index(repo, "pool", "bookworm")

        def update(lists: str) -> tuple[subprocess.CompletedProcess[str], str]:
            """apt-get update and the candidate of mirrortest, with this repository alone and ``lists``."""
            opts = (f"-o Dir::Etc::SourceList=/tmp/{repo.name}.list -o Dir::Etc::SourceParts=/tmp/{repo.name}.d"
                    f" -o Dir::State::Lists=/tmp/{repo.name}-{lists}")
            proc = _ssh(lab, "lab1", f"mkdir -p /tmp/{repo.name}.d /tmp/{repo.name}-{lists}/partial"
                                     f" && echo 'deb [trusted=yes] {lab.mirror_url}{repo.name}/ ./'"
                                     f" > /tmp/{repo.name}.list && apt-get -q {opts} update")
            policy = _ssh(lab, "lab1", f"apt-cache {opts} policy mirrortest").stdout
            return proc, next((line.split()[1] for line in policy.splitlines() if "Candidate:" in line), "")

        updated, candidate = update("a")
        assert updated.returncode == 0 and "E:" not in updated.stdout + updated.stderr, updated.stderr
        assert candidate == "1.0"

        # Host b read the Release just before a package was added; the lists it then reads are the new ones.
        first_release = (repo / "Release").read_bytes()
        empty_deb(repo / "pool", "mirrortest", "2.0")
        write_index(repo, "pool", "bookworm")
        current_release = (repo / "Release").read_bytes()
        (repo / "Release").write_bytes(first_release)
        updated, candidate = update("b")
        assert updated.returncode == 0 and "E:" not in updated.stdout + updated.stderr, updated.stdout
        assert candidate == "1.0"  # the lists of the Release it read
        (repo / "Release").write_bytes(current_release)

        # Host a read the index at its Release's time; the index changes within that same second.
        mtime = (repo / "Release").stat().st_mtime
        updated, candidate = update("a")
        assert candidate == "2.0"
        empty_deb(repo / "pool", "mirrortest", "3.0")
        write_index(repo, "pool", "bookworm")
        for name in ("Release", "Packages", "Packages.gz"):
            os.utime(repo / name, (mtime, mtime))
        updated, candidate = update("a")
        assert updated.returncode == 0, updated.stderr
        assert candidate == "3.0"  # not the index it had (the answer to If-Modified-Since of a second's grain)
    finally:
        shutil.rmtree(repo, ignore_errors=True)
        _ssh(lab, "lab1", f"rm -rf /tmp/{repo.name}*")
