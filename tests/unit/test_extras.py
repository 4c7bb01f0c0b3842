"""The extra ``generate`` (openai, ansible-lint): intagent works without it, and generation names it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from integration_agent.api import _generated
from integration_agent.catalog import Catalog
from integration_agent.errors import GenerationFailed, MissingExtra
from integration_agent.generation import gates
from integration_agent.generation.llm import Completion, ScriptedLLM
from integration_agent.generation.service import llm_from_settings
from integration_agent.settings import load_settings
from tests.conftest import REPO

INSTALL = "pip install 'intagent[generate]'"


@pytest.fixture
def without_openai(monkeypatch):
    """``import openai`` fails as it does where the package is not installed (None in sys.modules)."""
    monkeypatch.setitem(sys.modules, "openai", None)


@pytest.fixture
def without_ansible_lint(monkeypatch, tmp_path):
    """No ``ansible-lint`` beside this Python, as in an environment without the extra."""
    monkeypatch.setattr(gates, "_bin", lambda tool: str(tmp_path / "bin" / tool))


def test_every_module_imports_without_the_extra():
    code = ("import pkgutil, sys; sys.modules['openai'] = None; sys.modules['ansiblelint'] = None; "
            "import integration_agent as p; "
            "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'integration_agent.') "
            "         if not m.name.endswith('__main__')]; "
            "[__import__(n) for n in names]; print(len(names))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) > 50


def test_the_model_client_without_openai_names_the_extra(without_openai, tmp_path):
    settings = load_settings(env={}, cwd=tmp_path, overrides={"llm.model": "m", "llm.base_url": "http://127.0.0.1:1"})
    with pytest.raises(MissingExtra) as info:
        llm_from_settings(settings)
    assert info.value.exit_code == 14 and info.value.extra == "generate"
    assert str(info.value) == ("generation (a model at an OpenAI-compatible endpoint) needs the Python package "
                               f"openai, which is not installed: {INSTALL}")


def test_intagent_generate_without_openai_exits_14_with_the_install_line(without_openai, isolated_env, tmp_path,
                                                                         monkeypatch, capsys):
    import integration_agent.cli as cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("INTAGENT_LLM_MODEL", "m")
    with pytest.raises(SystemExit) as info:
        cli.main(["generate", "collectd", "--no-sandbox"])
    assert info.value.code == MissingExtra.exit_code == 14
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("intagent: error: ") and lines[-1].endswith(INSTALL), lines


def test_the_lint_gate_without_ansible_lint_names_the_extra_and_the_setting(without_ansible_lint, tmp_path):
    with pytest.raises(MissingExtra) as info:
        gates.lint(tmp_path / "roles" / "x")
    assert INSTALL in str(info.value) and "skip that gate: llm.lint: false" in str(info.value)


def test_generation_says_so_before_asking_the_model(without_ansible_lint, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = load_settings(env={}, cwd=tmp_path, overrides={"llm.model": "m", "llm.lint": True})
    llm = ScriptedLLM([])
    with pytest.raises(MissingExtra, match=r"ansible-lint, which is not installed"):
        _generated(Catalog().get("collectd"), settings, llm, None, None, ())
    assert llm.calls == []


def test_with_llm_lint_off_generation_runs_without_ansible_lint(without_ansible_lint, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = load_settings(env={}, cwd=tmp_path, overrides={"llm.model": "m", "llm.lint": False,
                                                              "llm.max_repairs": 0})
    junk = Completion(content="{not json", finish_reason="stop", model="scripted", prompt_tokens=1,
                      completion_tokens=1, seconds=0.0, attempts=1)
    llm = ScriptedLLM([junk])
    with pytest.raises(GenerationFailed):  # the model was asked, and its answer judged
        _generated(Catalog().get("collectd"), settings, llm, None, None, ())
    assert len(llm.calls) == 1
