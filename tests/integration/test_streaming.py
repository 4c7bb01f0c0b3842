"""Real streamed runs: ansible-runner transmit -> a worker process -> process, on the controller.

Plays only use ``connection: local`` with ``debug``/``fail``/``command: sleep`` (nothing is installed),
plus an unreachable loopback port, like tests/integration/test_executor.py.
"""

import io
import json
import os
import stat
import tempfile
import threading
import time
from pathlib import Path

import pytest
from ansible_runner.utils.streaming import unstream_dir

from integration_agent.errors import ConfigError, ExecutionFailed
from integration_agent.executor import DEFAULT_PACKAGE_LOCK_TIMEOUT, MARKER_ENV, PACKAGE_LOCK_VAR, Executor
from integration_agent.scratch import Scratch
from integration_agent.secrets import MASK
from integration_agent.streaming import StreamingExecutor
from tests.conftest import local_and_closed_inventory

PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Reach the host
      ansible.builtin.ping:
    - name: Say where the config came from
      ansible.builtin.debug:
        msg: "config {{ ansible_config_file }} key {{ license_key | default('none') }}"
    - name: Say where Ansible's scratch goes
      ansible.builtin.debug:
        msg: "{{ lookup('ansible.builtin.config', 'DEFAULT_LOCAL_TMP') }}"
    - name: Change something
      ansible.builtin.command: "true"
      changed_when: true
      when: inventory_hostname == 'here'
    - name: Fail with the secret
      ansible.builtin.fail:
        msg: "bad key {{ license_key }}"
      when: license_key is defined
"""


def _playbook(tmp_path: Path, body: str = PLAY) -> Path:
    pb = tmp_path / "play.yml"
    pb.write_text(body)
    return pb


def _wrapper(tmp_path: Path, body: str = 'exec ansible-runner worker "$@"') -> list[str]:
    """A worker command that records its pid, parent pid and TMPDIR before it becomes the worker."""
    script = tmp_path / "worker.sh"
    script.write_text(f'#!/bin/sh\necho "$$ $PPID $TMPDIR" >> "{tmp_path}/worker.log"\n{body}\n')
    script.chmod(0o755)
    return [str(script)]


def _worker_log(tmp_path: Path) -> list[tuple[int, int, str]]:
    return [(int(pid), int(ppid), tmp) for pid, ppid, tmp in
            (line.split() for line in (tmp_path / "worker.log").read_text().splitlines())]


@pytest.fixture
def private_dirs(monkeypatch):
    """Every private dir a run makes (the controller's and the worker's TMPDIR), to check they are gone."""
    made: list[Path] = []
    real = Scratch.private_dir

    def recording(self: Scratch, prefix: str, *, secrets: bool) -> Path:
        made.append(real(self, prefix, secrets=secrets))
        return made[-1]
    monkeypatch.setattr(Scratch, "private_dir", recording)
    return made


def test_streamed_run_folds_like_a_local_run_in_a_separate_worker(tmp_path, private_dirs):
    canary = "canary-" + os.urandom(8).hex()
    events, seen = tmp_path / "events.jsonl", []
    streamed = StreamingExecutor(timeout=5, worker_command=_wrapper(tmp_path)).run(
        _playbook(tmp_path), local_and_closed_inventory(tmp_path), secrets={"license_key": canary}, events_file=events,
        on_event=seen.append, stage="apply")
    local = Executor(timeout=5).run(_playbook(tmp_path), local_and_closed_inventory(tmp_path),
                                    secrets={"license_key": canary})

    assert streamed.completed and streamed.status == local.status == "failed"
    assert streamed.hosts == local.hosts  # same folding: counts, failures, changes, unreachable
    assert streamed.hosts["here"].changed == 1 and streamed.hosts["closed"].unreachable
    assert streamed.failed_hosts == ["closed", "here"]
    assert MASK in streamed.hosts["here"].failures[0] and canary not in repr(streamed.hosts)
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[-1]["event"] == "playbook_on_stats" and {line["stage"] for line in lines} == {"apply"}
    assert canary not in events.read_text() and canary not in repr(seen)

    [(pid, ppid, worker_tmp)] = _worker_log(tmp_path)
    assert pid != os.getpid() and ppid == os.getpid()  # a child process of ours ran the job
    # Ansible on the worker read the ansible.cfg sent in the job, inside the worker's own private dir.
    message = next(e["event_data"]["res"]["msg"] for e in seen if e.get("event") == "runner_on_ok"
                   and e["event_data"].get("task") == "Say where the config came from")
    assert message.startswith(f"config {worker_tmp}/") and message.split()[1].endswith("/project/ansible.cfg")
    assert worker_tmp.startswith("/dev/shm/intagent-worker-")
    scratch = next(e["event_data"]["res"]["msg"] for e in seen if e.get("event") == "runner_on_ok"
                   and e["event_data"].get("task") == "Say where Ansible's scratch goes")
    assert scratch.startswith(f"{worker_tmp}/"), scratch
    assert {str(p) for p in private_dirs} >= {worker_tmp} and len(private_dirs) == 3  # 2 streamed, 1 local
    assert not [p for p in private_dirs if p.exists()], "private dirs must be removed after the run"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert canary not in path.read_text(errors="ignore"), path


def test_the_job_zip_stays_in_memory(tmp_path, monkeypatch):
    """ansible-runner zips the job, secrets included, through tempfile: that file must not reach the disk."""
    places: list[str] = []
    real = tempfile.NamedTemporaryFile

    def recording(*args, **kwargs):
        places.append(kwargs.get("dir") or tempfile.gettempdir())
        return real(*args, **kwargs)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", recording)
    before = tempfile.tempdir
    # With Mitogen's strategy (the default setting), which the worker loads from the job it was sent.
    result = StreamingExecutor(mitogen=True).run(_playbook(tmp_path), local_and_closed_inventory(tmp_path),
                                                 limit="here", secrets={"license_key": "x"})
    assert result.completed and result.hosts["here"].changed == 1  # the play ran (and failed where it should)
    assert places and all(p.startswith("/dev/shm") for p in places), places  # the job out, the artifacts back
    assert tempfile.tempdir == before


def test_the_sent_job_is_self_contained_and_names_no_controller_path(tmp_path, private_dirs):
    capture = tmp_path / "stream"
    command = ["sh", "-c", f'cat > "{capture}"; echo "worker: cannot run this job" >&2; exit 3']
    with pytest.raises(ExecutionFailed) as info:
        StreamingExecutor(timeout=7, worker_command=command, mitogen=True).run(
            _playbook(tmp_path), local_and_closed_inventory(tmp_path), limit="here", extravars={"colour": "blue"},
            secrets={"license_key": "sekrit"}, check=True)
    message = str(info.value)
    assert "ended without a result (exit code 3)" in message and "worker: cannot run this job" in message
    assert "cat >" in message and "INTAGENT_ANSIBLE_WORKER_COMMAND" in message
    assert not [p for p in private_dirs if p.exists()]

    stream = io.BytesIO(capture.read_bytes())
    kwargs = json.loads(stream.readline())["kwargs"]
    assert kwargs["playbook"] == "play.yml" and kwargs["inventory"] == "inventory/0/hosts.yml"
    assert kwargs["limit"] == "here"
    assert kwargs["extravars"] == {"colour": "blue", PACKAGE_LOCK_VAR: DEFAULT_PACKAGE_LOCK_TIMEOUT}
    assert kwargs["cmdline"] == "--check -e @../secrets.json"
    env = kwargs["envvars"]
    assert env["ANSIBLE_CONFIG"] == "ansible.cfg" and env["ANSIBLE_TIMEOUT"] == "7" and MARKER_ENV in env
    assert env["ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED"] == "True" and env["ANSIBLE_HOST_PATTERN_MISMATCH"] == "error"
    assert env["ANSIBLE_NOCOLOR"] == "True"
    assert not {"PATH", "ANSIBLE_ROLES_PATH", "ANSIBLE_STRATEGY_PLUGINS"} & set(env)
    assert env["ANSIBLE_STRATEGY"] == "intagent_mitogen_linear"  # loaded from the job's strategy_plugins
    assert str(tmp_path) not in json.dumps(kwargs) and "/dev/shm" not in json.dumps(kwargs)

    job = tmp_path / "job"
    unstream_dir(stream, json.loads(stream.readline())["zipfile"], str(job))
    assert (job / "project" / "play.yml").read_text() == PLAY
    assert (job / "project" / "ansible.cfg").is_file()
    assert (job / "project" / "roles" / "node_exporter" / "tasks" / "main.yml").is_file()
    assert sorted(p.name for p in (job / "project" / "strategy_plugins").iterdir()) == [
        "intagent_free.py", "intagent_linear.py", "intagent_mitogen_free.py", "intagent_mitogen_linear.py"]
    assert (job / "inventory" / "0" / "hosts.yml").read_text() == local_and_closed_inventory(tmp_path).read_text()
    assert json.loads((job / "secrets.json").read_text()) == {"license_key": "sekrit"}
    assert stat.S_IMODE((job / "secrets.json").stat().st_mode) == 0o600


def test_a_worker_command_that_cannot_start_is_named(tmp_path, private_dirs):
    with pytest.raises(ConfigError) as info:
        StreamingExecutor(worker_command=[str(tmp_path / "no-such-worker"), "worker"]).run(
            _playbook(tmp_path), local_and_closed_inventory(tmp_path), limit="here", secrets={"license_key": "x"})
    assert "no-such-worker worker" in str(info.value) and "cannot start" in str(info.value)
    assert not [p for p in private_dirs if p.exists()]


def test_cancel_stops_the_worker_and_reports_an_incomplete_run(tmp_path, private_dirs):
    cancel = threading.Event()
    executor = StreamingExecutor(worker_command=_wrapper(tmp_path))
    sleeping = ("- hosts: here\n  gather_facts: false\n  tasks:\n"
                "    - name: Sleep\n      ansible.builtin.command: sleep 120\n")

    def on_event(event):
        if event.get("event") == "runner_on_start":
            cancel.set()
    started = time.monotonic()
    result = executor.run(_playbook(tmp_path, sleeping), local_and_closed_inventory(tmp_path), limit="here",
                          on_event=on_event, cancel=cancel)
    assert time.monotonic() - started < 60
    assert result.status == "canceled" and not result.completed and result.hosts == {}
    [(pid, _, _)] = _worker_log(tmp_path)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert executor.leftovers() == []
    assert not [p for p in private_dirs if p.exists()]


def _script_inventory(tmp_path: Path) -> Path:
    """A dynamic inventory script (group ``scripted`` with one local host) and a group_vars file beside it."""
    folder = tmp_path / "dynamic"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "group_vars" / "scripted.yml").write_text("colour: from-group-vars\n")
    script = folder / "inventory.py"
    script.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                      "print(json.dumps({'scripted': {'hosts': ['also-here']}, '_meta': {'hostvars': {'also-here': {"
                      "'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}))\n")
    script.chmod(0o755)
    return script


COLOUR_PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Say the colour
      ansible.builtin.debug:
        msg: "colour {{ colour | default('none') }}"
"""


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "local"])
def test_several_inventory_sources_and_a_script_are_all_read(tmp_path, streamed):
    sources = [local_and_closed_inventory(tmp_path), _script_inventory(tmp_path)]
    run = (StreamingExecutor(timeout=5, worker_command=_wrapper(tmp_path)) if streamed else Executor(timeout=5))
    seen: list[dict] = []
    result = run.run(_playbook(tmp_path, COLOUR_PLAY), sources, limit="here:also-here", on_event=seen.append)
    assert result.status == "successful" and set(result.hosts) == {"here", "also-here"}
    said = {e["event_data"]["host"]: e["event_data"]["res"]["msg"] for e in seen if e.get("event") == "runner_on_ok"}
    assert said == {"here": "colour none", "also-here": "colour from-group-vars"}  # the script's group_vars too
