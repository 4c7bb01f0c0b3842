"""Wiring the generated path to intagent's settings and knowledge; the gates that need hosts come from the
caller (``api.generation_gates``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..catalog import Integration
from ..errors import ConfigError
from ..settings import Settings
from .builder import Builder, Generation, HostGate


def llm_from_settings(settings: Settings):
    """The configured OpenAI-compatible client; a clear error when no endpoint or model is set, or when the
    extra ``generate`` (the openai client) is not installed: that one first, it is the first thing to fix."""
    from .llm import OpenAICompatible, load_openai

    load_openai()
    base_url = settings.llm.base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url or not settings.llm.model:
        raise ConfigError("no model endpoint configured for generation",
                          hint="set OPENAI_BASE_URL and INTAGENT_LLM_MODEL (or llm.base_url and llm.model)")
    return OpenAICompatible(base_url, os.environ.get("OPENAI_API_KEY"), settings.llm.model,
                            stream=settings.llm.stream)


def sandbox_available() -> str | None:
    """Why the sandbox gate cannot run on this machine (None when it can)."""
    from ..errors import LabError
    from ..lab.system import preflight

    try:
        preflight()
    except LabError as exc:
        return str(exc)
    return None


def use_sandbox(settings: Settings, warn=lambda _: None) -> bool:
    """Whether the sandbox gate runs: ``llm.sandbox`` on, or auto where the lab can run (``warn`` says
    why not where it cannot). On where the lab cannot run is an error (exit 6)."""
    if settings.llm.sandbox == "off":
        return False
    reason = sandbox_available()
    if reason is None:
        return True
    if settings.llm.sandbox == "on":
        from ..errors import LabError

        raise LabError(f"the sandbox gate cannot run here: {reason}",
                       hint="run as root with the lab's tools, or set llm.sandbox to off (--no-sandbox)")
    warn(f"sandbox gate skipped: {reason}; the plan passed the static gates only")
    return False


def build(integration: Integration, settings: Settings, *, llm=None, platform: str = "debian-12",
          check_mode: HostGate | None = None, sandbox: HostGate | None = None) -> Generation:
    """Generate (or take from the cache) a validated role for ``integration``. The gates that need hosts are
    handed in by the caller (the API builds them: check mode on the target hosts, the audit on the lab's
    sandbox host), so the builder never calls back up into a run."""
    from ..knowledge import KnowledgeBase

    knowledge = KnowledgeBase.for_settings(settings)
    builder = Builder(llm or llm_from_settings(settings), knowledge,
                      model=settings.llm.model or "unknown", max_repairs=settings.llm.max_repairs,
                      deadline_seconds=settings.llm.deadline, run_lint=settings.llm.lint,
                      check_mode=check_mode, sandbox=sandbox)
    return builder.generate(integration, platform)


def export(generation: Generation, out: Path) -> Path:
    """Copy a generation (role, plan, report) to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(generation.root / "roles", out / "roles", dirs_exist_ok=True)
    for name in ("plan.json", "report.json"):
        shutil.copy2(generation.root / name, out / name)
    return out
