#!/usr/bin/python
"""Ansible module: what a host runs, read without changing anything (intagent discover)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: intagent_host_facts
short_description: What a host runs - processes, listening TCP ports, packages, systemd units (read only)
description:
  - Reads C(/proc), dpkg's status file and systemd; changes nothing, supports check mode.
  - Returns the fact C(intagent_discovered).
options:
  packages:
    description: Installed packages to report (with their versions); empty reports none.
    type: list
    elements: str
    default: []
  services:
    description: systemd services whose unit files to report when they exist (active or not).
    type: list
    elements: str
    default: []
"""

RETURN = r"""
ansible_facts:
  description: C(intagent_discovered) with processes, ports, packages, active_units and unit_files.
  returned: always
  type: dict
"""

import contextlib  # noqa: E402 - an Ansible module documents itself before its imports
import os  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

DPKG_STATUS = "/var/lib/dpkg/status"


def processes():
    """Names of running processes: the kernel's name (comm) and the program's file name."""
    names = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv0 = handle.read().split(b"\0", 1)[0].decode(errors="replace")
            if not argv0:  # a kernel thread
                continue
            with open(f"/proc/{pid}/comm") as handle:
                names.add(handle.read().strip())
        except OSError:  # gone meanwhile
            continue
        # "postgres: checkpointer" and the like: the program is the first word.
        names.add(os.path.basename(argv0.split()[0].rstrip(":")) if argv0.split() else argv0)
        with contextlib.suppress(OSError):
            names.add(os.path.basename(os.readlink(f"/proc/{pid}/exe")).removesuffix(" (deleted)"))
    return sorted(n for n in names if n)


def listening_ports():
    """TCP ports in LISTEN state on any address, IPv4 and IPv6."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return sorted(ports)


def installed_packages(wanted):
    """{name: version} of the ``wanted`` packages that dpkg has installed."""
    found = {}
    if not wanted or not os.path.exists(DPKG_STATUS):
        return found
    with open(DPKG_STATUS, errors="replace") as handle:
        for stanza in handle.read().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.MULTILINE))
            name = fields.get("Package", "").split(":")[0]
            if name in wanted and fields.get("Status", "").endswith(" installed"):
                found[name] = fields.get("Version", "")
    return found


def units(module, services):
    """Active units (services and sockets), and which of ``services`` have a unit file."""
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return [], []
    rc, out, _ = module.run_command([systemctl, "list-units", "--type=service,socket", "--state=active",
                                     "--no-legend", "--plain", "--no-pager"])
    active = sorted({line.split()[0] for line in out.splitlines() if line.split()}) if rc == 0 else []
    files = []
    if services:
        wanted = [s if "." in s else f"{s}.service" for s in services]
        rc, out, _ = module.run_command([systemctl, "list-unit-files", "--no-legend", "--plain", "--no-pager",
                                         *wanted])
        files = sorted({line.split()[0] for line in out.splitlines() if line.split()}) if rc in (0, 1) else []
    return active, files


def main():
    module = AnsibleModule(argument_spec={"packages": {"type": "list", "elements": "str", "default": []},
                                          "services": {"type": "list", "elements": "str", "default": []}},
                           supports_check_mode=True)
    active, files = units(module, module.params["services"])
    discovered = {
        "processes": processes(),
        "ports": listening_ports(),
        "packages": installed_packages(set(module.params["packages"])),
        "active_units": active,
        "unit_files": files,
    }
    module.exit_json(changed=False, ansible_facts={"intagent_discovered": discovered})


if __name__ == "__main__":
    main()
