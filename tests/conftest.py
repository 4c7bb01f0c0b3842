"""Shared fixtures: the real CLI as a subprocess, isolated settings, and the lab of test hosts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``intagent ARGS`` exactly as a user would, in a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_")}
    merged = {**base, **(env or {})}
    # This checkout's package, whatever ``cwd`` is: a venv shared with another checkout (a git worktree)
    # may hold an editable install of that one, which would answer instead.
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), merged.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "integration_agent", *args], capture_output=True, text=True,
                          env=merged, cwd=cwd or REPO, timeout=timeout, check=False)


def local_and_closed_inventory(tmp_path: Path) -> Path:
    """Two hosts for runs on the controller: ``here`` (connection local; plays must install nothing) and
    ``closed``, a loopback port nothing listens on (always unreachable)."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  hosts:\n"
        "    here:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n"
        "    closed:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      ansible_user: nobody\n")
    return inv


def ssh(lab, host: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as root on the lab host named ``host``."""
    address = next(h.address for h in lab.hosts() if h.name == host)
    return subprocess.run(lab.ssh_command(address, command), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)


# Paths a lab host changes by itself (its journal, the test's SSH access): left out of overlay comparisons.
SNAPSHOT_SKIP = ("/var/log/journal", "/root/.ssh", "/home/ops/.ssh")


def snapshot(host):
    """The overlay upper layer of lab host ``host`` (a ``lab.hosts()`` entry), read from outside it."""
    from integration_agent.lab.overlay import Snapshot

    return Snapshot.take(Path(host.dir) / "upper", SNAPSHOT_SKIP)


def residue(before, host, lower: Path) -> list[str]:
    """What differs on ``host`` against the snapshot ``before``, bookkeeping aside."""
    from integration_agent.audit import BOOKKEEPING
    from integration_agent.catalog import within
    from integration_agent.lab.overlay import diff

    return [str(c) for c in diff(before, snapshot(host), lower) if not any(within(c.path, p) for p in BOOKKEEPING)]


def node_exporter_metrics(lab, host: str) -> str:
    """What node_exporter serves on the host's 127.0.0.1:9100/metrics (empty when nothing answers)."""
    return ssh(lab, host, "python3 -c \"import urllib.request as u; "
                          "print(u.urlopen('http://127.0.0.1:9100/metrics', timeout=5).read().decode())\"").stdout


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment whose runs, config and learned notes live under tmp_path, with no INTAGENT_* leaking in."""
    for name in list(os.environ):
        if name.startswith("INTAGENT_"):
            monkeypatch.delenv(name)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_DATA_HOME": str(tmp_path / "data"),  # learned notes: never the user's, never the repository's
           "INTAGENT_LEARN": "false"}  # tests that learn say so
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(params=["mitogen", "ansible"])
def strategy_env(request, isolated_env) -> dict[str, str]:
    """``isolated_env`` with intagent's default strategy (Mitogen's), then with Ansible's own
    (``ansible.mitogen: false``): every curated role is proven under both."""
    if request.param == "ansible":
        return {**isolated_env, "INTAGENT_ANSIBLE_MITOGEN": "false"}
    return isolated_env


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``4m``) mounted at ``folder/disk`` for the block: a disk that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    point = folder / "disk"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "intagent-test-full", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "--lazy", str(point)], check=False)


def _lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    import shutil

    from integration_agent.lab.system import REQUIRED_TOOLS

    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    return f"missing lab tools: {', '.join(missing)}" if missing else None


@pytest.fixture(scope="session")
def lab_settings():
    from integration_agent.settings import load_settings

    reason = _lab_possible()
    if reason:
        pytest.skip(reason)
    return load_settings(env={}).lab


@pytest.fixture
def lab(lab_settings) -> Iterator[object]:
    """A running lab of at least 3 hosts (``up`` is idempotent: cheap when it already runs)."""
    from integration_agent.lab import Lab

    the_lab = Lab(lab_settings)
    the_lab.up(3)
    yield the_lab


# -- reliability figures -------------------------------------------------------------------------------
# The reliability checks record what they measured (hosts affected, residue, orphans, canary hits, time to
# stop); the session prints one line per figure at its end, and writes them as JSON to the file named by
# RELIABILITY_FIGURES_FILE (benchmarks/reliability.py runs the checks and prints that table).
FIGURES: list[dict[str, object]] = []


@pytest.fixture
def figure(request: pytest.FixtureRequest):
    """``figure(check, what, value)``: record one figure of a reliability check (see docs/reliability.md)."""
    def record(check: str, what: str, value: object) -> None:
        FIGURES.append({"check": check, "what": what, "value": value, "test": request.node.nodeid})
    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for row in sorted(FIGURES, key=lambda r: (str(r["check"]), str(r["what"]))):
        terminalreporter.write_line(f"{row['check']:<28} {row['what']:<66} {row['value']}")
    out = os.environ.get("RELIABILITY_FIGURES_FILE")
    if out:
        import json

        Path(out).write_text(json.dumps(FIGURES, indent=2, default=str))
