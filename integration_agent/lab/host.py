"""One lab host: an overlay root file system over the base image, booted by systemd-nspawn."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import LabError
from .layout import DEFAULT_RELEASE, OPS_USER
from .system import mounts_under, process_alive, run, wait_gone

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "LogLevel=ERROR")
HOST_KEY = "etc/ssh/ssh_host_ed25519_key"
# Only the bastion may open SSH connections to a host behind it (any other client is refused).
BASTION_ONLY_CONF = "etc/ssh/sshd_config.d/intagent-lab-bastion.conf"


def proxy_command(key: Path, jump: str, options: tuple[str, ...] = SSH_OPTIONS) -> str:
    """The ssh ProxyCommand that reaches ``%h:%p`` through ``jump`` (``user@address``) with the lab key."""
    return shlex.join(["ssh", "-i", str(key), *options, "-W", "%h:%p", jump])


def ssh_argv(key: Path, target: str, command: str, *, jump: str | None = None, timeout: int = 5) -> list[str]:
    """The argv that runs ``command`` on ``target`` (``user@address``), through ``jump`` when given."""
    via = ["-o", f"ProxyCommand={proxy_command(key, jump)}"] if jump else []
    return ["ssh", "-i", str(key), *SSH_OPTIONS, "-o", f"ConnectTimeout={timeout}", *via, target, command]


@dataclass
class LabHost:
    """What the lab knows about one of its hosts (persisted in the lab state file)."""

    name: str
    index: int
    address: str
    netns: str
    veth: str
    dir: str
    pid: int | None = None
    release: str = DEFAULT_RELEASE
    # The one address sshd accepts connections from (the bastion's), or None for any.
    allow_from: str | None = None

    @property
    def root(self) -> Path:
        return Path(self.dir) / "root"

    @property
    def machine(self) -> str:
        # nspawn keeps per-machine runtime state under this name; it must be unique per host.
        return f"intagent-{self.name}"

    def to_json(self) -> dict:
        return asdict(self)

    def running(self) -> bool:
        return process_alive(self.pid, str(self.root))

    @property
    def _host_key_file(self) -> Path:
        # The overlay's upper layer holds the key whether or not the root is mounted.
        return Path(self.dir) / "upper" / f"{HOST_KEY}.pub"

    @property
    def has_host_key(self) -> bool:
        return self._host_key_file.is_file()

    @property
    def host_public_key(self) -> str:
        """The host's SSH public key (``type base64``), as known_hosts lists it."""
        return " ".join(self._host_key_file.read_text().split()[:2])

    def prepare(self, base: Path, public_key: str, mirror_url: str) -> None:
        """Mount a fresh overlay and write this host's identity, keys, access and package source into it."""
        self.unmount()
        host_dir = Path(self.dir)
        for sub in ("upper", "work", "root"):
            path = host_dir / sub
            if sub != "root":
                run(["rm", "-rf", str(path)])
            path.mkdir(parents=True, exist_ok=True)
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base},upperdir={host_dir / 'upper'},workdir={host_dir / 'work'}", str(self.root)])
        root = self.root
        (root / "etc/hostname").write_text(f"{self.name}\n")
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n{self.address} {self.name}\n")
        _authorize(root, "root", public_key)
        _authorize(root, OPS_USER, public_key)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name, "-f", str(root / HOST_KEY)])
        if self.allow_from:
            (root / BASTION_ONLY_CONF).write_text(
                f"# intagent lab: this host is reached through the bastion only\nAllowUsers *@{self.allow_from}\n")
        (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] {mirror_url} ./\n")

    def start(self, log_dir: Path) -> None:
        with open(log_dir / f"{self.name}.console.log", "ab") as log:
            proc = subprocess.Popen(
                ["systemd-nspawn", "--boot", "--quiet", "--register=no", "--keep-unit",
                 f"--machine={self.machine}", f"--hostname={self.name}",
                 f"--network-namespace-path=/run/netns/{self.netns}", "--console=read-only",
                 f"--directory={self.root}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.pid = proc.pid

    def answers(self, key: Path, timeout: float = 2.0, jump: str | None = None) -> bool:
        """True when the host accepts our SSH key and runs a command (through ``jump`` when given)."""
        argv = ssh_argv(key, f"root@{self.address}", "true", jump=jump, timeout=max(1, int(timeout)))
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5, check=False)
        return proc.returncode == 0

    def wait_ready(self, key: Path, timeout: float, jump: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise LabError(f"lab host {self.name} stopped while booting; see its console log")
            if self.answers(key, timeout=1.0, jump=jump):
                return
            time.sleep(0.2)
        raise LabError(f"lab host {self.name} ({self.address}) did not answer SSH within {timeout:.0f}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Halt the host cleanly (SIGTERM makes nspawn shut the container down), then unmount."""
        if self.running():
            assert self.pid is not None
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.running():
                os.killpg(self.pid, signal.SIGKILL)
                wait_gone([self.pid], 5)
        self.pid = None
        self.unmount()

    def unmount(self) -> None:
        for point in mounts_under(str(self.root)):
            run(["umount", point], check=False)
            if point in mounts_under(point):
                run(["umount", "--lazy", point], check=False)


def _authorize(root: Path, user: str, public_key: str) -> None:
    """Let ``public_key`` log in as ``user`` (an account of the image at ``root``)."""
    uid, gid, home = _account(root, user)
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key)
    os.chmod(keys, 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid)


def _account(root: Path, user: str) -> tuple[int, int, str]:
    """``user``'s uid, gid and home in the image's /etc/passwd (a LabError when the image lacks it)."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    raise LabError(f"the lab base image has no user {user!r}", hint="rebuild it with: intagent lab up --rebuild")
