"""The operator's Ansible environment: which ansible.cfg is found, and what intagent layers on top of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration_agent.ansible_env import (
    DEFAULT_SETTINGS,
    REQUIRED_ENV,
    AnsibleOptions,
    describe,
    find_user_config,
    layered,
)
from integration_agent.paths import ROLES_DIR


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home and working directory, so the machine's own files play no part."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def cfg(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_is_found_in_ansibles_order(home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "project"
    named = cfg(tmp_path / "named.cfg", "[defaults]\n")
    local = cfg(cwd / "ansible.cfg", "[defaults]\n")
    user = cfg(home / ".ansible.cfg", "[defaults]\n")
    assert find_user_config({"ANSIBLE_CONFIG": str(named)}, cwd) == named
    assert find_user_config({}, cwd) == local
    local.unlink()
    assert find_user_config({}, cwd) == user
    # ANSIBLE_CONFIG may name a directory holding an ansible.cfg
    assert find_user_config({"ANSIBLE_CONFIG": str(cwd.parent / "d")}, cwd) == user
    assert find_user_config({"ANSIBLE_CONFIG": str(cfg(tmp_path / "d" / "ansible.cfg", "").parent)}, cwd) == \
        tmp_path / "d" / "ansible.cfg"


def test_a_world_writable_working_directory_is_not_trusted(home: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "shared"
    cfg(cwd / "ansible.cfg", "[defaults]\nremote_user = mallory\n")
    os.chmod(cwd, 0o777)
    assert find_user_config({}, cwd) in (None, Path("/etc/ansible/ansible.cfg"))
    os.chmod(cwd, 0o755)
    assert find_user_config({}, cwd) == cwd / "ansible.cfg"


def test_required_settings_always_win(home: Path, tmp_path: Path) -> None:
    user = cfg(tmp_path / "ansible.cfg", "[inventory]\nany_unparsed_is_failed = False\n")
    env = {"ANSIBLE_CONFIG": str(user), "ANSIBLE_HOST_PATTERN_MISMATCH": "ignore", "ANSIBLE_BECOME_ASK_PASS": "True"}
    out = layered(env=env, cwd=tmp_path).env
    for variable, value in REQUIRED_ENV.items():
        assert out[variable] == value
    assert out["ANSIBLE_CONFIG"] == str(user)


def test_defaults_apply_only_where_the_operator_sets_nothing(home: Path, tmp_path: Path) -> None:
    bare = layered(env={}, cwd=tmp_path)
    assert set(DEFAULT_SETTINGS) <= set(bare.env)  # no operator file: every intagent default applies
    assert "ANSIBLE_CONFIG" not in bare.env and bare.config_file is None

    user = cfg(tmp_path / "ansible.cfg", "[defaults]\nforks = 3\ntimeout = 42\n"
                                         "[ssh_connection]\nssh_args = -o ProxyJump=jump\npipelining = False\n")
    theirs = layered(env={"ANSIBLE_GATHERING": "explicit", "ANSIBLE_SSH_TIMEOUT": "7"}, cwd=tmp_path)
    assert theirs.config_file == user
    for variable in ("ANSIBLE_FORKS", "ANSIBLE_SSH_ARGS", "ANSIBLE_PIPELINING", "ANSIBLE_GATHERING", "ANSIBLE_TIMEOUT"):
        assert variable not in theirs.env, variable  # theirs (file, env or an alias) is kept
        assert theirs.origin(variable) is None
    assert theirs.origin("ANSIBLE_PYTHON_INTERPRETER") == "intagent (default)"
    assert theirs.origin("ANSIBLE_HOST_PATTERN_MISMATCH") == "intagent (required)"


def test_roles_path_puts_the_run_and_curated_roles_first_then_the_operators(home: Path, tmp_path: Path) -> None:
    run_roles = tmp_path / "run" / "roles"
    assert layered(roles_path=run_roles, env={}, cwd=tmp_path).env["ANSIBLE_ROLES_PATH"].split(os.pathsep)[:2] == \
        [str(run_roles), str(ROLES_DIR)]
    cfg(tmp_path / "ansible.cfg", "[defaults]\nroles_path = roles:/opt/shared/roles\n")
    parts = layered(env={}, cwd=tmp_path).env["ANSIBLE_ROLES_PATH"].split(os.pathsep)
    assert parts == [str(ROLES_DIR), str(tmp_path / "roles"), "/opt/shared/roles"]  # relative to the file
    parts = layered(env={"ANSIBLE_ROLES_PATH": "/x:/y"}, cwd=tmp_path).env["ANSIBLE_ROLES_PATH"].split(os.pathsep)
    assert parts == [str(ROLES_DIR), "/x", "/y"]


def test_options_become_ansible_playbook_flags_and_survive_a_record(tmp_path: Path) -> None:
    options = AnsibleOptions(inventories=(tmp_path / "a.yml", tmp_path / "b"), user="ops",
                             private_key=tmp_path / "id", ssh_common_args="-o ProxyJump=jump", become=True,
                             become_user="root", become_method="sudo", vault_ids=("prod@prompt",),
                             vault_password_files=(tmp_path / "pass",), forks=7, verbosity=2)
    assert options.playbook_args() == [
        "--user", "ops", "--private-key", str(tmp_path / "id"), "--ssh-common-args", "-o ProxyJump=jump",
        "--become", "--become-user", "root", "--become-method", "sudo",
        "--vault-id", "prod@prompt", "--vault-password-file", str(tmp_path / "pass")]
    assert AnsibleOptions.from_record(options.recorded()) == options
    assert AnsibleOptions().playbook_args() == []


def test_config_describes_where_each_setting_came_from(home: Path, tmp_path: Path) -> None:
    cfg(tmp_path / "ansible.cfg", "[defaults]\nremote_user = ops\n")
    rows = {row["name"]: row for row in describe(layered(env={}, cwd=tmp_path), base_env={"HOME": str(home)})}
    assert rows["DEFAULT_REMOTE_USER"]["value"] == "ops"
    assert rows["DEFAULT_REMOTE_USER"]["origin"] == str(tmp_path / "ansible.cfg")
    assert rows["HOST_PATTERN_MISMATCH"]["origin"] == "intagent (required)"
    assert rows["DEFAULT_FORKS"]["origin"] == "intagent (default)"
