"""The lab's package mirror: Debian packages (and test-built .debs) served to hosts over HTTP."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from email.utils import formatdate
from pathlib import Path

from ..errors import LabError
from .system import mounts_under, process_alive, run


class Mirror:
    """A flat apt repository under ``state_dir/mirror`` fed from a download cache in ``cache_dir``."""

    def __init__(self, cache_dir: Path, state_dir: Path, suite: str) -> None:
        self.cache = cache_dir / f"debs-{suite}"
        self.root = state_dir / "mirror"
        self.log = state_dir / "mirror.log"

    # -- content ----------------------------------------------------------------------------------
    def sync(self, base_root: Path, packages: Iterable[str]) -> None:
        """Download ``packages`` and what they need beyond the base image, unless already cached."""
        # Dependencies are resolved against the base image, so a new image means a new resolution.
        wanted = f"base={base_root.name}\n" + "\n".join(sorted(set(packages))) + "\n"
        stamp = self.cache / ".packages"
        if stamp.is_file() and stamp.read_text() == wanted:
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="intagent-mirror-", dir=self.cache.parent) as tmp:
            self._download(base_root, Path(tmp), sorted(set(packages)))
        stamp.write_text(wanted)

    def _download(self, base_root: Path, tmp: Path, packages: list[str]) -> None:
        # apt resolves inside a throwaway overlay of the base image, so dependencies are computed
        # against exactly what lab hosts have installed, whatever the controller runs.
        upper, work, merged = tmp / "upper", tmp / "work", tmp / "root"
        for d in (upper, work, merged):
            d.mkdir()
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={base_root},upperdir={upper},workdir={work}", str(merged)])
        try:
            shutil.copyfile("/etc/resolv.conf", merged / "etc/resolv.conf")
            debs = merged / "intagent-debs"
            debs.mkdir()
            run(["mount", "--bind", str(self.cache), str(debs)])
            opts = ["-o", "Dir::Cache::archives=/intagent-debs", "-o", "APT::Sandbox::User=root"]
            run(["chroot", str(merged), "apt-get", "-q", "update", *opts], timeout=900)
            run(["chroot", str(merged), "apt-get", "-q", "-y", "install", "--download-only",
                 "--no-install-recommends", *opts, *packages], timeout=1800)
        finally:
            for point in mounts_under(str(merged)):
                run(["umount", point], check=False)

    def publish(self, extra_debs: Iterable[Path] = ()) -> None:
        """Lay out the served tree (cached packages, extra .debs) and write its index."""
        pool = self.root / "pool"
        pool.mkdir(parents=True, exist_ok=True)
        for deb in [*self.cache.glob("*.deb"), *extra_debs]:
            target = pool / deb.name
            if not target.exists():
                try:
                    os.link(deb, target)
                except OSError:
                    shutil.copy2(deb, target)
        self._index()

    def add(self, debs: Iterable[Path]) -> list[str]:
        """Add .deb files to the served mirror; return their file names."""
        debs = list(debs)
        for deb in debs:
            if deb.suffix != ".deb" or not deb.is_file():
                raise LabError(f"not a .deb file: {deb}")
        extra = self.root / "pool"
        extra.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            shutil.copy2(deb, extra / deb.name)
        self._index()
        return [deb.name for deb in debs]

    def _index(self) -> None:
        proc = subprocess.run(["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"],
                              cwd=self.root, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"dpkg-scanpackages failed: {proc.stderr.strip()}")
        packages = proc.stdout.encode()
        (self.root / "Packages").write_bytes(packages)
        (self.root / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
        lines = ["Origin: intagent-lab", "Label: intagent lab mirror", "Suite: lab", "Codename: lab",
                 f"Date: {formatdate(usegmt=True)}", "SHA256:"]
        for name in ("Packages", "Packages.gz"):
            data = (self.root / name).read_bytes()
            lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
        (self.root / "Release").write_text("\n".join(lines) + "\n")

    # -- serving ----------------------------------------------------------------------------------
    def serve(self, address: str, port: int, pid: int | None) -> int:
        """Make sure the HTTP server for the mirror runs on ``address:port``; return its pid."""
        if process_alive(pid, str(self.root)):
            return pid  # type: ignore[return-value]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(port), "--bind", address, "--directory",
                 str(self.root)], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"package mirror did not start on {address}:{port}; see {self.log}")
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex((address, port)) == 0:
                    return proc.pid
            time.sleep(0.05)
        raise LabError(f"package mirror did not answer on {address}:{port} within 10s; see {self.log}")
