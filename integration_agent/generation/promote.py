"""Promoting a validated generation into a curated role and molecule scenario, ready for review."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..catalog import Catalog
from ..errors import IntegrationError
from ..paths import PROJECT_ROOT
from ..render import render
from ..runs import REPORT, RunDir


def promote(runs_dir: Path, run_id: str, *, force: bool = False, project: Path = PROJECT_ROOT,
            catalog: Catalog | None = None) -> list[Path]:
    """Copy the role of a ``generate`` run to ``roles/NAME`` and write ``molecule/NAME``; return the paths.
    ``catalog`` finds the integration's manifest (default: the project's and plugins' integrations)."""
    run = RunDir.open(runs_dir, run_id)
    request = run.request()
    if request.action != "generate" or not request.integration or not (run.path / "generated" / "roles").is_dir():
        raise IntegrationError(f"run {run_id} is not a validated generation", hint="promote a `generate` run")
    name = request.integration
    manifest = (catalog or Catalog()).get(name).manifest
    role_target = project / "roles" / name
    if role_target.exists() and not force:
        raise IntegrationError(f"{role_target} already exists", hint="review it, then use --force to replace it")
    shutil.rmtree(role_target, ignore_errors=True)
    shutil.copytree(run.path / "generated" / "roles" / name, role_target)
    scenario = project / "molecule" / name
    scenario.mkdir(parents=True, exist_ok=True)
    written = [role_target]
    for template in ("molecule.yml", "converge.yml", "verify.yml", "uninstall.yml"):
        target = scenario / template
        target.write_text(render(f"molecule/{template}.j2", name=name, packages=json.dumps(manifest.owns.packages)))
        written.append(target)
    report = run.read_json(REPORT) or {}
    (role_target / "GENERATED.md").write_text(
        f"# {name}: promoted from generation {report.get('key', '?')}\n\n"
        f"Run {run_id}, model {report.get('model', '?')}, platform {report.get('platform', '?')}, "
        f"{report.get('repairs', 0)} repair(s). Review every task and its cited sources before merging.\n")
    return written
