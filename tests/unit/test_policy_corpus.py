"""The escape corpus, the benign plans and each rule's examples: every escape is refused with its rule id, on
a task it added; every benign plan passes; each rule passes its pass examples and fires on its fail examples.
Fixtures: tests/fixtures/policy/{escapes,benign}.yml and plans/*.json (the base plans); the examples sit
beside each rule, integration_agent/generation/rules/checks/iaNNN_<name>.yml."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from integration_agent.catalog import load_manifest
from integration_agent.generation.policy import check_plan
from integration_agent.generation.rules import checks
from integration_agent.generation.schema import GeneratedPlan

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "policy"
ESCAPES = yaml.safe_load((FIXTURES / "escapes.yml").read_text())
BENIGN = yaml.safe_load((FIXTURES / "benign.yml").read_text())


def patched(entry: dict[str, Any]) -> tuple[GeneratedPlan, str, list[int]]:
    """The base plan with the entry's tasks inserted; the section and the indexes of the added tasks."""
    plan = copy.deepcopy(json.loads((FIXTURES / "plans" / f"{entry['base']}.json").read_text()))
    section, tasks = entry.get("section", "install"), entry.get("tasks", [])
    at = entry.get("at", len(plan[section]))
    plan[section][at:at] = tasks
    plan.update(entry.get("set", {}))
    return GeneratedPlan.model_validate(plan), section, list(range(at, at + len(tasks)))


def manifest(name: str):
    return load_manifest(ROOT / "knowledge" / name / "integration.yml")


def test_the_corpus_covers_forty_escapes_and_twelve_benign_plans():
    assert len(ESCAPES) >= 40 and len(BENIGN) >= 12
    assert len({e["base"] for e in BENIGN}) >= 3


@pytest.mark.parametrize("entry", ESCAPES, ids=[e["technique"][:60] for e in ESCAPES])
def test_every_escape_is_refused_with_its_rule(entry):
    plan, section, added = patched(entry)
    findings = check_plan(plan, manifest(entry["base"]))
    hits = [f for f in findings if f.rule == entry["rule"]]
    assert hits, f"{entry['technique']}: expected {entry['rule']}, got {[str(f) for f in findings]}"
    assert any(f.section == section and f.task in added for f in hits), [str(f) for f in hits]


@pytest.mark.parametrize("entry", BENIGN, ids=[e["description"][:60] for e in BENIGN])
def test_every_benign_plan_passes(entry):
    plan, _, _ = patched(entry)
    assert [str(f) for f in check_plan(plan, manifest(entry["base"]))] == []


CHECKS = Path(checks.__file__).parent
RULE_FILES = sorted(CHECKS.glob("ia*.yml"))


def test_every_plan_rule_has_pass_and_fail_examples_beside_it():
    """Each rule module has its examples in the .yml of the same name, for that rule, and no file is left over."""
    modules = {path.stem for path in CHECKS.glob("ia*.py")}
    assert modules and {path.stem for path in RULE_FILES} == modules
    rules = {rule.id: rule for rule in checks.RULES}
    for path in RULE_FILES:
        examples = yaml.safe_load(path.read_text())
        rule = rules[examples["rule"]]
        assert path.stem == f"{rule.id.lower()}_{rule.name.replace('-', '_')}" and examples["name"] == rule.name
        assert examples["pass"] and examples["fail"], path


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_rule_examples(path):
    examples = yaml.safe_load(path.read_text())
    rule = examples["rule"]
    for entry in examples["pass"]:
        plan, _, _ = patched(entry)
        assert [str(f) for f in check_plan(plan, manifest(entry["base"]))] == [], entry
    for entry in examples["fail"]:
        plan, section, added = patched(entry)
        findings = [f for f in check_plan(plan, manifest(entry["base"])) if f.rule == rule]
        assert findings, f"{path.name}: {entry['technique']} did not fire {rule}"
        assert not added or any(f.section == section and f.task in added for f in findings)
