"""The builder's generated path: ask the model, run every gate, feed findings back, give up cleanly.

An ordinary loop (as in instructor): each failed attempt appends the answer and its findings to the
conversation and asks again, up to ``max_repairs`` repairs under one overall deadline. Giving up
raises GenerationFailed with every attempt attached. A validated result is cached by content.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..catalog import Integration
from ..errors import GenerationFailed
from . import gates
from .cache import GenerationCache, cache_key
from .llm import LLM, LLMError
from .policy import Finding, check_json_text, check_plan
from .prompt import build_messages, repair_messages
from .render import render_role
from .schema import PROMPT_VERSION, GeneratedPlan, json_schema


@dataclass
class GateResult:
    """What a gate that runs the rendered role somewhere real (check mode on the targets, the lab sandbox)
    found, and the runs it made to find out (``{"gate", "run_id", "status"}``: recorded with the attempt)."""

    findings: list[Finding]
    runs: list[dict[str, Any]] = field(default_factory=list)


# Such a gate is injected by the caller, so the builder never reaches up into the lifecycle.
HostGate = Callable[[Integration], GateResult]
MAX_PASSAGES = 24
RETRIEVAL_QUERIES = ("install package repository", "configuration file settings", "service start verify status",
                     "uninstall remove files", "port endpoint metrics", "known problems failure")


@dataclass
class Attempt:
    number: int
    findings: list[str]
    gate: str  # the gate that stopped it, or "passed"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)  # the runs its host gates made (check mode, sandbox)


@dataclass
class Generation:
    """A validated generated role for one integration."""

    integration: str
    platform: str
    model: str
    key: str
    root: Path  # holds roles/<name>/, plan.json, report.json
    from_cache: bool
    attempts: list[Attempt] = field(default_factory=list)
    citations: dict[str, list[str]] = field(default_factory=dict)

    @property
    def role_dir(self) -> Path:
        return self.root / "roles" / self.integration

    def as_integration(self, source: Integration) -> Integration:
        """The same integration, with the generated role in place of a curated one."""
        return Integration(source.manifest, self.root, origin=f"generated:{self.key}")

    def report(self) -> dict[str, Any]:
        return {"integration": self.integration, "platform": self.platform, "model": self.model, "key": self.key,
                "from_cache": self.from_cache, "attempts": [asdict(a) for a in self.attempts],
                "repairs": max(0, len(self.attempts) - 1), "citations": self.citations,
                "tokens": sum(a.prompt_tokens + a.completion_tokens for a in self.attempts),
                "seconds": round(sum(a.seconds for a in self.attempts), 3)}


class Builder:
    """Generates and validates plans for integrations that have knowledge but (maybe) no curated role."""

    def __init__(self, llm: LLM, knowledge, *, model: str, cache: GenerationCache | None = None,
                 max_repairs: int = 3, deadline_seconds: float = 300.0, run_lint: bool = True,
                 check_mode: HostGate | None = None, sandbox: HostGate | None = None) -> None:
        self.llm = llm
        self.knowledge = knowledge
        self.model = model
        self.cache = cache or GenerationCache()
        self.max_repairs = max_repairs
        self.deadline_seconds = deadline_seconds
        self.run_lint = run_lint
        self.check_mode = check_mode
        self.sandbox = sandbox

    def generate(self, integration: Integration, platform: str = "debian-12") -> Generation:
        from ..knowledge import format_for_prompt

        passages = self._retrieve(integration)
        key = cache_key(integration=integration.name, manifest=integration.manifest.model_dump(mode="json"),
                        knowledge=[(p.id, p.text) for p in passages], platform=platform, model=self.model,
                        prompt_version=PROMPT_VERSION, sandboxed=self.sandbox is not None)
        hit = self.cache.get(key)
        if hit is not None:
            stored = json.loads((hit / "report.json").read_text())
            return Generation(integration.name, platform, self.model, key, hit, True,
                              [Attempt(**a) for a in stored.get("attempts", [])], stored.get("citations", {}))

        if self.run_lint:
            gates.lint_command()  # a missing ansible-lint is said before the model is asked, not after
        deadline = time.monotonic() + self.deadline_seconds
        messages = build_messages(integration.manifest, platform, format_for_prompt(passages))
        known_ids = {p.id for p in passages}
        attempts: list[Attempt] = []
        workdir = Path(tempfile.mkdtemp(prefix="intagent-gen-"))
        try:
            for number in range(1, self.max_repairs + 2):
                attempt = Attempt(number, [], "model")
                attempts.append(attempt)
                if time.monotonic() >= deadline:
                    attempt.findings.append("IA000 deadline reached before asking the model")
                    break
                try:
                    completion = self.llm.complete(messages, schema=json_schema(), deadline=deadline)
                except LLMError as exc:
                    rule = "IA001" if exc.kind == "oversized" else "IA000"
                    attempt.findings.append(f"{rule} model call failed ({exc.kind}): {exc}")
                    if exc.kind in ("timeout", "http", "connection"):
                        break
                    continue
                attempt.prompt_tokens = completion.prompt_tokens
                attempt.completion_tokens = completion.completion_tokens
                attempt.seconds = completion.seconds
                findings, gate, plan = self._gates(completion.content, integration, known_ids, workdir, deadline,
                                                   attempt.runs)
                attempt.gate = gate
                attempt.findings = [str(f) for f in findings]
                if not findings and plan is not None:
                    return self._store(integration, platform, key, plan, workdir, attempts)
                messages = messages + repair_messages(completion.content, findings)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        last = attempts[-1].findings if attempts else []
        error = GenerationFailed(f"no valid plan for {integration.name} after {len(attempts)} attempt(s); "
                                 f"last findings: {'; '.join(last[:5]) or 'none'}")
        error.attempts = attempts
        raise error

    # -- internals --------------------------------------------------------------------------------
    def _retrieve(self, integration: Integration, budget: int = MAX_PASSAGES):
        """All of a small integration's knowledge; for a large one, the passages the task queries rank best."""
        everything = self.knowledge.passages(integration.name, limit=budget + 1)
        if len(everything) <= budget:
            return everything
        seen, passages = set(), []
        for query in (integration.name.replace("_", " "), *RETRIEVAL_QUERIES):
            for passage in self.knowledge.search(query, integration=integration.name, limit=6):
                if passage.id not in seen:
                    seen.add(passage.id)
                    passages.append(passage)
        return sorted(passages, key=lambda p: p.id)[:budget]

    def _gates(self, text: str, integration: Integration, known_ids: set[str], workdir: Path,
               deadline: float | None = None, runs: list[dict[str, Any]] | None = None,
               ) -> tuple[list[Finding], str, GeneratedPlan | None]:
        """Every gate, cheapest first, under the run's deadline: shape, policy and citations, syntax check,
        ansible-lint, then the injected host gates (check mode on the targets, the lab sandbox), whose runs
        are added to ``runs``."""
        runs = runs if runs is not None else []
        findings = check_json_text(text)
        if findings:
            return findings, "shape", None
        try:
            plan = GeneratedPlan.model_validate_json(text)
        except ValidationError as exc:
            return [Finding("IA006", f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}") for e in exc.errors()[:20]], \
                "shape", None
        if plan.integration != integration.name:
            return [Finding("IA006", f"plan is for {plan.integration!r}, expected {integration.name!r}")], "shape", None
        findings = check_plan(plan, integration.manifest, deadline=deadline) + self._citations(plan, known_ids)
        if findings:
            return findings, "policy", plan
        role = render_role(plan, integration, workdir)
        findings = gates.syntax_check(role, deadline=deadline)
        if findings:
            return findings, "syntax", plan
        if self.run_lint:
            findings = gates.lint(role, deadline=deadline)
            if findings:
                return findings, "lint", plan
        if self.check_mode is not None:
            result = self.check_mode(Integration(integration.manifest, workdir, origin="generated"))
            runs.extend(result.runs)
            if result.findings:
                return result.findings, "check_mode", plan
        if self.sandbox is not None:
            if deadline is not None and time.monotonic() >= deadline:
                return [Finding("IA009", "the run's deadline passed before the sandbox gate")], "sandbox", plan
            result = self.sandbox(Integration(integration.manifest, workdir, origin="generated"))
            runs.extend(result.runs)
            if result.findings:
                return result.findings, "sandbox", plan
        return [], "passed", plan

    @staticmethod
    def _citations(plan: GeneratedPlan, known_ids: set[str]) -> list[Finding]:
        findings = []
        for section in ("install", "verify", "uninstall", "handlers"):
            for index, task in enumerate(getattr(plan, section)):
                unknown = [c for c in task.citations if c not in known_ids]
                if unknown:
                    findings.append(Finding("IA120", f"cites unknown document ids {unknown[:3]}", section, index,
                                            task.name))
        return findings

    def _store(self, integration: Integration, platform: str, key: str, plan: GeneratedPlan, workdir: Path,
               attempts: list[Attempt]) -> Generation:
        built = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=self._ensure_cache_dir()))
        shutil.copytree(workdir / "roles", built / "roles")
        (built / "plan.json").write_text(plan.model_dump_json(indent=2, by_alias=True))
        citations = {f"{s}[{i}] {t.name}": t.citations for s in ("install", "verify", "uninstall", "handlers")
                     for i, t in enumerate(getattr(plan, s)) if t.citations}
        generation = Generation(integration.name, platform, self.model, key, built, False, attempts, citations)
        (built / "report.json").write_text(json.dumps(generation.report(), indent=2, default=str))
        generation.root = self.cache.put(key, built)
        return generation

    def _ensure_cache_dir(self) -> Path:
        self.cache.directory.mkdir(parents=True, exist_ok=True)
        return self.cache.directory
