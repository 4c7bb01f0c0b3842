"""The Ansible gates a rendered plan passes after the policy gate: syntax check, then ansible-lint.

Both run as subprocesses under a time limit and (for ansible-lint, which can eat memory on hostile
YAML) an address-space cap, so a bad plan cannot hang or exhaust the machine. ansible-lint comes with the
extra ``generate``; without it the lint gate raises :class:`MissingExtra` (setting ``llm.lint`` to false
skips the gate).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from ..catalog import ENTRY_POINTS
from ..errors import MissingExtra
from ..executor import ansible_env
from ..render import entry_playbook
from .policy import Finding

LINT_MEMORY_BYTES = 2 * 1024**3


def _cap_memory() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (LINT_MEMORY_BYTES, LINT_MEMORY_BYTES))


def _bin(tool: str) -> str:
    return str(Path(sys.executable).parent / tool)


def lint_command() -> str:
    """This environment's ``ansible-lint``, or :class:`MissingExtra` naming the extra that brings it."""
    path = _bin("ansible-lint")
    if not os.access(path, os.X_OK):
        raise MissingExtra("the ansible-lint gate of generation", "ansible-lint", "generate",
                           hint="or skip that gate: llm.lint: false, or INTAGENT_LLM_LINT=false")
    return path


def wrapper_playbooks(role: Path) -> list[Path]:
    """The playbooks intagent would run for each entry point, written beside the role."""
    out = []
    for entry in ENTRY_POINTS:
        path = role.parent.parent / f"{entry}.yml"
        path.write_text(entry_playbook(role.name, entry))
        out.append(path)
    return out


def remaining(timeout: float, deadline: float | None) -> float:
    """The time a gate may take: its own limit, cut to what is left before the run's deadline."""
    return timeout if deadline is None else min(timeout, max(0.0, deadline - time.monotonic()))


def syntax_check(role: Path, timeout: float = 120, *, deadline: float | None = None) -> list[Finding]:
    """``ansible-playbook --syntax-check`` of every entry point, within ``timeout`` and the deadline."""
    findings: list[Finding] = []
    env = {**os.environ, **ansible_env(ANSIBLE_ROLES_PATH=str(role.parent))}
    for playbook in wrapper_playbooks(role):
        if remaining(timeout, deadline) <= 0:
            return [*findings,
                    Finding("IA009", f"the run's deadline passed before the syntax check of {playbook.stem}")]
        try:
            proc = subprocess.run([_bin("ansible-playbook"), "--syntax-check", "-i", "localhost,", str(playbook)],
                                  capture_output=True, text=True, env=env, timeout=remaining(timeout, deadline),
                                  check=False)
        except subprocess.TimeoutExpired:
            findings.append(Finding("IA201", f"syntax check of {playbook.stem} timed out"))
            continue
        if proc.returncode != 0:
            lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
            message = next((ln for ln in lines if "ERROR" in ln), lines[-1] if lines else "failed")
            findings.append(Finding("IA201", f"syntax check of {playbook.stem}: {message[:400]}"))
    return findings


def lint(role: Path, timeout: float = 180, *, deadline: float | None = None) -> list[Finding]:
    """ansible-lint, production profile, on the rendered role; findings carry the lint rule id."""
    command = lint_command()
    env = {**os.environ, **ansible_env(ANSIBLE_ROLES_PATH=str(role.parent))}
    if (timeout := remaining(timeout, deadline)) <= 0:
        return [Finding("IA009", "the run's deadline passed before ansible-lint")]
    try:
        proc = subprocess.run([command, "--profile", "production", "--offline", "--nocolor",
                               "-f", "codeclimate", str(role)],
                              capture_output=True, text=True, env=env, timeout=timeout, check=False,
                              cwd=role.parent.parent, preexec_fn=_cap_memory)
    except subprocess.TimeoutExpired:
        return [Finding("IA202", f"ansible-lint did not finish within {timeout:.0f}s")]
    if proc.returncode == 0:
        return []
    try:
        issues = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return [Finding("IA202", f"ansible-lint failed: {(proc.stderr or proc.stdout).strip()[-400:]}")]
    findings = []
    for issue in issues:
        where = issue.get("location", {})
        path = where.get("path", "")
        line = (where.get("positions", {}).get("begin", {}) or {}).get("line") or where.get("lines", {}).get("begin")
        findings.append(Finding("IA202", f"ansible-lint {issue.get('check_name', '?')}: "
                                         f"{issue.get('description', '')} ({path}:{line})"))
    return findings or [Finding("IA202", "ansible-lint failed without findings: "
                                         f"{(proc.stderr or '').strip()[-300:]}")]
