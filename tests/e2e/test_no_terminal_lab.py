"""node_exporter on lab3 driven as an AWX or CI job drives it (no terminal), and once from a terminal.

Only lab3 is reset and targeted (the `lab` fixture guarantees lab1 to lab3).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ssh
from tests.integration.test_no_terminal import STAMPED, Terminal, assert_plain, run_job

pytestmark = pytest.mark.lab
HOST = "lab3"


@pytest.fixture
def fresh_host(lab):
    lab.reset([HOST])
    return lab


def package_installed(lab, host: str) -> bool:
    return ssh(lab, host, "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii'").stdout.strip() == "1"


def test_install_and_uninstall_as_a_job(fresh_host, isolated_env):
    target = ("-i", str(fresh_host.inventory_path), "-l", HOST)
    proc = run_job("install", "node_exporter", *target, env=isolated_env, timeout=900)
    out, err = assert_plain(proc)
    assert proc.returncode == 0, (out, err)
    assert all(STAMPED.match(line) for line in err.splitlines()), err
    assert re.search(rf"apply +{HOST} +changed +Install the Debian package", err), err
    assert "install node_exporter: ok" in out and f"| {HOST} | installed |" in out
    assert package_installed(fresh_host, HOST)

    proc = run_job("install", "node_exporter", *target, "--json", env=isolated_env, timeout=900)
    out, err = assert_plain(proc)
    assert proc.returncode == 0, err
    report = json.loads(out)  # one JSON document and nothing else on stdout
    assert report["status"] == "ok" and report["hosts"][HOST]["status"] == "unchanged"
    assert err and all(STAMPED.match(line) for line in err.splitlines()), err

    proc = run_job("uninstall", "node_exporter", *target, env=isolated_env, timeout=900)
    out, err = assert_plain(proc)
    assert proc.returncode == 0, (out, err)
    assert f"| {HOST} | uninstalled |" in out
    assert not package_installed(fresh_host, HOST)


def test_a_failing_job_exits_with_the_documented_code(fresh_host, isolated_env):
    # No such version in the package mirror: apt fails on the host during apply, the host is rolled back.
    proc = run_job("install", "node_exporter", "-i", str(fresh_host.inventory_path), "-l", HOST,
                   "--var", "version=0.0.0-no-such-version", env=isolated_env, timeout=900)
    out, err = assert_plain(proc)
    assert proc.returncode == 11, (out, err)  # total failure: no targeted host ended as asked
    assert re.search(rf"apply +{HOST} +failed +Install the Debian package", err), err
    assert "install node_exporter: failed" in out and f"| {HOST} | rolled_back |" in out
    assert not package_installed(fresh_host, HOST)


def test_on_a_terminal_install_asks_before_applying(fresh_host, isolated_env):
    term = Terminal("install", "node_exporter", "-i", str(fresh_host.inventory_path), "-l", HOST, env=isolated_env)
    term.expect(rb"Apply to 1 host\(s\)\? \[y/N\]: ")
    assert b"would change: Install the Debian package" in term.screen  # the plan was shown first
    term.send(b"n\n")
    code, screen = term.wait()
    assert code == 0, screen
    assert "unchanged" in screen and re.search(rf"plan +{HOST} +", screen), screen  # the host is named
    assert not re.search(rf"apply +{HOST} +", screen), screen  # ... and nothing was applied to it
    assert not package_installed(fresh_host, HOST)
