"""One lab host: an overlay root file system over the base image, booted by systemd-nspawn."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import LabError
from .system import mounts_under, process_alive, run

SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
               "-o", "LogLevel=ERROR")


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

    def prepare(self, base: Path, public_key: str, mirror_url: str) -> None:
        """Mount a fresh overlay and write this host's identity, keys and package source into it."""
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
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(public_key)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
             "-f", str(root / "etc/ssh/ssh_host_ed25519_key")])
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

    def answers(self, key: Path, timeout: float = 2.0) -> bool:
        """True when the host accepts our SSH key and runs a command."""
        proc = subprocess.run(["ssh", "-i", str(key), *SSH_OPTIONS, "-o", f"ConnectTimeout={max(1, int(timeout))}",
                               f"root@{self.address}", "true"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 5, check=False)
        return proc.returncode == 0

    def wait_ready(self, key: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise LabError(f"lab host {self.name} stopped while booting; see its console log")
            if self.answers(key, timeout=1.0):
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
        self.pid = None
        self.unmount()

    def unmount(self) -> None:
        for point in mounts_under(str(self.root)):
            run(["umount", point], check=False)
            if point in mounts_under(point):
                run(["umount", "--lazy", point], check=False)
