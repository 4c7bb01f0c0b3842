"""The Mitogen setting: checked when read, and turned into the strategy environment of every playbook."""

from __future__ import annotations

import pytest

from integration_agent import mitogen
from integration_agent.errors import ConfigError
from integration_agent.executor import Executor
from integration_agent.settings import load_settings


def test_the_setting_puts_mitogens_strategy_in_every_playbooks_environment(monkeypatch):
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    assert load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "true"}).ansible.mitogen
    env = Executor(mitogen=True).strategy_env
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert env["ANSIBLE_STRATEGY_PLUGINS"].endswith("ansible_mitogen/plugins/strategy")
    assert Executor().strategy_env == {}


def test_the_operators_free_strategy_becomes_mitogens_free(monkeypatch):
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")
    assert Executor(mitogen=True).strategy_env["ANSIBLE_STRATEGY"] == "mitogen_free"


def test_an_ansible_core_mitogen_does_not_support_is_refused_when_the_setting_is_read(monkeypatch):
    monkeypatch.setattr(mitogen, "ansible_core_version", lambda: (2, 20))
    with pytest.raises(ConfigError, match=r"INTAGENT_ANSIBLE_MITOGEN: ansible.mitogen: .*Mitogen supports "
                                          r"ansible-core 2.10 to 2.19; this is ansible-core 2.20"):
        load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "true"})
    assert not load_settings(env={}).ansible.mitogen  # off: nothing to check


def test_mitogen_missing_is_refused_naming_the_extra(monkeypatch):
    monkeypatch.setattr(mitogen.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"Mitogen is not installed \(pip install 'intagent\[mitogen\]'"):
        load_settings(env={"INTAGENT_ANSIBLE_MITOGEN": "true"})
