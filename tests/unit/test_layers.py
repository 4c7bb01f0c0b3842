"""Dependencies flow one way: the command line and the API on top, the coordinator (lifecycle) below them,
the agents and the records below that. A module never imports one above it, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import integration_agent

PACKAGE = Path(integration_agent.__file__).parent
# Highest first; a module may import only from its own layer or the layers below.
TOP = {"integration_agent.cli", "integration_agent.evaluate", "integration_agent.__main__"}
API = {"integration_agent.api", "integration_agent.audit", "integration_agent.discovery"}
COORDINATOR = {"integration_agent.lifecycle", "integration_agent.savedplan"}  # the step table, the saved plan
# The agents of the design, each a module (or package) of its name below the coordinator (docs/api.md maps them).
AGENTS = ("knowledge", "generation.builder", "executor", "verifier", "recovery", "improvement", "journal")


def layer(module: str) -> int:
    """3: the command line and evaluation; 2: the API (and the audit it runs); 1: the coordinator; 0: the rest."""
    for rank, names in ((3, TOP), (2, API), (1, COORDINATOR)):
        if any(module == n or module.startswith(n + ".") for n in names):
            return rank
    return 0


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(module: str, path: Path) -> set[str]:
    """Every module of the package that ``module`` imports, anywhere in its file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            names.add(target or "")
            names.update(f"{target}.{a.name}" for a in node.names)
    return {n for n in names if n.startswith("integration_agent")}


def test_no_module_imports_one_above_it():
    known = modules()
    upward: set[str] = set()
    for module, path in sorted(known.items()):
        for name in sorted(imports(module, path)):
            target = max((m for m in known if name == m or name.startswith(m + ".")), key=len, default=None)
            if target and layer(target) > layer(module):
                upward.add(f"{module} imports {target}")
    assert sorted(upward) == []


def test_the_check_finds_an_upward_import(tmp_path):
    fake = tmp_path / "x.py"
    fake.write_text("def f():\n    from ..api import run_action\n")
    assert "integration_agent.api" in imports("integration_agent.generation.x", fake)
    assert layer("integration_agent.api") > layer("integration_agent.generation.x")


def test_each_agent_has_a_module_of_its_name_below_the_coordinator():
    known = modules()
    for agent in AGENTS:
        assert f"integration_agent.{agent}" in known, agent
        assert layer(f"integration_agent.{agent}") < layer("integration_agent.lifecycle"), agent
