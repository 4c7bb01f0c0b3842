"""The sandbox gate and ``intagent audit``: a plan applied, verified and uninstalled for real on a pristine
lab sandbox host and audited from outside (its overlay root, its connection attempts).

The static policy is the first layer; these tests switch the static rule that would refuse each plan off,
so the sandbox alone must catch it: a write outside the footprint, a connection to an address other than
the mirror, a file uninstall leaves behind. The correct collectd plan passes.
"""

from __future__ import annotations

import copy
import json

import pytest

from integration_agent.api import generate
from integration_agent.catalog import Catalog
from integration_agent.errors import GenerationFailed
from integration_agent.generation import policy
from integration_agent.generation.schema import GeneratedPlan
from integration_agent.settings import load_settings
from tests.conftest import REPO, run_cli
from tests.fakes.openai_server import FakeOpenAI
from tests.fixtures.newrelic_standin import build_standin_deb

pytestmark = pytest.mark.lab
PLAN = json.loads((REPO / "tests" / "fixtures" / "llm" / "collectd_plan.json").read_text())
ESCAPE = "/etc/intagent-sandbox-escape.conf"
AWAY = "198.51.100.7"  # TEST-NET-2: the sandbox's sink swallows it inside its own namespace


def answer(plan: dict) -> dict:
    return {"content": json.dumps(plan), "prompt_tokens": 1000, "completion_tokens": 500}


def without_rules(monkeypatch, *ids: str) -> None:
    """Switch static policy rules off, so that only the sandbox stands between the plan and a host."""
    monkeypatch.setattr(policy, "RULES", [rule for rule in policy.RULES if rule.id not in ids])


@pytest.fixture
def sandboxed(lab, tmp_path, isolated_env, monkeypatch):
    """Settings for generation with the sandbox gate on, lint off (these tests are about the sandbox)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def settings(server: FakeOpenAI, repairs: int = 0):
        return load_settings(env={}, cwd=tmp_path, overrides={
            "llm.base_url": server.base_url, "llm.model": "fake-model", "runs_dir": str(tmp_path / "runs"),
            "llm.sandbox": "on", "llm.lint": False, "llm.max_repairs": repairs})
    return settings


def refused(settings, plan: dict) -> list[str]:
    """Findings of the sandbox gate for ``plan`` (the gate that stopped it must be the sandbox)."""
    with FakeOpenAI([answer(plan)]) as server, pytest.raises(GenerationFailed) as info:
        generate("collectd", settings=settings(server))
    (attempt,) = info.value.attempts
    assert attempt.gate == "sandbox", attempt
    return attempt.findings


def test_a_write_outside_the_footprint_is_refused_then_repaired(sandboxed, monkeypatch):
    without_rules(monkeypatch, "IA105")
    bad = copy.deepcopy(PLAN)
    bad["install"].insert(1, {"name": "Drop a file", "module": "ansible.builtin.copy", "citations": [],
                              "args": {"dest": ESCAPE, "content": "x\n", "mode": "0644"}})
    with FakeOpenAI([answer(bad), answer(PLAN)]) as server:
        _generation, report = generate("collectd", settings=sandboxed(server, repairs=1))
        repair_request = json.dumps(server.chat_requests[1].body)
    first, second = report["attempts"]
    assert first["gate"] == "sandbox" and second["gate"] == "passed" and report["sandbox"] == "passed"
    (finding,) = [f for f in first["findings"] if f.startswith("IA204")]
    assert f"created {ESCAPE}" in finding
    assert "IA204" in repair_request and ESCAPE in repair_request  # the evidence goes back to the model


def test_a_connection_to_another_address_is_refused(sandboxed, monkeypatch):
    without_rules(monkeypatch, "IA107", "IA121")
    bad = copy.deepcopy(PLAN)
    bad["verify"].insert(0, {"name": "Phone home", "module": "ansible.builtin.uri", "citations": [],
                             "args": {"url": f"http://{AWAY}:8080/", "timeout": 3},
                             "register": "collectd_home", "failed_when": False})
    findings = refused(sandboxed, bad)
    assert [f.split()[0].rstrip(":") for f in findings] == ["IA205"], findings
    assert f"tcp to {AWAY}:8080 (via sink)" in findings[0]


def test_a_file_left_after_uninstall_is_refused(sandboxed):
    # No static rule asks uninstall to be complete: only running it shows what it leaves.
    bad = copy.deepcopy(PLAN)
    purge = next(t for t in bad["uninstall"] if t["module"] == "ansible.builtin.apt")
    purge["args"]["purge"] = False  # removed, not purged: dpkg keeps the package's conffiles
    assert policy.check_plan(GeneratedPlan.model_validate(bad), Catalog().get("collectd").manifest) == []
    findings = refused(sandboxed, bad)
    assert [f.split()[0].rstrip(":") for f in findings] == ["IA206"], findings
    assert "created /etc/default/collectd" in findings[0]


def audit(name: str, *args: str, env: dict[str, str], figure=None) -> dict:
    proc = run_cli("audit", name, "--json", *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    if figure is not None:  # the exact residue: the host's overlay after uninstall against its pristine state
        figure("08 uninstall completeness", f"{name}: paths left after uninstall", len(report["left"]))
        figure("08 uninstall completeness", f"{name}: written outside the footprint",
               len(report["written"].get("outside", [])))
    return report


def test_audit_of_node_exporter_stays_inside_its_footprint(lab, isolated_env, figure):
    report = audit("node_exporter", env=isolated_env, figure=figure)
    assert report["ok"] and report["findings"] == [] and report["left"] == [] and report["egress"] == []
    assert "created /etc/default/prometheus-node-exporter" in report["written"]["footprint"]
    assert "created /usr/bin/prometheus-node-exporter" in report["written"]["package"]
    assert "outside" not in report["written"]
    assert report["statuses"] == {"install": "installed", "uninstall": "uninstalled"}


def test_audit_of_zabbix_agent_lists_the_dependencies_it_keeps(lab, isolated_env, figure):
    report = audit("zabbix_agent", env=isolated_env, figure=figure)
    assert report["ok"] and report["left"] == [] and report["egress"] == [], report["findings"]
    assert "created /etc/zabbix/zabbix_agentd.conf.d/intagent.conf" in report["written"]["footprint"]
    assert "zabbix-agent" not in report["kept"] and "libcurl3-gnutls" in report["kept"]


def test_audit_of_infra_agent(lab, isolated_env, tmp_path, figure):
    lab.add_packages([build_standin_deb(tmp_path)])
    env = {**isolated_env, "NEW_RELIC_LICENSE_KEY": "audit-canary-0123456789abcdef"}
    report = audit("infra_agent", "--var", "apt_source=deb [trusted=yes] http://10.231.0.1:8080/ ./",
                   "--var", "gpg_key_url=", env=env, figure=figure)
    assert report["ok"] and report["left"] == [] and report["egress"] == [], report["findings"]
    assert "created /etc/newrelic-infra.yml" in report["written"]["footprint"]
    assert "audit-canary" not in json.dumps(report)


def test_audit_refuses_an_integration_without_a_curated_role(isolated_env):
    proc = run_cli("audit", "collectd", env=isolated_env)
    assert proc.returncode == 5 and "generate NAME --sandbox" in proc.stderr
