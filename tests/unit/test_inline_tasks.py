"""Which tasks intagent's strategies may run in their own process instead of a forked worker (``InlineTasks``):
controller-side actions whole, other tasks only to find their ``when`` false, and never a task whose running
there could wait, sleep, signal, delegate or run a lookup twice."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from ansible.plugins.loader import init_plugin_loader, strategy_loader

from integration_agent import mitogen


@pytest.fixture(scope="module")
def inline() -> Any:
    init_plugin_loader()  # resolves ansible.builtin names, as ansible-playbook does
    strategy_loader.add_directory(str(mitogen.STRATEGY_PLUGINS))
    return sys.modules[strategy_loader.get("intagent_linear", class_only=True).__module__].inline_kind


def task(**ds: Any) -> Task:
    return Task.load(ds, loader=DataLoader())


@pytest.mark.parametrize("ds, kind", [
    ({"ansible.builtin.set_fact": {"a": 1}}, "whole"),
    ({"assert": {"that": "a"}}, "whole"),
    ({"ansible.builtin.fail": {"msg": "x"}, "when": "a"}, "whole"),
    ({"ansible.legacy.debug": {"msg": "x"}}, "whole"),
    ({"ansible.builtin.include_tasks": "x.yml"}, "whole"),
    ({"ansible.builtin.validate_argument_spec": {"argument_spec": {}}}, "whole"),
    ({"ansible.builtin.apt": {"name": "x"}, "when": "not ansible_check_mode"}, "skip"),
    ({"ansible.builtin.apt": {"name": "x"}}, None),  # no condition: it reaches the host
    ({"ansible.builtin.pause": {"seconds": 1}}, None),  # sleeps
    ({"ansible.builtin.debug": {"msg": "{{ item }}"}, "loop": [1, 2]}, None),
    ({"ansible.builtin.debug": {"msg": "x"}, "with_items": [1, 2]}, None),
    ({"ansible.builtin.assert": {"that": "a"}, "until": "a", "retries": 3}, None),
    ({"ansible.builtin.set_fact": {"a": 1}, "delegate_to": "other"}, None),
    ({"ansible.builtin.set_fact": {"a": 1}, "timeout": 5}, None),
    ({"ansible.builtin.command": "true", "async": 10, "poll": 0, "when": "a"}, None),
    ({"ansible.builtin.command": "true", "when": "lookup('pipe', 'date') != ''"}, None),
    ({"ansible.builtin.debug": {"msg": "x"}, "when": ["a", "query('env', 'HOME')"]}, None),
    ({"ansible.builtin.debug": {"msg": "x"}, "failed_when": "q ( 'env', 'HOME')"}, None),
    ({"ansible.builtin.assert": {"that": ["lookup('file', '/etc/hostname')"]}}, None),
    ({"ansible.builtin.set_fact": {"token": "{{ lookup('url', 'https://vault.example/token') }}"}}, None),
    ({"ansible.builtin.debug": {"msg": "{{ answer }}"}, "vars": {"answer": "{{ query('env', 'HOME') }}"}}, None),
    ({"ansible.builtin.debug": {"msg": "{{ lookup_table['a'] }}"}}, "whole"),  # a name, not a lookup call
])
def test_what_runs_in_the_strategys_process(inline, ds, kind):
    assert inline(task(**ds)) == kind
