"""Rule IA106 privileged-file: no privileged or credential files, setuid modes, uid 0 or privileged groups."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from ...schema import GeneratedTask
from ..data import UNIT_DIRECTORIES
from ..footprint import normalize, read_paths, under, written_paths
from ..jinja import literal_shape
from ..registry import PlanContext, task_rule
from ..tasks import as_list, expand, kind

PRIVILEGED_PATHS = (
    "/etc/sudoers", "/etc/sudoers.d", "/etc/sudoers.d/*", "/root", "/root/*", "*/.ssh", "*/.ssh/*",
    "*/authorized_keys*", "/etc/passwd*", "/etc/shadow*", "/etc/group*", "/etc/gshadow*", "/etc/pam.d*",
    "/etc/security/*", "/etc/cron*", "/var/spool/cron*", "/etc/anacrontab", "/etc/profile", "/etc/profile.d*",
    "/etc/bash.bashrc", "/etc/environment", "/etc/ld.so.preload", "/etc/ld.so.conf*", "/etc/ssh/*",
    "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/apt/apt.conf.d*", "/etc/dpkg/dpkg.cfg.d*",
    "/etc/yum.conf", "/etc/dnf/*", "/etc/modprobe.d*", "/etc/modules-load.d*", "/etc/udev/rules.d*",
    "/etc/sysctl.conf", "/etc/sysctl.d*", "/etc/polkit-1*", "/etc/init.d*", "/etc/rc.local", "/etc/xdg/autostart*")


SECRET_FILES = ("/etc/shadow*", "/etc/gshadow*", "/etc/sudoers*", "/root/*", "*/.ssh/*", "/etc/ssh/*key*",
                "/proc/*/environ")


PRIVILEGED_GROUPS = frozenset({"root", "sudo", "wheel", "adm", "admin", "docker", "lxd", "disk", "shadow", "kvm"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Files that grant privileges or run code as root (sudoers, ssh keys, passwd/shadow/group, PAM, cron,
    profile scripts, ld.so.preload, apt.conf.d, systemd units of other services, ...) are never written
    or deleted, even when a manifest lists them; credential files are never read. No setuid/setgid
    modes, no uid 0, no membership of privileged groups."""
    for raw, _ in written_paths(task):
        for value in expand(task, raw):
            if problem := privileged_problem(ctx, value):
                yield f"writes {problem}"
    for raw in read_paths(task):
        for value in expand(task, raw):
            if isinstance(value, str) and any(fnmatchcase(normalize(literal_shape(value)), p) for p in SECRET_FILES):
                yield f"reads {value}, a credential file"
    k, a = kind(task), task.args
    if setuid_mode(a.get("mode")):
        yield f"mode {a['mode']} sets a setuid/setgid bit"
    if k == "getent" and a.get("database") in ("shadow", "gshadow"):
        yield f"getent reads the {a['database']} database"
    if k in ("user", "group"):
        if str(a.get("uid", a.get("gid", ""))).strip() == "0":
            yield "uid/gid 0 is root"
        groups = {g for g in as_list(a.get("groups")) + as_list(a.get("group")) if isinstance(g, str)}
        if groups & PRIVILEGED_GROUPS:
            yield f"membership of privileged group(s) {', '.join(sorted(groups & PRIVILEGED_GROUPS))}"


RULE = task_rule("IA106", "privileged-file", check)


def privileged_problem(ctx: PlanContext, value: Any) -> str | None:
    """The privileged file (or unit of a service the integration does not own) a path names, or None."""
    if not isinstance(value, str) or not value.startswith(("/", "{")):
        return None
    path = normalize(literal_shape(value))
    for directory in UNIT_DIRECTORIES:
        if under(path, directory):
            unit = path[len(directory):].strip("/").split("/")[0]
            stem = re.split(r"[.@]", unit, maxsplit=1)[0]
            if stem not in ctx.manifest.owns.services:
                return f"{path}, a systemd unit of a service the integration does not own"
            return None
    hit = next((p for p in PRIVILEGED_PATHS if fnmatchcase(path, p)), None)
    return f"{path}, a privileged file ({hit})" if hit else None


def setuid_mode(mode: Any) -> bool:
    """Does a file mode (octal string, symbolic string or int) set the setuid or setgid bit?"""
    if isinstance(mode, str):
        mode = mode.strip()
        if re.fullmatch(r"0?[0-7]{3,4}", mode):
            return bool(int(mode, 8) & 0o6000)
        return bool(re.search(r"[+=][rwxXt]*s", mode))
    if type(mode) is int:
        digits = str(mode)
        return bool(mode & 0o6000) or (set(digits) <= set("01234567") and bool(int(digits, 8) & 0o6000))
    return False
