"""The Mitogen setting: checked when read, and turned into the strategy environment of every playbook (intagent's
strategy plugins: Mitogen's or Ansible's, with play-level modes)."""

from __future__ import annotations

import pytest

from integration_agent import mitogen
from integration_agent.errors import ConfigError
from integration_agent.executor import Executor
from integration_agent.settings import load_settings


def test_mitogen_is_the_default_and_puts_intagents_strategy_in_every_playbooks_environment(monkeypatch):
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    assert load_settings(env={}).ansible.mitogen
    assert not load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "false"}).ansible.mitogen
    env = Executor(mitogen=True).strategy_env
    assert env["ANSIBLE_STRATEGY"] == "intagent_mitogen_linear"
    assert env["ANSIBLE_STRATEGY_PLUGINS"] == str(mitogen.STRATEGY_PLUGINS)
    assert Executor().strategy_env == {"ANSIBLE_STRATEGY": "intagent_linear",
                                       "ANSIBLE_STRATEGY_PLUGINS": str(mitogen.STRATEGY_PLUGINS)}
    assert Executor().play_modes and Executor(mitogen=True).play_modes


@pytest.mark.parametrize("theirs, mitogen_on, ours", [
    ("free", False, "intagent_free"), ("ansible.builtin.linear", False, "intagent_linear"),
    ("host_pinned", True, "intagent_mitogen_linear"), ("host_pinned", False, None)])
def test_the_operators_strategy_chooses_intagents_variant(monkeypatch, theirs, mitogen_on, ours):
    """Their strategy (environment here) picks the variant; one intagent has none of is theirs, unchanged, and
    then a play cannot set its own check mode (intagent runs its dry run as a playbook of its own)."""
    monkeypatch.setenv("ANSIBLE_STRATEGY", theirs)
    executor = Executor(mitogen=mitogen_on)
    assert executor.strategy_env.get("ANSIBLE_STRATEGY") == ours
    assert executor.play_modes == (ours is not None)


def test_the_strategy_in_the_operators_ansible_cfg_counts_too(tmp_path, monkeypatch):
    from integration_agent.ansible_env import user_strategy

    (tmp_path / "ansible.cfg").write_text("[defaults]\nstrategy = free\n")
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    assert user_strategy(cwd=tmp_path) == "free"
    assert user_strategy(env={"ANSIBLE_STRATEGY": "linear"}, cwd=tmp_path) == "linear"  # the environment wins
    monkeypatch.chdir(tmp_path)
    assert Executor(mitogen=True).strategy_env["ANSIBLE_STRATEGY"] == "intagent_mitogen_free"


def test_the_operators_free_strategy_becomes_mitogens_free(monkeypatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")
    assert Executor(mitogen=True).strategy_env["ANSIBLE_STRATEGY"] == "intagent_mitogen_free"


@pytest.mark.parametrize("name, base", [("intagent_mitogen_linear", "linear"), ("intagent_mitogen_free", "free")])
def test_intagents_strategies_are_mitogens_without_its_cpu_pinning(name, base):
    """Loaded the way Ansible loads them (by name, from the folder the environment names), they are Mitogen's
    strategy on top of Ansible's with play-level modes, and Mitogen no longer pins processes to one CPU."""
    import ansible_mitogen.affinity
    import ansible_mitogen.strategy
    from ansible.plugins.loader import strategy_loader

    strategy_loader.add_directory(str(mitogen.STRATEGY_PLUGINS))
    plugin = strategy_loader.get(name, class_only=True)
    assert plugin is not None, f"Ansible cannot load {name} from {mitogen.STRATEGY_PLUGINS}"
    assert issubclass(plugin, ansible_mitogen.strategy.StrategyMixin)
    assert issubclass(plugin, strategy_loader.get(base, class_only=True))
    assert any(cls.__name__ == "PlayModes" for cls in plugin.__mro__)
    assert type(ansible_mitogen.affinity.policy) is ansible_mitogen.affinity.Policy  # the one that pins nothing


def test_an_ansible_core_mitogen_does_not_support_is_refused_when_the_setting_is_read(monkeypatch):
    monkeypatch.setattr(mitogen, "ansible_core_version", lambda: (2, 20))
    with pytest.raises(ConfigError, match=r"INTAGENT_ANSIBLE_MITOGEN: ansible.mitogen: .*Mitogen supports "
                                          r"ansible-core 2.10 to 2.19; this is ansible-core 2.20"):
        load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "true"})
    assert not load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "false"}).ansible.mitogen  # off: nothing to check


def test_mitogen_missing_is_refused_naming_the_extra(monkeypatch):
    monkeypatch.setattr(mitogen.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"Mitogen is not installed \(pip install 'mitogen"):
        load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "true"})
