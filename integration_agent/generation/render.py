"""Rendering a validated plan into a role with the curated layout (so the same lifecycle runs it)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..catalog import Integration, Manifest
from ..render import render
from .schema import PROMPT_VERSION, GeneratedPlan, GeneratedTask

_KEYWORDS = ("when", "register", "notify", "loop", "become", "changed_when", "failed_when", "no_log", "diff")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_./#:-]{1,120}$")


def task_dict(task: GeneratedTask, manifest: Manifest | None = None) -> dict[str, Any]:
    """The Ansible task for one generated task, keys in the usual order (``intagent.systemd_unit``
    becomes a copy of intagent's unit template)."""
    if task.module == "intagent.systemd_unit" and manifest is not None:
        task = unit_task(task, manifest)
    args = dict(task.args)
    if task.module == "ansible.builtin.command":
        for key in ("creates", "removes"):
            if getattr(task, key):
                args[key] = getattr(task, key)
    out: dict[str, Any] = {"name": task.name, task.module: args}
    for key in _KEYWORDS:
        value = getattr(task, key)
        if value not in (None, []):
            out[key] = value
    return out


def unit_task(task: GeneratedTask, manifest: Manifest) -> GeneratedTask:
    """The copy task that writes the manifest's unit ``task.args.name`` from intagent's template."""
    name = task.args["name"]
    unit = manifest.units[name]
    content = render("systemd_unit.service.j2", name=name, unit=unit, arguments=task.args.get("arguments", []))
    args = {"dest": f"/etc/systemd/system/{name}.service", "content": content, "owner": "root", "group": "root",
            "mode": "0644"}
    return task.model_copy(update={"module": "ansible.builtin.copy", "args": args})


class _Dumper(yaml.SafeDumper):
    """Indented sequences and block scalars for multi-line text: the layout yamllint expects."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(ch in value for ch in "\t\r") and value == value.rstrip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: Any, width: int = 120) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=width, allow_unicode=True)


SPEC_WIDTH = 100  # wrap long manifest descriptions: ansible-lint refuses lines over 160 (yaml[line-length])


def _section(plan: GeneratedPlan, name: str, tasks: list[GeneratedTask], manifest: Manifest | None = None) -> str:
    blocks = []
    for task in tasks:
        text = _dump([task_dict(task, manifest)]).rstrip()
        # Comments carry only citation ids that look like ids: nothing from the model can break out of them.
        blocks.append({"yaml": text, "citations": [c for c in task.citations if _SAFE_ID.match(c)]})
    return render("generated_tasks.yml.j2", section=name, integration=plan.integration,
                  prompt_version=PROMPT_VERSION, tasks=blocks)


def argument_specs(manifest: Manifest) -> dict[str, Any]:
    options = {}
    for name, param in manifest.parameters.items():
        spec: dict[str, Any] = {"type": param.type, "description": param.description}
        if param.required:
            spec["required"] = True
        elif param.default is not None:
            spec["default"] = param.default
        if param.secret:
            spec["no_log"] = True
        options[f"{manifest.name}_{name}"] = spec
    return {"argument_specs": {
        "main": {"short_description": f"Install {manifest.name} (generated).", "options": options},
        "verify": {"short_description": f"Verify {manifest.name} (generated).", "options": options},
        "uninstall": {"short_description": f"Uninstall {manifest.name} (generated).", "options": {}},
    }}


def render_role(plan: GeneratedPlan, integration: Integration, root: Path) -> Path:
    """Write ``root/roles/<name>/`` from ``plan``; return the role directory."""
    manifest = integration.manifest
    role = root / "roles" / manifest.name
    shutil.rmtree(role, ignore_errors=True)
    (role / "tasks").mkdir(parents=True)
    (role / "meta").mkdir()
    (role / "defaults").mkdir()
    (role / "tasks" / "main.yml").write_text(_section(plan, "install", plan.install, manifest))
    (role / "tasks" / "verify.yml").write_text(_section(plan, "verify", plan.verify, manifest))
    (role / "tasks" / "uninstall.yml").write_text(_section(plan, "uninstall", plan.uninstall, manifest))
    if plan.handlers:
        (role / "handlers").mkdir()
        (role / "handlers" / "main.yml").write_text(_section(plan, "handlers", plan.handlers, manifest))
    defaults = {f"{manifest.name}_{n}": p.default for n, p in manifest.parameters.items()
                if not p.required and p.default is not None}
    (role / "defaults" / "main.yml").write_text("---\n" + (_dump(defaults) if defaults else ""))
    (role / "meta" / "argument_specs.yml").write_text("---\n" + _dump(argument_specs(manifest), SPEC_WIDTH))
    meta = {"galaxy_info": {"role_name": manifest.name, "namespace": "intagent", "author": "intagent (generated)",
                            "description": manifest.description[:200], "license": "Apache-2.0",
                            "min_ansible_version": "2.17",
                            "platforms": [{"name": "Debian", "versions": ["bookworm"]}]},
            "dependencies": []}
    (role / "meta" / "main.yml").write_text("---\n" + _dump(meta))
    return role
