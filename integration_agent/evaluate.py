"""``intagent eval``: a fixed task set through the whole generated path, with figures per run.

Each task names an integration and platform, what must happen (``valid`` or ``blocked``) and, for the
recorded mode, the answers a model gave. Without an endpoint the answers are replayed by a real
OpenAI-speaking server on loopback, so the figures describe intagent's pipeline, not a model.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import GenerationFailed
from .paths import PROJECT_ROOT
from .settings import Settings

TASKS_FILE = PROJECT_ROOT / "evals" / "tasks.json"


@dataclass
class TaskResult:
    id: str
    expect: str
    outcome: str  # valid | blocked
    attempts: int
    tokens: int
    seconds: float
    lint_clean: bool
    check_mode: str  # passed | failed | skipped
    apply_verify_idempotent: str  # passed | failed | skipped
    adversarial: bool


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] if ordered else 0.0


def _lifecycle(integration, settings: Settings, inventory: Path, limit: str | None) -> str:
    from .api import run_action

    first = run_action("install", integration, inventory, limit=limit, settings=settings)
    second = run_action("install", integration, inventory, limit=limit, settings=settings)
    run_action("uninstall", integration, inventory, limit=limit, settings=settings)
    ok = first.exit_code == 0 and second.exit_code == 0 and all(h.status == "unchanged" for h in second.hosts.values())
    return "passed" if ok else "failed"


def run_task(task: dict[str, Any], settings: Settings, *, llm=None, inventory: Path | None = None,
             limit: str | None = None) -> TaskResult:
    from .api import generation_gates
    from .catalog import Catalog
    from .generation.service import build
    from .replay import FakeOpenAI

    integration = Catalog.for_settings(settings).get(task["integration"])
    started = time.monotonic()
    server = None
    if llm is None:
        server = FakeOpenAI([{"content": a, "prompt_tokens": len(a) // 4, "completion_tokens": len(a) // 4}
                             for a in task["answers"]]).__enter__()
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(
            update={"base_url": server.base_url, "model": settings.llm.model or "recorded"})})
    try:
        gates = generation_gates(settings, inventory=inventory, limit=limit, platform=task["platform"])
        generation = build(integration, settings, llm=llm, platform=task["platform"], check_mode=gates.check_mode)
        report = generation.report()
        outcome, attempts, tokens = "valid", len(report["attempts"]), report["tokens"]
        lint_clean = True
        check = "passed" if inventory else "skipped"
        lifecycle = _lifecycle(generation.as_integration(integration), settings, inventory, limit) if inventory \
            else "skipped"
    except GenerationFailed as exc:
        attempts_list = getattr(exc, "attempts", [])
        outcome, attempts = "blocked", len(attempts_list)
        tokens = sum(a.prompt_tokens + a.completion_tokens for a in attempts_list)
        lint_clean = False
        check = "failed" if any(a.gate == "check_mode" for a in attempts_list) else "skipped"
        lifecycle = "skipped"
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return TaskResult(task["id"], task["expect"], outcome, attempts, tokens, round(time.monotonic() - started, 2),
                      lint_clean, check, lifecycle, bool(task.get("adversarial")))


def evaluate(settings: Settings, *, llm=None, inventory: Path | None = None, limit: str | None = None,
             tasks_file: Path = TASKS_FILE) -> dict[str, Any]:
    """Run every task (each with a fresh generation cache) and summarise."""
    import os

    tasks = json.loads(tasks_file.read_text())["tasks"]
    results = []
    for task in tasks:
        with tempfile.TemporaryDirectory(prefix="intagent-eval-") as cache:
            previous = os.environ.get("XDG_CACHE_HOME")
            os.environ["XDG_CACHE_HOME"] = cache  # every task generates afresh: no cache hits
            try:
                results.append(run_task(task, settings, llm=llm, inventory=inventory, limit=limit))
            finally:
                if previous is None:
                    os.environ.pop("XDG_CACHE_HOME", None)
                else:
                    os.environ["XDG_CACHE_HOME"] = previous
    benign = [r for r in results if not r.adversarial]
    repairs = [float(r.attempts - 1) for r in benign if r.outcome == "valid"]
    return {
        "mode": "recorded answers: the figures describe the pipeline, not a model" if llm is None
        else "live endpoint",
        "tasks": len(results),
        "valid_first_attempt": sum(1 for r in benign if r.outcome == "valid" and r.attempts == 1),
        "valid_after_repair": sum(1 for r in benign if r.outcome == "valid" and r.attempts > 1),
        "policy_and_lint_clean": sum(1 for r in benign if r.lint_clean),
        "check_mode_pass": sum(1 for r in benign if r.check_mode == "passed"),
        "apply_verify_idempotence_pass": sum(1 for r in benign if r.apply_verify_idempotent == "passed"),
        "repairs_mean": round(statistics.mean(repairs), 2) if repairs else 0.0,
        "repairs_p95": _percentile(repairs, 95),
        "unsafe_plans_reaching_a_host": sum(1 for r in results if r.adversarial and r.outcome == "valid"),
        "adversarial_blocked": sum(1 for r in results if r.adversarial and r.outcome == "blocked"),
        "expectation_met": sum(1 for r in results if r.outcome == r.expect),
        "tokens_per_task": round(statistics.mean([r.tokens for r in results]), 1) if results else 0,
        "seconds_per_task": round(statistics.mean([r.seconds for r in results]), 2) if results else 0,
        "results": [asdict(r) for r in results],
    }
