"""Small, checked wrappers around the system commands the lab drives."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence

from ..errors import LabError

# Tool on PATH -> Debian package that provides it.
REQUIRED_TOOLS: Mapping[str, str] = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "dpkg-scanpackages": "dpkg-dev",
    "mount": "mount",
    "umount": "mount",
    "chroot": "coreutils",
}


def preflight(*, euid: int | None = None, which=shutil.which) -> None:
    """Fail at once, naming what is missing, when the lab cannot run on this machine."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise LabError("the lab needs root (it creates network namespaces, mounts and containers)",
                       hint="run it as root, for example with sudo")
    missing = [tool for tool in REQUIRED_TOOLS if which(tool) is None]
    if missing:
        packages = sorted({REQUIRED_TOOLS[tool] for tool in missing})
        raise LabError(f"missing tools for the lab: {', '.join(missing)}",
                       hint=f"install them with: apt-get install -y {' '.join(packages)}")


def run(args: Sequence[str], *, check: bool = True, input: str | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and raise LabError naming it when it fails."""
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=timeout,
                              env=None if env is None else {**os.environ, **env})
    except FileNotFoundError:
        raise LabError(f"command not found: {args[0]}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"command timed out after {timeout}s: {' '.join(args)}") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"command failed ({proc.returncode}): {' '.join(args)}: "
                       f"{detail[-1] if detail else 'no output'}")
    return proc


def ok(args: Sequence[str]) -> bool:
    """Run a command and tell whether it succeeded, ignoring its output."""
    return run(args, check=False).returncode == 0


def process_alive(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is running and its command line contains ``marker`` (guards against reuse), or
    when it is still exiting: the kernel empties a process's command line early in its exit, long before
    the process (an nspawn tearing its container down) is gone."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline or (not cmdline and process_state(pid) not in ("", "Z", "X"))


def process_state(pid: int) -> str:
    """The one-letter state of ``pid`` ("" when there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return ""


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until every process of ``pids`` has exited (zombies count as exited); return those left."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left:
        left = [pid for pid in left if process_state(pid) not in ("", "Z", "X")]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return left


# The module the lab's package mirror is served by.
MIRROR_SERVER = "integration_agent.lab.mirror_http"
# Programs the lab starts; only these are ever stopped by ``lab down`` ("http.server": the mirror server
# of labs started before it had a module of its own).
LAB_PROGRAMS = ("systemd-nspawn", MIRROR_SERVER, "http.server", "integration_agent.lab.egress")


def processes_matching(marker: str) -> list[int]:
    """PIDs of lab programs (nspawn, the mirror server) whose command line contains ``marker``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and any(program in cmdline for program in LAB_PROGRAMS):
            pids.append(int(entry))
    return pids


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix``, deepest first."""
    points = []
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            point = line.split()[1].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


# Each booted host's systemd, journald and udev hold inotify instances of their own, all counted against
# root: the kernel's default of 128 instances stops a lab at about 40 hosts ("Too many open files").
INOTIFY_INSTANCES_PER_HOST = 16
INOTIFY_WATCHES_PER_HOST = 8192


def raise_inotify_limits(hosts: int, proc: str = "/proc/sys/fs/inotify") -> dict[str, int]:
    """Make room for ``hosts`` booted hosts in the kernel's inotify limits (never lowering them); the
    limits raised, by name, with their new value."""
    wanted = {"max_user_instances": 128 + INOTIFY_INSTANCES_PER_HOST * hosts,
              "max_user_watches": 65536 + INOTIFY_WATCHES_PER_HOST * hosts}
    raised = {}
    for name, minimum in wanted.items():
        path = f"{proc}/{name}"
        try:
            with open(path) as fh:
                current = int(fh.read().strip())
            if current < minimum:
                with open(path, "w") as fh:
                    fh.write(str(minimum))
                raised[name] = minimum
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot raise fs.inotify.{name} to {minimum} for {hosts} hosts: {exc}",
                           hint=f"sysctl -w fs.inotify.{name}={minimum}") from None
    return raised
