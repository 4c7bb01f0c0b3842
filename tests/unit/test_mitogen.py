"""The Mitogen setting: checked when read, and turned into the strategy environment of every playbook."""

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
    assert Executor().strategy_env == {}


def test_the_operators_free_strategy_becomes_mitogens_free(monkeypatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")
    assert Executor(mitogen=True).strategy_env["ANSIBLE_STRATEGY"] == "intagent_mitogen_free"


@pytest.mark.parametrize("name, base", [("intagent_mitogen_linear", "linear"), ("intagent_mitogen_free", "free")])
def test_intagents_strategies_are_mitogens_without_its_cpu_pinning(name, base):
    """Loaded the way Ansible loads them (by name, from the folder the environment names), they are Mitogen's
    strategy on top of Ansible's, and Mitogen no longer pins processes to one CPU."""
    import ansible_mitogen.affinity
    import ansible_mitogen.strategy
    from ansible.plugins.loader import strategy_loader

    strategy_loader.add_directory(str(mitogen.STRATEGY_PLUGINS))
    plugin = strategy_loader.get(name, class_only=True)
    assert plugin is not None, f"Ansible cannot load {name} from {mitogen.STRATEGY_PLUGINS}"
    assert issubclass(plugin, ansible_mitogen.strategy.StrategyMixin)
    assert issubclass(plugin, strategy_loader.get(base, class_only=True))
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
