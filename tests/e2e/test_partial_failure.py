"""Two of five hosts fail apply: a broken package is served to those two only. Both are rolled back and
left as they were (measured on their overlay roots), the other three are installed and never touched by
recovery."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest

from integration_agent.lab.mirror import write_index
from tests.conftest import residue, run_cli, snapshot, ssh

pytestmark = pytest.mark.lab
HOSTS = ["lab1", "lab2", "lab3", "lab4", "lab5"]
BROKEN = ["lab2", "lab4"]
SOURCE = "/etc/apt/sources.list.d/intagent-test-broken.list"


def broken_package(out: Path) -> Path:
    """prometheus-node-exporter 99.0.0, whose postinst fails: apt installs it and dpkg cannot configure it."""
    root = out / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: prometheus-node-exporter\nVersion: 99.0.0-broken\nArchitecture: all\n"
        "Maintainer: intagent tests <tests@intagent.invalid>\n"
        "Description: BROKEN stand-in built by intagent's tests - its postinst always fails\n")
    postinst = root / "DEBIAN" / "postinst"
    postinst.write_text("#!/bin/sh\necho 'stand-in: configuration fails on purpose' >&2\nexit 1\n")
    postinst.chmod(0o755)
    pool = out / "repo" / "pool"
    pool.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(pool / "broken.deb")], check=True,
                   capture_output=True)
    write_index(out / "repo", "pool", "broken")
    return out / "repo"


@pytest.fixture
def five(lab, tmp_path):
    lab.up(len(HOSTS))
    lab.reset(HOSTS)
    repo = broken_package(tmp_path)
    gateway = lab.mirror_url.split("//")[1].split(":")[0]
    server = http.server.ThreadingHTTPServer((gateway, 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                   directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for host in BROKEN:  # these two, and only these, see the broken version
        line = f"deb [trusted=yes] http://{gateway}:{server.server_address[1]}/ ./"
        assert ssh(lab, host, f"echo '{line}' > {SOURCE}").returncode == 0
    yield lab
    server.shutdown()
    server.server_close()


def test_two_of_five_hosts_fail_apply_and_only_they_are_rolled_back(five, isolated_env, figure):
    hosts = {h.name: h for h in five.hosts()}
    lower = five.base(hosts["lab2"].release).path
    before = {name: snapshot(hosts[name]) for name in BROKEN}
    proc = run_cli("install", "node_exporter", "-i", str(five.inventory_path), "-l", ",".join(HOSTS), "--json",
                   env=isolated_env)
    assert proc.returncode == 10, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    statuses = {h: r["status"] for h, r in report["hosts"].items()}
    figure("02 two of five fail apply", "hosts rolled back", sum(s == "rolled_back" for s in statuses.values()))
    assert statuses == {"lab1": "installed", "lab2": "rolled_back", "lab3": "installed", "lab4": "rolled_back",
                        "lab5": "installed"}
    for host in BROKEN:  # failed in apply (dpkg could not configure the package), then rolled back
        assert any(f.startswith("apply: ") for f in report["hosts"][host]["failures"]), report["hosts"][host]
        assert report["hosts"][host]["changed"].get("recover"), report["hosts"][host]
    events = [json.loads(line) for line in (Path(report["run_dir"]) / "events.jsonl").read_text().splitlines()]
    recovered = {(e.get("event_data") or {}).get("host") for e in events if e.get("stage") == "recover"} - {None}
    figure("02 two of five fail apply", "good hosts touched by recovery", len(recovered - set(BROKEN)))
    assert recovered == set(BROKEN)
    left = {name: residue(before[name], hosts[name], lower) for name in BROKEN}
    figure("02 two of five fail apply", "residue on the rolled-back hosts (paths)", sum(map(len, left.values())))
    assert left == {name: [] for name in BROKEN}
    for host in ("lab1", "lab3", "lab5"):
        assert ssh(five, host, "systemctl is-active prometheus-node-exporter").stdout.strip() == "active"
    for host in BROKEN:
        ssh(five, host, f"rm -f {SOURCE}")
