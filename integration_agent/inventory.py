"""Checking an inventory before anything runs: it must parse, and the limit must match hosts."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .errors import InventoryError
from .executor import ansible_env


def resolve_hosts(inventory: Path, limit: str | None = None) -> list[str]:
    """The hosts a run would target; raise InventoryError when the inventory or the limit is unusable."""
    if not inventory.exists():
        raise InventoryError(f"inventory not found: {inventory}")
    args = ["ansible-inventory", "-i", str(inventory), "--list"]
    if limit:
        args += ["--limit", limit]
    env = {**os.environ, **ansible_env()}
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    except FileNotFoundError:
        raise InventoryError("ansible-inventory is not on PATH (is ansible-core installed?)") from None
    if proc.returncode != 0:
        if limit and "Could not match supplied host pattern" in proc.stderr:
            raise InventoryError(f"inventory {inventory}: no hosts matched --limit {limit!r}")
        raise InventoryError(f"inventory {inventory}: {_first_error(proc.stderr)}")
    data = json.loads(proc.stdout or "{}")
    hosts = sorted(set(data.get("_meta", {}).get("hostvars", {})) | _group_hosts(data))
    if not hosts:
        where = f" with --limit {limit!r}" if limit else ""
        raise InventoryError(f"inventory {inventory}: no hosts matched{where}")
    return hosts


def _group_hosts(data: dict) -> set[str]:
    hosts: set[str] = set()
    for name, group in data.items():
        if name != "_meta" and isinstance(group, dict):
            hosts.update(group.get("hosts", []))
    return hosts


def _first_error(stderr: str) -> str:
    """Ansible's own error line, plus the first cause and origin it gives (the useful part)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.split(":", 1)[1].strip() for line in lines if line.startswith("[ERROR]")]
    message = errors[-1] if errors else (lines[0] if lines else "ansible-inventory failed")
    after = lines[lines.index("<<< caused by >>>") + 1:] if "<<< caused by >>>" in lines else []
    cause = next((line for line in after if not line.startswith("Origin:")), "")
    origin = next((line for line in after if line.startswith("Origin:")), "")
    return "; ".join(part for part in (message, cause, origin) if part)
