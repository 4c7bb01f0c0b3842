"""Bad input is refused before any playbook starts: clear error, distinct exit code, no run directory."""

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    return inv


def _refused(proc, code: int, *needles: str, env, figure=None) -> None:
    if figure is not None:
        runs = Path(env["XDG_STATE_HOME"]) / "intagent" / "runs"
        figure("10 malformed inventory", f"{needles[0][:40]}: runs started",
               len(list(runs.iterdir())) if runs.exists() else 0)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("intagent: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]
    runs = Path(env["XDG_STATE_HOME"]) / "intagent" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run was started"


def test_broken_inventory(tmp_path, isolated_env, figure):
    inv = tmp_path / "broken.yml"
    inv.write_text("all:\n  hosts: [\n")
    _refused(run_cli("install", "node_exporter", "-i", str(inv), "--yes", env=isolated_env), 4, "broken.yml",
             env=isolated_env, figure=figure)


def test_limit_matching_nothing(inventory, isolated_env):
    _refused(run_cli("plan", "node_exporter", "-i", str(inventory), "-l", "db*", env=isolated_env), 4,
             "no hosts matched --limit 'db*'", env=isolated_env)


def test_duplicate_keys_in_the_inventory(tmp_path, isolated_env, figure):
    inv = tmp_path / "dup.yml"
    inv.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_host: 127.0.0.2\n")
    _refused(run_cli("install", "node_exporter", "-i", str(inv), "--yes", env=isolated_env), 4,
             "duplicate mapping key 'ansible_host'", "dup.yml:5", env=isolated_env, figure=figure)


def test_limit_naming_an_unknown_group(inventory, isolated_env, figure):
    _refused(run_cli("install", "node_exporter", "-i", str(inventory), "-l", "databases", "--yes",
                     env=isolated_env), 4, "no hosts matched --limit 'databases'", env=isolated_env, figure=figure)


@pytest.mark.parametrize("name, value", [("ansible_host", "127.0.0.1; touch /tmp/owned"),
                                         ("ansible_user", "root$(id)"), ("ansible_port", "22 -oProxyCommand=x")])
def test_a_connection_variable_with_shell_metacharacters(tmp_path, isolated_env, name, value, figure):
    inv = tmp_path / "hosts.yml"
    inv.write_text(f"all:\n  hosts:\n    web1:\n      {name}: '{value}'\n")
    _refused(run_cli("install", "node_exporter", "-i", str(inv), "--yes", env=isolated_env), 4,
             f"host web1: {name} is", "not a host name", env=isolated_env, figure=figure)


def test_unknown_integration(inventory, isolated_env):
    _refused(run_cli("install", "nodexporter", "-i", str(inventory), env=isolated_env), 5,
             "unknown integration 'nodexporter'", "node_exporter", env=isolated_env)


def test_unknown_parameter(inventory, isolated_env):
    _refused(run_cli("plan", "node_exporter", "-i", str(inventory), "--var", "port=9100", env=isolated_env), 5,
             "has no parameter 'port'", env=isolated_env)


def test_badly_formed_var(inventory, isolated_env):
    _refused(run_cli("plan", "node_exporter", "-i", str(inventory), "--var", "listen_address", env=isolated_env),
             5, "expected KEY=VALUE", env=isolated_env)


def test_wrong_type_and_choice(inventory, isolated_env):
    _refused(run_cli("plan", "node_exporter", "-i", str(inventory), "--var", "collectors_enabled=systemd",
                     env=isolated_env), 5, "must be of type list", env=isolated_env)
    _refused(run_cli("plan", "node_exporter", "-i", str(inventory), "--var", "install_method=snap",
                     env=isolated_env), 5, "must be one of", env=isolated_env)


def test_without_dev_shm_a_secret_is_written_only_to_a_folder_the_user_named(inventory, isolated_env, tmp_path,
                                                                             monkeypatch, capsys):
    """No memory file system: a run with a secret is refused before any playbook (exit 3, naming the problem
    and the setting) unless secrets_dir names a folder; a run without one goes on. ``memory`` is injected:
    the command runs in this process with /dev/shm standing in as a missing folder."""
    import os

    import integration_agent.cli as cli
    from integration_agent.scratch import Scratch

    missing, accepted, canary = tmp_path / "no-shm", tmp_path / "accepted", "canary-" + os.urandom(8).hex()
    accepted.mkdir()
    monkeypatch.setattr(Scratch, "for_settings", classmethod(lambda cls, s: cls(s.secrets_dir, memory=missing)))
    monkeypatch.setenv("NEW_RELIC_LICENSE_KEY", canary)
    runs = Path(isolated_env["XDG_STATE_HOME"]) / "intagent" / "runs"

    def intagent(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as info:
            cli.main([*args, "-i", str(inventory), "--yes", "--json"])
        return info.value.code, capsys.readouterr().err

    code, err = intagent("install", "infra_agent")
    assert code == 3, err
    assert f"{missing} is missing or not writable" in err and "INTAGENT_SECRETS_DIR" in err
    assert not runs.exists() or not any(runs.iterdir()), "a run was started"

    code, err = intagent("install", "node_exporter")  # no secret to write: the system's temporary folder is fine
    assert code == 11, err  # its one host is unreachable

    monkeypatch.setenv("INTAGENT_SECRETS_DIR", str(accepted))
    code, err = intagent("install", "infra_agent")
    assert code == 11, err  # it ran, to the unreachable host
    assert not list(accepted.iterdir()), "the run's private files are removed after it"
    for path in [*runs.rglob("*"), *Path(os.environ.get("TMPDIR", "/tmp")).glob("intagent-*/**/*")]:
        if path.is_file():
            assert canary not in path.read_text(errors="ignore"), path
