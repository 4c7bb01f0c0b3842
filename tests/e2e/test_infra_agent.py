"""New Relic infrastructure agent (stand-in package): installed and verified, and the license key never leaks."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli, ssh
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2"]
MIRROR_VARS = ["--var", "apt_source=deb [trusted=yes] http://10.231.0.1:8080/ ./", "--var", "gpg_key_url="]



@pytest.fixture
def standin(lab, tmp_path_factory):
    deb = build_standin_deb(tmp_path_factory.mktemp("standin"))
    lab.add_packages([deb])
    lab.reset(HOSTS)
    return lab


def _files_containing(root: Path, needle: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


def _assert_no_leak(canary: str, proc: subprocess.CompletedProcess[str], env: dict[str, str]) -> None:
    assert canary not in proc.stdout and canary not in proc.stderr
    runs = Path(env["XDG_STATE_HOME"])
    assert runs.exists() and not _files_containing(runs, canary)
    shm = Path("/dev/shm")
    assert not [p for p in shm.glob("intagent-run-*")], "private data dirs must not outlive the run"


def test_license_key_lands_only_in_the_agent_config(standin, isolated_env):
    canary = f"NRCANARY{uuid.uuid4().hex}"
    # A user's proxy line must survive the install (merge, not overwrite).
    assert ssh(standin, "lab1", "printf 'proxy: http://user-proxy:3128\\n' > /etc/newrelic-infra.yml").returncode == 0
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": canary}
    proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", ",".join(HOSTS),
                   *MIRROR_VARS, "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert {h: r["status"] for h, r in report["hosts"].items()} == dict.fromkeys(HOSTS, "installed")
    for host in HOSTS:
        stat = ssh(standin, host,
                   "stat -c '%a %U' /etc/newrelic-infra.yml; grep -c " + canary + " /etc/newrelic-infra.yml")
        assert stat.stdout.split() == ["600", "root", "1"], stat.stdout
    assert "proxy: http://user-proxy:3128" in ssh(standin, "lab1", "cat /etc/newrelic-infra.yml").stdout
    assert report["hosts"]["lab1"]["evidence"]["version"]
    _assert_no_leak(canary, proc, env)
    assert "********" in json.dumps(json.loads((Path(report["run_dir"]) / "request.json").read_text()))

    bundle = Path(env["XDG_STATE_HOME"]) / "bundle.tar.gz"
    exported = run_cli("runs", "export", report["run_id"], "--out", str(bundle), env=env)
    assert exported.returncode == 0, exported.stderr
    import tarfile

    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert any(n.endswith("journal.jsonl") for n in names) and canary.encode() not in contents

    removed = run_cli("uninstall", "infra_agent", "-i", str(standin.inventory_path), "-l", ",".join(HOSTS),
                      *MIRROR_VARS, "--json", env=env)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert ssh(standin, "lab1", "test -e /etc/newrelic-infra.yml").returncode == 1


def test_license_key_does_not_leak_when_the_task_using_it_fails(standin, isolated_env):
    canary = f"NRCANARY{uuid.uuid4().hex}"
    # An immutable config file: the task that writes the key into it fails, and so does the rollback
    # (uninstall cannot delete it either), which must be reported as a failed rollback.
    made = ssh(standin, "lab1",
               "printf 'log_level: info\\n' > /etc/newrelic-infra.yml && chattr +i /etc/newrelic-infra.yml")
    assert made.returncode == 0, made.stderr
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": canary}
    try:
        proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", ",".join(HOSTS),
                       *MIRROR_VARS, "--json", env=env)
    finally:
        ssh(standin, "lab1", "chattr -i /etc/newrelic-infra.yml")
    assert proc.returncode == 13, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    lab1 = report["hosts"]["lab1"]
    assert report["status"] == "rollback_failed" and lab1["rollback_failed"] and lab1["status"] == "failed"
    assert any(f.startswith("apply: Write the agent configuration") for f in lab1["failures"]), lab1["failures"]
    assert report["hosts"]["lab2"]["status"] == "installed"
    _assert_no_leak(canary, proc, env)
    events = (Path(report["run_dir"]) / "events.jsonl").read_text()
    assert '"runner_on_failed"' in events


def test_a_repository_apt_cannot_read_is_named_with_apts_own_error(standin, isolated_env):
    missing = f"http://10.231.0.1:8080/missing-{uuid.uuid4().hex[:8]}/"
    proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab1", "--var",
                   f"apt_source=deb [trusted=yes] {missing} ./", "--var", "gpg_key_url=", "--json",
                   env={**isolated_env, "NEW_RELIC_LICENSE_KEY": "not-used-here"})
    report = json.loads(proc.stdout)
    lab1 = report["hosts"]["lab1"]
    assert proc.returncode != 0 and lab1["status"] == "rolled_back", lab1
    failure = next(f for f in lab1["failures"] if "could not update its package lists" in f)
    # The apt module says only that it failed; the message quotes apt-get, which names the cause.
    assert "apt-get update says: " in failure and "404" in failure and missing in failure, failure
    assert ssh(standin, "lab1", "test -e /etc/apt/sources.list.d/newrelic-infra.list").returncode == 1


def test_a_source_added_by_a_run_stopped_before_its_apt_update_is_installed_from(standin, isolated_env):
    """What a run interrupted between adding the apt source and refreshing the lists leaves: the source, and
    lists that do not name the package. The dry run plans the install (check mode refreshes no lists) instead
    of failing, and apply refreshes the lists before it installs."""
    source = MIRROR_VARS[1].removeprefix("apt_source=")
    assert ssh(standin, "lab1", f"echo '{source}' > /etc/apt/sources.list.d/newrelic-infra.list").returncode == 0
    assert "Candidate" not in ssh(standin, "lab1", "apt-cache policy newrelic-infra").stdout
    proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab1", *MIRROR_VARS,
                   "--json", env={**isolated_env, "NEW_RELIC_LICENSE_KEY": f"NRKEY{uuid.uuid4().hex}"})
    lab1 = json.loads(proc.stdout)["hosts"]["lab1"]
    assert proc.returncode == 0 and lab1["status"] == "installed", (lab1, proc.stderr[-2000:])
    assert ssh(standin, "lab1", "dpkg-query -W -f '${Status}' newrelic-infra").stdout == "install ok installed"


def test_a_license_key_the_vendor_rejects_fails_verify_and_is_rolled_back(standin, isolated_env, figure):
    canary = f"invalid{uuid.uuid4().hex}"  # the stand-in's collector refuses keys that begin with "invalid"
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": canary}
    proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab1", *MIRROR_VARS,
                   "--json", "-vvv", env=env)
    assert proc.returncode == 11, proc.stdout[-2000:] + proc.stderr[-2000:]
    lab1 = json.loads(proc.stdout)["hosts"]["lab1"]
    assert lab1["status"] == "rolled_back" and lab1["cause"] == "license_rejected", lab1
    assert lab1["evidence"]["errors_ok"] in (False, "False") and lab1["changed"].get("recover")
    assert ssh(standin, "lab1", "test -e /etc/newrelic-infra.yml").returncode == 1  # rolled back
    host_logs = ssh(standin, "lab1", "journalctl --no-pager -o cat; cat /var/log/syslog 2>/dev/null").stdout
    hits = (proc.stdout + proc.stderr + host_logs).count(canary) + len(
        _files_containing(Path(env["XDG_STATE_HOME"]), canary))
    figure("06 license rejected", "canary hits (output, run files, host logs)", hits)
    _assert_no_leak(canary, proc, env)  # at -vvv too
    assert canary not in host_logs


def test_missing_license_key_is_refused_before_any_run(standin, isolated_env):
    env = {k: v for k, v in isolated_env.items()}
    proc = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab1", *MIRROR_VARS,
                   env={**env, "NEW_RELIC_LICENSE_KEY": ""})
    assert proc.returncode == 5
    assert "NEW_RELIC_LICENSE_KEY" in proc.stderr
    assert not (Path(env["XDG_STATE_HOME"]) / "intagent" / "runs").exists()


def test_the_license_key_leaks_nowhere_streamed_at_vvv_or_interrupted_and_resumed(standin, isolated_env, tmp_path,
                                                                                  figure):
    """The canary sweep: every artefact on the controller (output, run directories, worker and private
    folders) and the hosts' own logs, with the streaming executor at -vvv, and across an interrupt and resume."""
    import signal

    from tests.e2e.test_interrupt_and_locks import applying, start, wait_for

    canary = f"NRSWEEP{uuid.uuid4().hex}"
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": canary}
    streamed = run_cli("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab1", *MIRROR_VARS,
                       "--json", "-vvv", env={**env, "INTAGENT_ANSIBLE_EXECUTOR": "streaming"})
    assert streamed.returncode == 0, streamed.stdout[-2000:] + streamed.stderr[-2000:]
    assert canary in ssh(standin, "lab1", "cat /etc/newrelic-infra.yml").stdout  # it did reach the agent

    runs = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "runs"
    proc = start("install", "infra_agent", "-i", str(standin.inventory_path), "-l", "lab2", *MIRROR_VARS, "--json",
                 env=env)
    wait_for(lambda: applying(runs), what="the apply stage")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    resumed = run_cli("resume", json.loads(stdout)["run_id"], "--json", env=env)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]

    outputs = streamed.stdout + streamed.stderr + stdout + stderr + resumed.stdout + resumed.stderr
    logs = "".join(ssh(standin, h, "journalctl --no-pager -o cat; cat /var/log/syslog /var/log/auth.log "
                                   "2>/dev/null; ls -a /tmp /var/tmp /root/.ansible/tmp 2>/dev/null").stdout
                   for h in ("lab1", "lab2"))
    files = [*_files_containing(Path(isolated_env["XDG_STATE_HOME"]), canary),
             *_files_containing(Path("/dev/shm"), canary), *_files_containing(tmp_path, canary)]
    hits = outputs.count(canary) + logs.count(canary) + len(files)
    figure("14 secret canary", "hits: streamed -vvv, interrupted and resumed, host logs", hits)
    assert hits == 0, (files, canary in outputs, canary in logs)
    for host in ("lab1", "lab2"):
        run_cli("uninstall", "infra_agent", "-i", str(standin.inventory_path), "-l", host, *MIRROR_VARS, env=env)
