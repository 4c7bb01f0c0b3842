import os
from pathlib import Path

import pytest

from integration_agent.errors import ConfigError
from integration_agent.settings import load_settings


def test_defaults_without_any_file(tmp_path, isolated_env):
    settings = load_settings(cwd=tmp_path, env={})
    assert settings.lab.hosts == 3
    assert str(settings.lab.subnet) == "10.231.0.0/24"


def test_layers_apply_in_order_file_env_flags(tmp_path, isolated_env):
    (tmp_path / "workflow_config.yaml").write_text("lab:\n  hosts: 5\n  mirror_port: 9000\nansible:\n  forks: 7\n")
    settings = load_settings(cwd=tmp_path, env={"INTAGENT_LAB_HOSTS": "6", "INTAGENT_ANSIBLE_FORKS": "8"},
                             overrides={"ansible.forks": 9})
    assert settings.lab.mirror_port == 9000  # file only
    assert settings.lab.hosts == 6  # env beats file
    assert settings.ansible.forks == 9  # flag beats env


def test_user_config_dir_is_searched_after_cwd(tmp_path, isolated_env):
    user = Path(isolated_env["XDG_CONFIG_HOME"]) / "intagent"
    user.mkdir(parents=True)
    (user / "workflow_config.yaml").write_text("lab:\n  hosts: 4\n")
    assert load_settings(cwd=tmp_path, env={}).lab.hosts == 4
    (tmp_path / "workflow_config.yaml").write_text("lab:\n  hosts: 2\n")
    assert load_settings(cwd=tmp_path, env={}).lab.hosts == 2


def test_unknown_key_names_key_and_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lab:\n  hostz: 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    assert str(cfg) in str(info.value) and "lab.hostz" in str(info.value) and "unknown key" in str(info.value)


def test_wrong_type_names_key_file_and_value(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ansible:\n  forks: many\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, env={})
    message = str(info.value)
    assert str(cfg) in message and "ansible.forks" in message and "'many'" in message


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_invalid_yaml_names_file_and_line(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lab:\n  hosts: [1,\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:\d+: not valid YAML"):
        load_settings(cfg, env={})


def test_top_level_must_be_a_mapping(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(cfg, env={})


def test_env_wrong_type_names_the_variable(tmp_path, isolated_env):
    with pytest.raises(ConfigError, match=r"environment variable INTAGENT_LAB_HOSTS: lab.hosts"):
        load_settings(cwd=tmp_path, env={"INTAGENT_LAB_HOSTS": "lots"})


def test_env_unknown_variable_is_an_error(tmp_path, isolated_env):
    with pytest.raises(ConfigError, match="INTAGENT_LAB_HOTS: unknown setting"):
        load_settings(cwd=tmp_path, env={"INTAGENT_LAB_HOTS": "3"})


def test_env_config_variable_points_at_file(tmp_path, isolated_env):
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text("lab:\n  hosts: 8\n")
    assert load_settings(cwd=tmp_path, env={"INTAGENT_CONFIG": str(cfg)}).lab.hosts == 8


def test_out_of_range_value_is_rejected(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lab:\n  hosts: 0\n")
    with pytest.raises(ConfigError, match=r"lab.hosts"):
        load_settings(cfg, env={})


def test_example_config_is_valid_and_documents_every_key(isolated_env):
    from integration_agent.settings import Settings, _env_key_paths

    example = Path(__file__).resolve().parents[2] / "workflow_config.example.yaml"
    load_settings(example, env={})
    text = example.read_text()
    for path in _env_key_paths(Settings).values():
        assert f"{path[-1]}:" in text, f"{'.'.join(path)} is not in the example config"


def test_paths_expand_the_home_directory(tmp_path, isolated_env):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("runs_dir: ~/runs\n")
    assert load_settings(cfg, env={}).runs_dir == Path.home() / "runs"


def test_integrations_path_is_a_setting_split_like_path(tmp_path, isolated_env):
    first, second = tmp_path / "team-a", tmp_path / "team-b"
    first.mkdir()
    second.mkdir()
    env = {"INTAGENT_INTEGRATIONS_PATH": f"{first}{os.pathsep}{os.pathsep}{second}"}
    assert load_settings(cwd=tmp_path, env=env).integrations_path == [first, second]
    assert load_settings(cwd=tmp_path, env={"INTAGENT_INTEGRATIONS_PATH": ""}).integrations_path == []
    (tmp_path / "workflow_config.yaml").write_text(f"integrations_path: [{first}]\n")
    assert load_settings(cwd=tmp_path, env={}).integrations_path == [first]


def test_an_integrations_path_that_is_no_directory_names_the_variable(tmp_path, isolated_env):
    env = {"INTAGENT_INTEGRATIONS_PATH": str(tmp_path / "typo")}
    with pytest.raises(ConfigError, match=r"INTAGENT_INTEGRATIONS_PATH: integrations_path: .*not a directory: .*typo"):
        load_settings(cwd=tmp_path, env=env)


def test_secrets_dir_must_be_a_writable_directory(tmp_path, isolated_env):
    assert load_settings(cwd=tmp_path, env={}).secrets_dir is None
    assert load_settings(cwd=tmp_path, env={"INTAGENT_SECRETS_DIR": str(tmp_path)}).secrets_dir == tmp_path
    with pytest.raises(ConfigError, match=r"INTAGENT_SECRETS_DIR: secrets_dir: .*not a writable directory"):
        load_settings(cwd=tmp_path, env={"INTAGENT_SECRETS_DIR": str(tmp_path / "absent")})


def test_learned_dir_defaults_to_the_user_data_folder(tmp_path, isolated_env, monkeypatch):
    assert load_settings(cwd=tmp_path, env={}).learned_dir == tmp_path / "data" / "intagent" / "learned"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert load_settings(cwd=tmp_path, env={}).learned_dir == Path.home() / ".local" / "share" / "intagent" / "learned"


def test_learned_dir_is_a_setting(tmp_path, isolated_env):
    env = {"INTAGENT_LEARNED_DIR": str(tmp_path / "notes")}
    assert load_settings(cwd=tmp_path, env=env).learned_dir == tmp_path / "notes"
    (tmp_path / "workflow_config.yaml").write_text("learned_dir: knowledge/learned\n")  # a checkout's choice
    assert load_settings(cwd=tmp_path, env={}).learned_dir == Path("knowledge/learned")


def test_learned_dir_is_not_a_knowledge_folder_itself(tmp_path, isolated_env):
    from integration_agent.paths import KNOWLEDGE_DIR

    with pytest.raises(ConfigError, match=r"INTAGENT_LEARNED_DIR: learned_dir: .*curated documents"):
        load_settings(cwd=tmp_path, env={"INTAGENT_LEARNED_DIR": str(KNOWLEDGE_DIR)})
    (tmp_path / "team" / "knowledge").mkdir(parents=True)
    env = {"INTAGENT_INTEGRATIONS_PATH": str(tmp_path / "team"),
           "INTAGENT_LEARNED_DIR": str(tmp_path / "team" / "knowledge")}
    with pytest.raises(ConfigError, match=r"learned_dir: .*curated documents"):
        load_settings(cwd=tmp_path, env=env)
