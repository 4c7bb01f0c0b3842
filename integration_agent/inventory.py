"""Checking an inventory before anything runs: it must parse, and the limit must match hosts.

It is parsed in the operator's Ansible environment (their ansible.cfg, inventory plugins, vault
secrets), exactly as the run will parse it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .ansible_env import VAULT_PASSWORD_ENV, AnsibleOptions, AnsibleSecrets, has_vault_source, layered
from .errors import InventoryError
from .executor import venv_path, write_secret
from .scratch import Scratch

Inventories = Path | Sequence[Path]


@dataclass(frozen=True)
class InventoryView:
    """The hosts a run targets and the variables the inventory gives each of them."""

    hosts: list[str]
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def defined_everywhere(self, names: Iterable[str]) -> set[str]:
        """The variables of ``names`` that the inventory defines for every targeted host."""
        return {n for n in names if self.hosts and all(n in self.hostvars.get(h, {}) for h in self.hosts)}


    def vaulted(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The variables of ``names`` that are still vault-encrypted (ansible-inventory never decrypts), with
        the hosts that have them encrypted."""
        wanted = set(names)
        found: dict[str, list[str]] = {}
        for host in self.hosts:
            for name, value in self.hostvars.get(host, {}).items():
                if (name in wanted or name.startswith("ansible_")) and isinstance(value, dict) \
                        and "__ansible_vault" in value:
                    found.setdefault(name, []).append(host)
        return found


def require_vault_secret(view: InventoryView, names: Iterable[str], options: AnsibleOptions,
                         secrets: AnsibleSecrets | None) -> None:
    """Fail before any playbook when a variable the run uses is vault-encrypted and no vault secret was
    given at all (flags, ``INTAGENT_VAULT_PASSWORD``, or the operator's Ansible configuration)."""
    vaulted = view.vaulted(names)
    if not vaulted or (secrets is not None and secrets.vault_password) or options.vault_ids \
            or options.vault_password_files or has_vault_source():
        return
    name, hosts = next(iter(sorted(vaulted.items())))
    raise InventoryError(f"inventory: {name} of {', '.join(hosts[:3])} is vault-encrypted and no vault password "
                         "was given", hint=f"set {VAULT_PASSWORD_ENV}, or pass --vault-id, --vault-password-file "
                                           "or --ask-vault-pass")


def sources(inventory: Inventories) -> list[Path]:
    """One inventory source or several, as a list."""
    return [inventory] if isinstance(inventory, (str, Path)) else [Path(i) for i in inventory]


def inspect_inventory(inventory: Inventories, limit: str | None = None, *, options: AnsibleOptions | None = None,
                      secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None) -> InventoryView:
    """Parse the inventory the way the run will (the operator's Ansible configuration, vault secrets);
    raise InventoryError when it or the limit is unusable. The vault password file goes where ``scratch``
    says (ConfigError when nowhere safe)."""
    paths = sources(inventory)
    for path in paths:
        if not path.exists():
            raise InventoryError(f"inventory not found: {path}")
    options = options or AnsibleOptions()
    where = ", ".join(str(p) for p in paths)
    args = ["ansible-inventory", *[a for p in paths for a in ("-i", str(p))], "--list", *options.vault_args()]
    if limit:
        args += ["--limit", limit]
    vault_password = secrets.vault_password if secrets is not None else None
    private = (scratch or Scratch()).private_dir("intagent-inventory-", secrets=bool(vault_password))
    try:
        if vault_password:
            args += ["--vault-password-file", str(write_secret(private / "vault.pass", vault_password))]
        env = {**os.environ, **layered().env, "PATH": venv_path(), "ANSIBLE_LOCAL_TEMP": str(private / "tmp")}
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise InventoryError("ansible-inventory is not on PATH (is ansible-core installed?)") from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
    if proc.returncode != 0:
        if limit and "Could not match supplied host pattern" in proc.stderr:
            raise InventoryError(f"inventory {where}: no hosts matched --limit {limit!r}")
        raise InventoryError(f"inventory {where}: {_first_error(proc.stderr)}")
    data = json.loads(proc.stdout or "{}")
    hostvars = data.get("_meta", {}).get("hostvars", {})
    hosts = sorted(set(hostvars) | _group_hosts(data))
    if not hosts:
        limited = f" with --limit {limit!r}" if limit else ""
        raise InventoryError(f"inventory {where}: no hosts matched{limited}")
    view = InventoryView(hosts, {h: v for h, v in hostvars.items() if isinstance(v, dict)})
    _check_connection_vars(view, where)
    return view


def resolve_hosts(inventory: Inventories, limit: str | None = None, *, options: AnsibleOptions | None = None,
                  secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None) -> list[str]:
    """The hosts a run would target; raise InventoryError when the inventory or the limit is unusable."""
    return inspect_inventory(inventory, limit, options=options, secrets=secrets, scratch=scratch).hosts


# Variables that end up as words of the ssh command line: a value with anything but these characters (a
# host name, an address, a port, a user) is a mistake or an attack, refused before any playbook starts.
CONNECTION_VARS = ("ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port", "ansible_user",
                   "ansible_ssh_user", "ansible_become_user")
_CONNECTION_VALUE = re.compile(r"[A-Za-z0-9._:@%\[\]-]+")
_JINJA = re.compile(r"\{\{[^{}]*\}\}")


def _check_connection_vars(view: InventoryView, where: str) -> None:
    for host in view.hosts:
        for name in CONNECTION_VARS:
            value = view.hostvars.get(host, {}).get(name)
            if value is None or isinstance(value, (bool, dict)):
                continue
            text = _JINJA.sub("x", str(value))  # Ansible templates the expression itself
            if not _CONNECTION_VALUE.fullmatch(text):
                raise InventoryError(f"inventory {where}: host {host}: {name} is {str(value)!r}, which is not a "
                                     "host name, address, port or user name",
                                     hint="connection variables may hold letters, digits and . _ : @ % [ ] -")


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
