"""The streaming executor's settings, factory, staged job and temporary-file placement (no Ansible run)."""

import tempfile
import threading
from pathlib import Path

import pytest

from integration_agent.ansible_env import AnsibleEnvironment
from integration_agent.errors import ConfigError
from integration_agent.executor import Executor, Job
from integration_agent.paths import ROLES_DIR
from integration_agent.secrets import Redactor
from integration_agent.settings import load_settings
from integration_agent.streaming import StreamingExecutor, _stage, _temp_files_in, make_executor


def test_defaults_run_locally(tmp_path, isolated_env):
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.ansible.executor == "local"
    assert settings.ansible.worker_command == "ansible-runner worker"
    assert type(make_executor(settings)) is Executor


def test_environment_selects_streaming_and_a_worker_command(tmp_path, isolated_env):
    settings = load_settings(cwd=tmp_path, env={
        "INTAGENT_ANSIBLE_EXECUTOR": "streaming", "INTAGENT_ANSIBLE_FORKS": "7", "INTAGENT_ANSIBLE_TIMEOUT": "9",
        "INTAGENT_ANSIBLE_WORKER_COMMAND": "ssh -T -o 'ConnectTimeout 5' execnode ansible-runner worker"})
    executor = make_executor(settings)
    assert isinstance(executor, StreamingExecutor)
    assert executor.worker_command == ["ssh", "-T", "-o", "ConnectTimeout 5", "execnode", "ansible-runner", "worker"]
    assert (executor.forks, executor.timeout) == (7, 9)


@pytest.mark.parametrize("executor", ["local", "streaming"])
def test_both_executors_put_private_files_where_secrets_dir_says(tmp_path, isolated_env, executor):
    settings = load_settings(cwd=tmp_path, env={"INTAGENT_ANSIBLE_EXECUTOR": executor,
                                                 "INTAGENT_SECRETS_DIR": str(tmp_path)})
    assert make_executor(settings).scratch.secrets_dir == tmp_path


def test_config_file_selects_streaming(tmp_path, isolated_env):
    (tmp_path / "workflow_config.yaml").write_text("ansible:\n  executor: streaming\n  worker_command: /opt/w\n")
    executor = make_executor(load_settings(cwd=tmp_path, env={}))
    assert isinstance(executor, StreamingExecutor) and executor.worker_command == ["/opt/w"]


def test_unknown_executor_names_key_and_variable(tmp_path, isolated_env):
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, env={"INTAGENT_ANSIBLE_EXECUTOR": "remote"})
    message = str(info.value)
    assert "INTAGENT_ANSIBLE_EXECUTOR" in message and "ansible.executor" in message and "'remote'" in message


@pytest.mark.parametrize("value", ["''", "'   '", "'ssh \"execnode'"])
def test_unusable_worker_command_names_key_and_file(tmp_path, isolated_env, value):
    (tmp_path / "workflow_config.yaml").write_text(f"ansible:\n  worker_command: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cwd=tmp_path, env={})
    message = str(info.value)
    assert "ansible.worker_command" in message and "workflow_config.yaml" in message
    assert "empty command" in message or "not a valid command line" in message


def _job(tmp_path: Path, roles_path: Path | None, config_file: Path | None = None) -> Job:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    source = tmp_path / "run"
    (source / "group_vars").mkdir(parents=True)
    (source / "group_vars" / "all.yml").write_text("answer: 42\n")
    (source / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n")
    (source / "main.yml").write_text("- hosts: all\n  tasks: []\n")
    ansible = AnsibleEnvironment({}, config_file, frozenset(), frozenset())
    return Job(private=private, playbook=source / "main.yml", inventories=[source / "hosts.yml"], limit=None,
               extravars={}, options=[], secret_files=[], env={}, ansible=ansible, roles_path=roles_path,
               forks=None, verbosity=0, handle=lambda event: False, redact=Redactor([]))


def test_staged_job_is_self_contained(tmp_path):
    generated = tmp_path / "generated" / "roles"
    (generated / "node_exporter" / "tasks").mkdir(parents=True)
    (generated / "node_exporter" / "tasks" / "main.yml").write_text("# generated\n")
    (generated / "node_exporter" / "__pycache__").mkdir()
    operator_cfg = tmp_path / "operator" / "ansible.cfg"
    operator_cfg.parent.mkdir()
    operator_cfg.write_text("[defaults]\nremote_user = ops\n")
    job = _job(tmp_path, generated, operator_cfg)

    playbook, [inventory] = _stage(job)

    project = job.private / "project"
    assert playbook == project / "main.yml" and playbook.read_text() == job.playbook.read_text()
    # The operator's settings travel with the job, not intagent's own file.
    assert (project / "ansible.cfg").read_text() == operator_cfg.read_text()
    assert project.stat().st_mode & 0o777 == 0o700  # ansible reads ansible.cfg only from a safe cwd
    roles = {p.name for p in (project / "roles").iterdir()}
    assert roles == {p.name for p in ROLES_DIR.iterdir() if p.is_dir()}
    # The run's own role wins over the curated one of the same name, as on ANSIBLE_ROLES_PATH.
    assert (project / "roles" / "node_exporter" / "tasks" / "main.yml").read_text() == "# generated\n"
    assert not (project / "roles" / "node_exporter" / "__pycache__").exists()
    curated = project / "roles" / "zabbix_agent" / "tasks" / "main.yml"
    assert curated.read_text() == (ROLES_DIR / "zabbix_agent" / "tasks" / "main.yml").read_text()
    assert inventory == job.private / "inventory" / "0" / "hosts.yml"
    assert inventory.read_text() == job.inventories[0].read_text()
    assert (job.private / "inventory" / "0" / "group_vars" / "all.yml").read_text() == "answer: 42\n"


def test_staged_job_without_an_operator_config_sends_none(tmp_path):
    job = _job(tmp_path, None)
    _stage(job)
    assert not (job.private / "project" / "ansible.cfg").exists()


def test_staged_inventory_directory_is_copied_whole(tmp_path):
    job = _job(tmp_path, None)
    inventory_dir = tmp_path / "inv"
    (inventory_dir / "host_vars").mkdir(parents=True)
    (inventory_dir / "hosts.ini").write_text("h1\n")
    (inventory_dir / "host_vars" / "h1.yml").write_text("x: 1\n")
    job.inventories = [inventory_dir, job.inventories[0]]
    _, [inventory, second] = _stage(job)
    assert inventory == job.private / "inventory" / "0" / "inv"
    assert (inventory / "hosts.ini").read_text() == "h1\n" and (inventory / "host_vars" / "h1.yml").is_file()
    # Each source keeps the group_vars beside it.
    assert (second.parent / "group_vars" / "all.yml").is_file() and not (inventory.parent / "group_vars").exists()


def test_temporary_files_go_to_memory_while_runs_overlap(tmp_path):
    before = tempfile.tempdir
    memory = str(tmp_path / "memory")
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()

    def first_run():  # starts first, ends first
        with _temp_files_in(memory):
            first_inside.set()
            second_inside.wait(5)
        first_done.set()

    thread = threading.Thread(target=first_run)
    thread.start()
    first_inside.wait(5)
    with _temp_files_in(memory):
        second_inside.set()
        first_done.wait(5)
        assert tempfile.gettempdir() == memory  # the first run's end must not take it away
    thread.join()
    assert tempfile.tempdir == before
