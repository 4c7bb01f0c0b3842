"""Gate timings: the policy gate's input and plan checks on adversarial answers of 10, 100 and
250 KB (unclosed Jinja, deep nesting, huge strings, many tasks), then p50/p95 per gate over 50 plans.

    .venv/bin/python benchmarks/gates.py [--plans 50] [--lint]

Prints figures only; tests assert that adversarial input is refused, never how fast (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import ValidationError

from integration_agent.catalog import Catalog
from integration_agent.generation import gates
from integration_agent.generation.policy import check_json_text, check_plan
from integration_agent.generation.render import render_role
from integration_agent.generation.schema import GeneratedPlan

PLANS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "policy" / "plans"


def base() -> dict:
    return json.loads((PLANS / "collectd.json").read_text())


def adversarial(kind: str, size: int) -> str:
    """A JSON answer of about ``size`` bytes of the given kind."""
    plan = base()
    if kind == "unclosed-jinja":
        plan["install"][2]["args"]["content"] = "{{" * (size // 4)
        plan["install"].append({"name": "Run", "module": "ansible.builtin.command", "justification": "x",
                                "changed_when": False, "args": {"argv": ["/usr/sbin/collectd", "{{" * (size // 8)]}})
    elif kind == "deep-nesting":
        return json.dumps(plan)[:-1] + ', "notes": ' + "[" * (size // 2) + "]" * (size // 2) + "}"
    elif kind == "huge-string":
        plan["install"][2]["args"]["content"] = "x " * (size // 2)
    elif kind == "many-tasks":
        task = plan["install"][1]
        plan["install"] = [copy.deepcopy(task) for _ in range(max(1, size // len(json.dumps(task))))]
    return json.dumps(plan)


def policy_gate(text: str, manifest) -> tuple[float, str]:
    """Seconds for gate 1 and 2 on ``text``, and the outcome (first rule id, or 'passed')."""
    started = time.perf_counter()
    findings = check_json_text(text)
    if not findings:
        try:
            findings = check_plan(GeneratedPlan.model_validate_json(text), manifest)
        except ValidationError as exc:
            findings = [type("F", (), {"rule": f"IA006 ({exc.error_count()} errors)"})()]
    return time.perf_counter() - started, findings[0].rule if findings else "passed"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=50)
    parser.add_argument("--lint", action="store_true", help="also time syntax check and ansible-lint")
    args = parser.parse_args()
    integration = Catalog().get("collectd")
    print("adversarial input, shape + policy gates:")
    for kind in ("unclosed-jinja", "deep-nesting", "huge-string", "many-tasks"):
        for kilobytes in (10, 100, 250):
            text = adversarial(kind, kilobytes * 1024)
            seconds, outcome = policy_gate(text, integration.manifest)
            print(f"  {kind:15} {len(text) / 1024:6.0f} KB  {seconds * 1000:9.1f} ms  {outcome}")
    timings: dict[str, list[float]] = {"shape+policy": [], "syntax-check": [], "ansible-lint": []}
    text = json.dumps(base())
    for _ in range(args.plans):
        timings["shape+policy"].append(policy_gate(text, integration.manifest)[0])
        if args.lint:
            with tempfile.TemporaryDirectory() as work:
                role = render_role(GeneratedPlan.model_validate_json(text), integration, Path(work))
                started = time.perf_counter()
                gates.syntax_check(role)
                timings["syntax-check"].append(time.perf_counter() - started)
                started = time.perf_counter()
                gates.lint(role)
                timings["ansible-lint"].append(time.perf_counter() - started)
    print(f"per gate over {args.plans} plans (collectd):")
    for gate, values in timings.items():
        if values:
            print(f"  {gate:13} {percentiles(values)}")


if __name__ == "__main__":
    main()
