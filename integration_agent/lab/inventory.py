"""The files ``lab up`` writes for Ansible: the lab inventory, the hosts' known keys, and the fleet-like setup.

The lab inventory (``<state>/inventory.yml``) carries everything a run needs: user, key, SSH options (the
bastion's ProxyCommand among them). The fleet-like setup (``<state>/fleet/``) splits the same facts the
way an operator's environment does: ``hosts.yml`` names hosts only, and ``ansible.cfg`` holds the login
user ``ops``, the private key, strict host key checking against ``<state>/known_hosts`` and the bastion.
The become password is in neither: the operator supplies it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from .host import SSH_OPTIONS, proxy_command
from .layout import OPS_USER

HEADER = "Written by `intagent lab up`; regenerated on every run."
PYTHON = "/usr/bin/python3"
LAB_GROUP = "lab"
# The lab inventory trusts any host key (hosts are re-created with new keys all the time).
TRUST_ANY_HOST_KEY = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
# Ansible's own defaults for ssh_args, kept when the fleet's ansible.cfg sets its own.
ANSIBLE_SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s"


@dataclass(frozen=True)
class InventoryHost:
    """One host as the inventories show it."""

    name: str
    address: str
    release: str
    mirror_url: str

    def variables(self) -> dict[str, str]:
        # ansible_host first: tests edit inventories by the ``<name>:\n  ansible_host:`` text.
        return {"ansible_host": self.address, "intagent_lab_release": self.release,
                "intagent_lab_mirror_url": self.mirror_url}


@dataclass(frozen=True)
class Access:
    """How hosts are reached: the lab key, the login user, the bastion's address (if any), known keys."""

    key: Path
    login_user: str = "root"
    bastion: str | None = None
    known_hosts: Path | None = None

    def jump(self, user: str | None = None) -> str | None:
        """``user@bastion`` to jump through (the login user by default), or None without a bastion."""
        return f"{user or self.login_user}@{self.bastion}" if self.bastion else None

    def strict_options(self) -> tuple[str, ...]:
        """SSH options that check host keys against the lab's known_hosts file."""
        return ("-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR")


def lab_inventory(hosts: list[InventoryHost], access: Access, top_mirror_url: str) -> dict:
    """The lab inventory: every connection setting in it, host keys not checked."""
    common = TRUST_ANY_HOST_KEY
    jump = access.jump()
    if jump:
        common += " " + shlex.join(["-o", f"ProxyCommand={proxy_command(access.key, jump, SSH_OPTIONS)}"])
    lab_vars = {
        "ansible_user": access.login_user,
        "ansible_ssh_private_key_file": str(access.key),
        "ansible_ssh_common_args": common,
        "ansible_python_interpreter": PYTHON,
        "intagent_lab_mirror_url": top_mirror_url,
    }
    if access.bastion:
        lab_vars["intagent_lab_bastion"] = access.bastion
    return {"all": {"children": {LAB_GROUP: {"hosts": {h.name: h.variables() for h in hosts}}}, "vars": lab_vars}}


def fleet_hosts(hosts: list[InventoryHost]) -> dict:
    """The fleet-like inventory: host names, addresses and lab facts only (no user, key or SSH options)."""
    return {"all": {"children": {LAB_GROUP: {"hosts": {h.name: h.variables() for h in hosts}}}}}


def fleet_ansible_cfg(access: Access) -> str:
    """The fleet-like ``ansible.cfg``: login as ``ops`` with the lab key, checked host keys, the bastion."""
    ssh_args = " ".join([ANSIBLE_SSH_ARGS, shlex.join(access.strict_options())])
    jump = access.jump(OPS_USER)
    if jump:
        proxy = proxy_command(access.key, jump, access.strict_options())
        ssh_args += " " + shlex.join(["-o", f"ProxyCommand={proxy}"])
    return "\n".join([
        "# Written by `intagent lab up --fleet`: the lab as an operator's Ansible set-up would reach it.",
        "# The become password (ops's sudo password) is not here: give it the way operators do.",
        "[defaults]",
        f"remote_user = {OPS_USER}",
        f"private_key_file = {access.key}",
        "host_key_checking = True",
        f"interpreter_python = {PYTHON}",
        "",
        "[privilege_escalation]",
        "become_method = sudo",
        "",
        "[ssh_connection]",
        # ansible-core reads ansible.cfg values raw (parser.get(raw=True)): ssh's %h and %p go in as they are.
        f"ssh_args = {ssh_args}",
        "",
    ])


def known_hosts(keys: dict[str, str]) -> str:
    """known_hosts lines for ``{address: "type base64"}``."""
    return "".join(f"{address} {key}\n" for address, key in sorted(keys.items()))


def dump_yaml(data: dict, header: str) -> str:
    return f"# {header}\n" + yaml.safe_dump(data, sort_keys=False)


def write_inventories(inventory: Path, fleet_dir: Path | None, hosts: list[InventoryHost], access: Access,
                      keys: dict[str, str], top_mirror_url: str) -> None:
    """Write the lab inventory, ``access.known_hosts`` from ``keys`` and, given ``fleet_dir``, the fleet files."""
    assert access.known_hosts is not None
    write_atomic(access.known_hosts, known_hosts(keys))
    write_atomic(inventory, dump_yaml(lab_inventory(hosts, access, top_mirror_url), HEADER))
    if fleet_dir is not None:
        fleet_dir.mkdir(exist_ok=True)
        fleet_header = HEADER + " No user or key: see ansible.cfg."
        write_atomic(fleet_dir / "hosts.yml", dump_yaml(fleet_hosts(hosts), fleet_header))
        write_atomic(fleet_dir / "ansible.cfg", fleet_ansible_cfg(access))


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace ``path`` atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    tmp.replace(path)
