"""The command line as a user meets it: fast help, clear one-line errors, documented exit codes."""

import subprocess
import sys

from tests.conftest import run_cli


def test_version_and_help_answer():
    assert run_cli("--version").stdout.strip().startswith("intagent ")
    help_text = run_cli("--help").stdout
    for command in ("lab", "ping", "config"):
        assert command in help_text


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from integration_agent.cli import app; "
            "heavy = [m for m in ('ansible', 'ansible_runner', 'openai', 'jinja2', 'pydantic') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def _as_intagent(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI run under the console script's name (completion keys on it), with this checkout's package."""
    import os

    from tests.conftest import REPO

    code = "import sys; sys.argv[0] = 'intagent'; from integration_agent.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_shell_completion_is_offered_and_completes_commands():
    assert "--install-completion" in run_cli("--help").stdout
    script = _as_intagent("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert script.returncode == 0 and "_INTAGENT_COMPLETE=complete_bash" in script.stdout, script.stderr
    completed = _as_intagent(_INTAGENT_COMPLETE="complete_bash", COMP_WORDS="intagent uni", COMP_CWORD="1")
    assert completed.returncode == 0 and completed.stdout.split() == ["uninstall"], completed


def _one_error_line(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("intagent: error: ")
    return lines[0]


def test_unknown_key_in_config_file(tmp_path, isolated_env):
    cfg = tmp_path / "workflow_config.yaml"
    cfg.write_text("lab:\n  colour: blue\n")
    proc = run_cli("--config", str(cfg), "config", env=isolated_env)
    assert proc.returncode == 3
    line = _one_error_line(proc)
    assert "lab.colour" in line and str(cfg) in line


def test_wrong_type_in_config_file(tmp_path, isolated_env):
    cfg = tmp_path / "workflow_config.yaml"
    cfg.write_text("lab:\n  mirror_port: eighty\n")
    proc = run_cli("--config", str(cfg), "config", env=isolated_env)
    assert proc.returncode == 3
    assert "lab.mirror_port" in _one_error_line(proc)


def test_missing_config_file(tmp_path, isolated_env):
    proc = run_cli("--config", str(tmp_path / "absent.yaml"), "config", env=isolated_env)
    assert proc.returncode == 3
    assert "absent.yaml" in _one_error_line(proc)


def test_bad_environment_variable(tmp_path, isolated_env):
    proc = run_cli("config", env={**isolated_env, "INTAGENT_ANSIBLE_FORKS": "-3"}, cwd=tmp_path)
    assert proc.returncode == 3
    assert "INTAGENT_ANSIBLE_FORKS" in _one_error_line(proc)


def test_config_shows_merged_settings(tmp_path, isolated_env):
    (tmp_path / "workflow_config.yaml").write_text("lab:\n  hosts: 5\n")
    proc = run_cli("config", env={**isolated_env, "INTAGENT_ANSIBLE_FORKS": "4"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "hosts: 5" in proc.stdout and "forks: 4" in proc.stdout


def test_usage_error_is_exit_2():
    assert run_cli("ping").returncode == 2  # --inventory is required


def test_config_shows_where_each_ansible_setting_came_from(tmp_path, isolated_env):
    import yaml

    (tmp_path / "ansible.cfg").write_text("[defaults]\nremote_user = ops\n[ssh_connection]\npipelining = False\n")
    proc = run_cli("config", env={**isolated_env, "ANSIBLE_TIMEOUT": "17"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    settings, ansible = yaml.safe_load_all(proc.stdout)
    assert "ansible" in settings
    assert ansible["ansible_config_file"] == str(tmp_path / "ansible.cfg")
    rows = ansible["ansible_settings"]
    assert rows["DEFAULT_REMOTE_USER"] == {"value": "ops", "origin": str(tmp_path / "ansible.cfg")}
    assert rows["DEFAULT_TIMEOUT"] == {"value": 17, "origin": "environment variable ANSIBLE_TIMEOUT"}
    assert rows["HOST_PATTERN_MISMATCH"]["origin"] == "intagent (required)"
    assert "ANSIBLE_PIPELINING" not in rows  # theirs (False, Ansible's default), not intagent's (True)
    assert rows["DEFAULT_FORKS"]["origin"] == "intagent (default)"
