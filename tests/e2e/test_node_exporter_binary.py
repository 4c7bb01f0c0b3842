"""node_exporter's binary method: a release tarball from a mirror, checked against sha256sums.txt.

GitHub is not reachable here, so the test builds a stand-in release (the Debian package's binary in the
upstream tarball layout) and serves it from the controller's bridge address, as an air-gapped mirror would.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import tarfile
import threading
from functools import partial

import pytest

from tests.conftest import run_cli, ssh

pytestmark = pytest.mark.lab
VERSION = "1.5.0"



@pytest.fixture
def release_mirror(lab, tmp_path):
    """A directory laid out like the upstream release page, served over HTTP on the lab bridge."""
    deb = next((lab.settings.cache_dir / f"debs-{lab.settings.suite}").glob("prometheus-node-exporter_*.deb"))
    unpacked = tmp_path / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    release = tmp_path / "www" / f"v{VERSION}"
    release.mkdir(parents=True)
    name = f"node_exporter-{VERSION}.linux-amd64"
    tarball = release / f"{name}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(unpacked / "usr/bin/prometheus-node-exporter", arcname=f"{name}/node_exporter")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    (release / "sha256sums.txt").write_text(f"{digest}  {tarball.name}\n")
    gateway = lab.mirror_url.split("//")[1].split(":")[0]
    server = http.server.ThreadingHTTPServer((gateway, 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                   directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lab.reset(["lab1"])
    yield f"http://{gateway}:{server.server_address[1]}", release
    server.shutdown()
    server.server_close()


def test_binary_install_checks_the_sha256_and_uninstalls_cleanly(lab, release_mirror, strategy_env):
    isolated_env = strategy_env  # with Mitogen's strategy (the default), then with Ansible's
    base, _release = release_mirror
    url = base + "/v{version}/node_exporter-{version}.linux-{arch}.tar.gz"
    args = ["-i", str(lab.inventory_path), "-l", "lab1", "--var", "install_method=binary", "--var",
            f"version={VERSION}", "--var", f"binary_url={url}", "--json"]
    proc = run_cli("install", "node_exporter", *args, env=isolated_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["lab1"]
    assert host["status"] == "installed" and host["evidence"]["service"] == "node_exporter"
    assert host["evidence"]["version"] == VERSION
    unit = ssh(lab, "lab1", "systemctl show -p User --value node_exporter; stat -c %U /usr/local/bin/node_exporter")
    assert unit.stdout.split() == ["node_exporter", "root"]
    for action in ("install", "plan"):  # idempotent: a second install and a plan change nothing
        again = run_cli(action, "node_exporter", *args, env=isolated_env)
        assert again.returncode == 0, again.stdout + again.stderr
        host = json.loads(again.stdout)["hosts"]["lab1"]
        assert host["status"] == "unchanged" and not sum(host["changed"].values()), (action, host)

    removed = run_cli("uninstall", "node_exporter", *args, env=isolated_env)
    assert removed.returncode == 0, removed.stderr
    left = ssh(lab, "lab1", "ls /usr/local/bin/node_exporter /etc/systemd/system/node_exporter.service "
                            "/var/lib/node_exporter 2>/dev/null; getent passwd node_exporter; ss -Hltn 'sport = :9100'")
    assert left.stdout.strip() == ""
    twice = run_cli("uninstall", "node_exporter", *args, env=isolated_env)
    assert twice.returncode == 0 and not sum(json.loads(twice.stdout)["hosts"]["lab1"]["changed"].values())


def test_a_tarball_that_does_not_match_its_checksum_is_refused(lab, release_mirror, isolated_env):
    base, release = release_mirror
    (release / "sha256sums.txt").write_text(f"{'0' * 64}  node_exporter-{VERSION}.linux-amd64.tar.gz\n")
    url = base + "/v{version}/node_exporter-{version}.linux-{arch}.tar.gz"
    proc = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab1", "--var",
                   "install_method=binary", "--var", f"version={VERSION}", "--var", f"binary_url={url}", "--json",
                   env=isolated_env)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["lab1"]
    assert host["status"] == "rolled_back"
    assert any("checksum" in f.lower() for f in host["failures"]), host["failures"]
    assert ssh(lab, "lab1", "ls /usr/local/bin/node_exporter 2>/dev/null").stdout.strip() == ""
