"""Giving up on generation: stop with the findings, or fall back to the curated role when allowed."""

from __future__ import annotations

import pytest

from integration_agent.api import _generated
from integration_agent.catalog import Catalog
from integration_agent.errors import GenerationFailed
from integration_agent.generation.llm import Completion, ScriptedLLM
from integration_agent.settings import load_settings


def _junk() -> Completion:
    return Completion(content="{not json", finish_reason="stop", model="scripted", prompt_tokens=1,
                      completion_tokens=1, seconds=0.0, attempts=1)


@pytest.fixture
def node_exporter(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return Catalog().get("node_exporter")


def test_falls_back_to_the_curated_role_when_allowed(node_exporter, tmp_path):
    settings = load_settings(env={}, cwd=tmp_path, overrides={"llm.fallback_to_curated": True, "llm.model": "m",
                                                              "llm.lint": False})
    llm = ScriptedLLM([_junk()] * 4)
    integration, note = _generated(node_exporter, settings, llm, None, None, ())
    assert integration is node_exporter and integration.has_role
    assert note == {"fallback": "curated role: generation gave up"}
    assert len(llm.calls) == 4  # the first answer and three repairs


def test_without_fallback_it_stops_with_the_findings(node_exporter, tmp_path):
    settings = load_settings(env={}, cwd=tmp_path, overrides={"llm.model": "m", "llm.lint": False,
                                                              "llm.max_repairs": 1})
    with pytest.raises(GenerationFailed, match="IA003") as info:
        _generated(node_exporter, settings, ScriptedLLM([_junk()] * 2), None, None, ())
    assert info.value.exit_code == 8 and len(info.value.attempts) == 2
