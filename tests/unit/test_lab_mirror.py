"""The lab mirror's index (by hash, rewritten only when it changes) and its HTTP server (never a 304)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from email.utils import formatdate

import pytest

from integration_agent.lab import mirror
from integration_agent.lab.system import MIRROR_SERVER
from tests.fixtures.debs import empty_deb

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("dpkg-scanpackages") is None,
                                reason="needs dpkg-deb and dpkg-scanpackages (dpkg-dev)")


def _listed(release: str) -> dict[str, str]:
    """{file name: sha256} as the Release lists them."""
    return {line.split()[2]: line.split()[0] for line in release.splitlines() if line.startswith(" ")}


def test_each_release_names_lists_found_by_hash_and_older_generations_stay(tmp_path):
    empty_deb(tmp_path / "pool", "mirrortest", "1.0")
    mirror.write_index(tmp_path, "pool", "bookworm")
    first = (tmp_path / "Release").read_text()
    assert "Acquire-By-Hash: yes" in first
    for name, digest in _listed(first).items():
        data = (tmp_path / "by-hash/SHA256" / digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest and data == (tmp_path / name).read_bytes()
    assert b"Version: 1.0" in (tmp_path / "Packages").read_bytes()

    empty_deb(tmp_path / "pool", "mirrortest", "2.0")
    mirror.write_index(tmp_path, "pool", "bookworm")
    second = (tmp_path / "Release").read_text()
    assert _listed(second) != _listed(first)
    assert b"Version: 2.0" in (tmp_path / "Packages").read_bytes()
    # A host that read the first Release just before the rewrite still finds the lists it names.
    for digest in [*_listed(first).values(), *_listed(second).values()]:
        assert (tmp_path / "by-hash/SHA256" / digest).is_file()


def test_an_unchanged_index_is_left_alone(tmp_path):
    empty_deb(tmp_path / "pool", "mirrortest", "1.0")
    mirror.write_index(tmp_path, "pool", "bookworm")
    release = tmp_path / "Release"
    before = (release.read_bytes(), release.stat().st_mtime_ns)
    time.sleep(1.1)  # a rewrite would carry a later Date
    mirror.write_index(tmp_path, "pool", "bookworm")
    assert (release.read_bytes(), release.stat().st_mtime_ns) == before


def test_an_index_without_lists_by_hash_is_rewritten_with_them(tmp_path):
    empty_deb(tmp_path / "pool", "mirrortest", "1.0")
    mirror.write_index(tmp_path, "pool", "bookworm")
    release = tmp_path / "Release"
    release.write_text(release.read_text().replace("Acquire-By-Hash: yes\n", ""))  # as written before by-hash
    mirror.write_index(tmp_path, "pool", "bookworm")
    assert "Acquire-By-Hash: yes" in release.read_text()


def test_old_generations_are_pruned(tmp_path):
    for n in range(mirror.BY_HASH_KEPT + 3):
        empty_deb(tmp_path / "pool", "mirrortest", f"1.{n}")
        mirror.write_index(tmp_path, "pool", "bookworm")
    kept = list((tmp_path / "by-hash/SHA256").iterdir())
    assert len(kept) == 2 * mirror.BY_HASH_KEPT
    current = _listed((tmp_path / "Release").read_text()).values()
    assert set(current) <= {p.name for p in kept}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_server_answers_in_full_when_asked_if_modified_since(tmp_path):
    (tmp_path / "Release").write_text("generation 1\n")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", MIRROR_SERVER, str(port), "--bind", "127.0.0.1",
                               "--directory", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            assert time.monotonic() < deadline and server.poll() is None, "the mirror server did not start"
            time.sleep(0.05)
        # Rewritten in the second the host last read it: plain http.server would answer 304 here.
        (tmp_path / "Release").write_text("generation 2\n")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/Release",
                                         headers={"If-Modified-Since": formatdate(time.time() + 5, usegmt=True)})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
            assert answer.read() == b"generation 2\n"
    finally:
        server.terminate()
        server.wait(timeout=10)
