"""The cached Debian base image every lab host boots from (read-only lower layer of its overlay)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from ..errors import LabError
from .layout import OPS_PASSWORD, OPS_USER
from .system import run

# Bump when the customisation below changes, so cached images are rebuilt.
BASE_FORMAT = 3
BASE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "iproute2",
                 "sudo")
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
# debootstrap checks each release's Release file against this keyring (bullseye to trixie keys are in
# bookworm's debian-archive-keyring); naming it makes a missing keyring an error instead of a warning.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

# Files of the image that every host must get its own of.
_PER_HOST_FILES = ("etc/machine-id", "var/lib/dbus/machine-id", "etc/hostname")


def apt_debian_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt already uses (the lab fetches from the same place)."""
    texts = []
    for path in [sources_dir / "sources.list", *sorted((sources_dir / "sources.list.d").glob("*"))]:
        if path.is_file() and path.suffix in ("", ".list", ".sources"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    for text in texts:
        for match in re.finditer(r"(?m)^(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)", text):
            uri = match.group(1)
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_DEBIAN_MIRROR


class BaseImage:
    """A debootstrapped root file system, built once into ``cache_dir`` and reused."""

    def __init__(self, cache_dir: Path, suite: str, mirror: str, keyring: Path = DEBIAN_KEYRING) -> None:
        self.suite = suite
        self.mirror = mirror
        self.keyring = keyring
        self.path = cache_dir / f"base-{suite}-v{BASE_FORMAT}"
        self._stamp = self.path / ".intagent-base"

    @property
    def ready(self) -> bool:
        return self._stamp.is_file()

    def ensure(self, rebuild: bool = False) -> float:
        """Build the image unless a complete one is cached; return the seconds spent building."""
        if self.ready and not rebuild:
            return 0.0
        if not self.keyring.is_file():
            raise LabError(f"no Debian archive keyring at {self.keyring} to check the {self.suite} image against",
                           hint="install it with: apt-get install -y debian-archive-keyring")
        started = time.monotonic()
        staging = self.path.with_name(self.path.name + ".building")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                 f"--keyring={self.keyring}", self.suite, str(staging), self.mirror], timeout=1800)
            self._customise(staging)
        except LabError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        (staging / ".intagent-base").write_text(f"suite={self.suite}\nmirror={self.mirror}\n")
        # Swap in atomically: a half-built image is never taken for a cached one.
        old = self.path.with_name(self.path.name + ".old")
        if self.path.exists():
            self.path.rename(old)
        staging.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        return time.monotonic() - started

    def _customise(self, root: Path) -> None:
        """Make the image neutral: hosts get their own identity, keys and package sources at boot."""
        for rel in _PER_HOST_FILES:
            target = root / rel
            if target.exists() or target.is_symlink():
                target.unlink()
        (root / "etc/machine-id").write_text("")
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        _add_ops_user(root)
        (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
        (root / "etc/ssh/sshd_config.d/intagent-lab.conf").write_text(
            "# intagent lab host: key-only login (root and ops), one host key\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n")
        (root / "etc/apt/apt.conf.d/90intagent-lab").write_text(
            'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
            'Acquire::Retries "2";\nAcquire::http::Timeout "10";\n')
        # The image keeps Debian's sources (the mirror sync uses them); hosts get the lab mirror instead.
        (root / "etc/apt/sources.list").write_text(f"deb {self.mirror} {self.suite} main\n")
        for lists in (root / "var/lib/apt/lists").glob("*_*"):
            lists.unlink()
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def _add_ops_user(root: Path) -> None:
    """The fleet-like login user: in group sudo, with a password that sudo asks for (SSH stays key-only)."""
    run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", OPS_USER])
    run(["chroot", str(root), "chpasswd"], input=f"{OPS_USER}:{OPS_PASSWORD}\n")
