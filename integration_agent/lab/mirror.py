"""The lab's package mirror: Debian packages (and test-built .debs) served to hosts over HTTP.

One HTTP server serves ``state_dir/mirror``. Each Debian release the lab runs has a flat repository of its
own below it (``/<release>/``); the top level indexes the lab's first release as well, so the
``deb [trusted=yes] http://<gateway>:<port>/ ./`` lines written before the lab had several releases still work.
"""

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
from .inventory import write_atomic
from .system import MIRROR_SERVER, mounts_under, process_alive, run


class Repository:
    """One release's flat apt repository under ``served_dir/<suite>``, fed from a download cache in ``cache_dir``."""

    def __init__(self, cache_dir: Path, served_dir: Path, suite: str) -> None:
        self.suite = suite
        self.cache = cache_dir / f"debs-{suite}"
        self.root = served_dir / suite

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
        """Lay out this release's served tree (cached packages, extra .debs) and write its index."""
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
        """Add .deb files to this release's served repository; return their file names."""
        debs = list(debs)
        for deb in debs:
            if deb.suffix != ".deb" or not deb.is_file():
                raise LabError(f"not a .deb file: {deb}")
        extra = self.root / "pool"
        extra.mkdir(parents=True, exist_ok=True)
        for deb in debs:  # replaced whole, as the index: a host may be downloading the one it replaces
            tmp = extra / f".{deb.name}.tmp"
            shutil.copy2(deb, tmp)
            tmp.replace(extra / deb.name)
        self._index()
        return [deb.name for deb in debs]

    @property
    def published(self) -> bool:
        return (self.root / "Packages").is_file()

    def _index(self) -> None:
        write_index(self.root, "pool", self.suite)


# Generations of index files kept under by-hash/ after they are replaced: a host that read the previous Release
# a moment before a rewrite still finds the package list it names.
BY_HASH_KEPT = 8


def write_index(directory: Path, pool: str, suite: str) -> None:
    """Index the .debs under ``directory/pool`` as a flat repository in ``directory`` (Packages, Release).

    apt reads the Release first and then the package list it names, by hash (``Acquire-By-Hash``): a host
    that reads the index while a test adds a package gets the lists of the Release it read, old or new,
    never a Release of one generation with the list of the next. An unchanged index is not rewritten."""
    proc = subprocess.run(["dpkg-scanpackages", "--multiversion", pool, "/dev/null"],
                          cwd=directory, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"dpkg-scanpackages failed in {directory}: {proc.stderr.strip()}")
    packages = proc.stdout.encode()
    release = directory / "Release"
    current = directory / "Packages"
    if (release.is_file() and "Acquire-By-Hash: yes" in release.read_text() and (directory / "Packages.gz").is_file()
            and current.is_file() and current.read_bytes() == packages):
        return
    by_hash = directory / "by-hash" / "SHA256"
    by_hash.mkdir(parents=True, exist_ok=True)
    # Suite and Codename stay "lab" whatever the release: apt refuses a repository whose codename changes.
    lines = ["Origin: intagent-lab", f"Label: intagent lab mirror ({suite})", "Suite: lab", "Codename: lab",
             f"Date: {formatdate(usegmt=True)}", "Acquire-By-Hash: yes", "SHA256:"]
    for name, data in (("Packages", packages), ("Packages.gz", gzip.compress(packages, mtime=0))):
        digest = hashlib.sha256(data).hexdigest()
        write_atomic(by_hash / digest, data)
        write_atomic(directory / name, data)  # for readers that do not fetch by hash
        lines.append(f" {digest} {len(data)} {name}")
    write_atomic(release, "\n".join(lines) + "\n")
    # Each generation is two files (Packages and Packages.gz).
    for old in sorted(by_hash.iterdir(), key=lambda p: p.stat().st_mtime_ns, reverse=True)[2 * BY_HASH_KEPT:]:
        old.unlink(missing_ok=True)


class Mirror:
    """The served tree ``state_dir/mirror``: one :class:`Repository` per release, and its HTTP server."""

    def __init__(self, cache_dir: Path, state_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.root = state_dir / "mirror"
        self.log = state_dir / "mirror.log"

    def repository(self, suite: str) -> Repository:
        return Repository(self.cache_dir, self.root, suite)

    def repositories(self) -> list[Repository]:
        """The releases published in the served tree."""
        suites = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
        return [repo for repo in map(self.repository, suites) if repo.published]

    def publish_top_level(self, suite: str) -> None:
        """Index ``suite``'s repository at the top of the tree too (for sources lines without a release)."""
        write_index(self.root, f"{suite}/pool", suite)

    def add(self, debs: Iterable[Path], top_level: str) -> list[str]:
        """Add .deb files to every published release (and the top level, ``top_level``'s); return their names."""
        debs = list(debs)
        repositories = self.repositories()
        if not repositories:
            raise LabError("no lab mirror to add packages to", hint="create the lab with: intagent lab up")
        for repo in repositories:
            names = repo.add(debs)
        self.publish_top_level(top_level)
        return names

    # -- serving ----------------------------------------------------------------------------------
    def serve(self, address: str, port: int, pid: int | None) -> int:
        """Make sure the HTTP server for the mirror runs on ``address:port``; return its pid."""
        if pid is not None and process_alive(pid, str(self.root)):
            return pid
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", MIRROR_SERVER, str(port), "--bind", address, "--directory",
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
