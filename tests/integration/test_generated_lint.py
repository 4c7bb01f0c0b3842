"""Two correct plans the gates once refused, through the real gates: an infra_agent plan passes
ansible-lint (intagent's own argument_specs.yml used to have lines over 160 characters), and a node_exporter plan
that fills binary_url's {version}/{arch} placeholders passes the policy (IA107)."""

from __future__ import annotations

import json
from pathlib import Path

from integration_agent.catalog import Catalog
from integration_agent.generation import gates
from integration_agent.generation.policy import check_plan
from integration_agent.generation.render import render_role
from integration_agent.generation.schema import GeneratedPlan

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "policy" / "plans"


def _plan(name: str) -> GeneratedPlan:
    return GeneratedPlan.model_validate(json.loads((PLANS / f"{name}.json").read_text()))


def test_an_infra_agent_plan_passes_ansible_lint_on_intagents_own_files(tmp_path):
    integration = Catalog().get("infra_agent")
    role = render_role(_plan("infra_agent"), integration, tmp_path)
    specs = (role / "meta" / "argument_specs.yml").read_text()
    assert max(len(line) for line in specs.splitlines()) <= 160
    assert [str(f) for f in gates.lint(role)] == []


def test_binary_url_placeholders_pass_the_url_rule():
    plan = _plan("node_exporter")
    download = next(t for t in plan.install if t.module == "ansible.builtin.get_url")
    assert "replace('{version}'" in download.args["url"] and "replace('{arch}'" in download.args["url"]
    assert check_plan(plan, Catalog().get("node_exporter").manifest) == []


def test_a_unit_comes_from_intagents_template_and_passes_the_syntax_check(tmp_path):
    integration = Catalog().get("node_exporter")
    role = render_role(_plan("node_exporter"), integration, tmp_path)
    tasks = (role / "tasks" / "main.yml").read_text()
    assert "intagent.systemd_unit" not in tasks and "dest: /etc/systemd/system/node_exporter.service" in tasks
    assert "User=node_exporter" in tasks and "ExecStart=/usr/local/bin/node_exporter --web.listen-address=" in tasks
    assert gates.syntax_check(role) == []
