"""Each template compiled once per run (``CompileOnce`` in intagent's strategy plugins): the cache of compiled
Jinja code is keyed by everything compilation depends on, and compiling a task ahead renders nothing."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from ansible._internal._templating._engine import TemplateOptions
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.task import Task
from ansible.plugins.loader import strategy_loader
from ansible.template import Templar, trust_as_template

from integration_agent import mitogen


@pytest.fixture(scope="module")
def once() -> Any:
    """intagent_linear's module, loaded the way Ansible loads it."""
    strategy_loader.add_directory(str(mitogen.STRATEGY_PLUGINS))
    module = sys.modules[strategy_loader.get("intagent_linear", class_only=True).__module__]
    assert module.COMPILE_CACHE, "this ansible-core has none of the internals CompileOnce uses"
    return module


def render(template: str, **variables: Any) -> Any:
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(template))


def test_a_template_is_compiled_once_and_rendered_with_each_hosts_variables(once):
    before = len(once._codes)
    assert render("{{ a * 7 }} on {{ host }}", a=1, host="h1") == "7 on h1"
    assert len(once._codes) == before + 1
    assert render("{{ a * 7 }} on {{ host }}", a=3, host="h2") == "21 on h2"  # the same code, other values
    assert len(once._codes) == before + 1


def test_a_condition_is_compiled_once_and_evaluated_with_each_hosts_variables(once):
    templar = Templar(loader=DataLoader(), variables={"n": 9})
    before = len(once._codes)
    assert templar.evaluate_conditional(trust_as_template("n > 8 and n is odd"))
    templar.available_variables = {"n": 10}
    assert not templar.evaluate_conditional(trust_as_template("n > 8 and n is odd"))
    assert len(once._codes) == before + 1


def test_what_compilation_depends_on_is_part_of_the_key(once):
    """Other delimiters (a template's own `#jinja2:` header) and backslash escaping compile differently."""
    before = len(once._codes)
    assert render("#jinja2:variable_start_string:'[%', variable_end_string:'%]'\n[% a %] {{ a }}", a=2) == "2 {{ a }}"
    assert len(once._codes) == before  # a template with its own settings is left to Ansible, uncached
    engine = Templar(loader=DataLoader())._engine
    for escape in (True, False):
        engine._compile_template("{{ 'a\\\\b' }} once", TemplateOptions(escape_backslashes=escape))
    assert {k[2] for k in once._codes if k[1] == "{{ 'a\\\\b' }} once"} == {True, False}


def test_compiling_a_task_ahead_renders_nothing_and_covers_its_fields_conditions_and_variables(once, tmp_path):
    witness = tmp_path / "rendered"
    loader = DataLoader()
    task = Task.load({
        "name": "Report {{ item_name }}",
        "debug": {"msg": "{{ lookup('pipe', 'touch " + str(witness) + "') }}"},
        "when": ["limit_x > 7", "{{ other_condition }}"],
        "vars": {"doubled": "{{ limit_x * 2 }}", "plain": "no template here"},
        "failed_when": "result_y is failed",
        "environment": {"VAR": "{{ env_value }}"},
    }, loader=loader)
    assert once.compile_ahead(task, loader) == 7
    assert not witness.exists()  # compiled, never rendered: the lookup did not run
    before = len(once._codes)
    assert render("{{ limit_x * 2 }}", limit_x=4) == 8  # a worker would find it compiled
    assert Templar(loader=loader, variables={"limit_x": 8}).evaluate_conditional(trust_as_template("limit_x > 7"))
    assert len(once._codes) == before


def test_a_template_that_does_not_compile_is_left_to_the_worker(once):
    loader = DataLoader()
    task = Task.load({"debug": {"msg": "{{ broken ( }}"}, "when": "also broken )"}, loader=loader)
    assert once.compile_ahead(task, loader) == 0
    with pytest.raises(Exception, match="Syntax error"):
        render("{{ broken ( }}")
