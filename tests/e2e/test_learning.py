"""A stopped package mirror: classified as repository unreachable, not rolled back, and learned."""

from __future__ import annotations

import json
import os
import signal

import pytest

from integration_agent.lab.system import wait_gone
from integration_agent.paths import KNOWLEDGE_DIR
from tests.conftest import residue, run_cli, snapshot, ssh

pytestmark = pytest.mark.lab


def stop_mirror(pid: int) -> None:
    """Stop the lab's package mirror and return once its process is gone (not after a guessed delay)."""
    os.kill(pid, signal.SIGTERM)
    assert wait_gone([pid], 10) == [], "the mirror did not stop"


def test_stopped_mirror_is_classified_and_becomes_knowledge(lab, isolated_env, tmp_path):
    lab.reset(["lab1"])
    state = json.loads(lab.state_file.read_text())
    learned = tmp_path / "learned" / "node_exporter"  # the learned_dir setting's folder of the integration
    in_repo = set(KNOWLEDGE_DIR.rglob("*.md"))
    stop_mirror(state["mirror_pid"])
    env = {**isolated_env, "INTAGENT_LEARN": "true", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "INTAGENT_LEARNED_DIR": str(tmp_path / "learned")}
    try:
        proc = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab1", "--json", env=env)
        assert proc.returncode == 11, proc.stdout + proc.stderr
        host = json.loads(proc.stdout)["hosts"]["lab1"]
        assert host["status"] == "failed" and not host["needs_rollback"], host
        assert host["changed"].get("recover") is None  # never rolled back: nothing was changed
        new = set(learned.glob("*.md"))
        assert len(new) == 1
        assert set(KNOWLEDGE_DIR.rglob("*.md")) == in_repo, "nothing is written into the package"
        note = next(iter(new)).read_text()
        assert "class: repository_unreachable" in note and "10.231.0.1" not in note
        shown = run_cli("show", "node_exporter", env=env)
        assert "known failures:" in shown.stdout and "repository_unreachable" in shown.stdout
        again = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab1", "--json", env=env)
        assert again.returncode == 11
        assert set(learned.glob("*.md")) == new, "the same cause is recorded once"
    finally:
        lab.up(3)  # restarts the mirror


def hold_package_lock(lab, host: str, seconds: int | None) -> None:
    """Hold apt's and dpkg's locks on ``host`` for ``seconds`` (None: until :func:`release_package_lock`),
    from a transient unit the way unattended-upgrades would."""
    sleep = f"time.sleep({seconds})" if seconds is not None else "signal.pause()"
    holder = ("systemd-run --unit=hold-apt-lock python3 -c \"import fcntl, signal, time; "
              "fs = [open(p, 'w') for p in ('/var/lib/dpkg/lock-frontend', '/var/lib/apt/lists/lock')]; "
              f"[fcntl.lockf(f, fcntl.LOCK_EX) for f in fs]; {sleep}\"")
    assert ssh(lab, host, holder).returncode == 0
    # Held once the holder has its locks: a lock test fails while the holder holds them.
    probe = ("python3 -c \"import fcntl; "
             "fcntl.lockf(open('/var/lib/dpkg/lock-frontend', 'w'), fcntl.LOCK_EX | fcntl.LOCK_NB)\"")
    for _ in range(100):
        if ssh(lab, host, probe).returncode != 0:
            return
    raise AssertionError("the lock holder never took the lock")


def release_package_lock(lab, host: str) -> None:
    ssh(lab, host, "systemctl stop hold-apt-lock; systemctl reset-failed hold-apt-lock")


def test_package_manager_lock_on_a_host_is_retried(lab, isolated_env):
    """The apt lock held longer than apt waits in the first attempt: the first apply fails, a retry goes
    through once the holder lets go."""
    lab.reset(["lab2"])
    hold_package_lock(lab, "lab2", 12)
    try:
        proc = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab2", "--json",
                       env={**isolated_env, "INTAGENT_ANSIBLE_PACKAGE_LOCK_TIMEOUT": "4"}, timeout=600)
    finally:
        release_package_lock(lab, "lab2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["lab2"]
    assert host["status"] == "installed"
    assert any("package_manager_lock is transient: retrying" in f for f in host["failures"]), host["failures"]


def test_package_manager_lock_held_past_every_retry_leaves_the_host_untouched(lab, isolated_env, figure):
    """The lock never freed: three bounded retries, then the host is failed with cause package_manager_lock,
    never rolled back (no attempt changed it) and left exactly as it was."""
    lab.reset(["lab2"])
    host = next(h for h in lab.hosts() if h.name == "lab2")
    hold_package_lock(lab, "lab2", None)
    before = snapshot(host)
    try:
        proc = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab2", "--json",
                       env={**isolated_env, "INTAGENT_ANSIBLE_PACKAGE_LOCK_TIMEOUT": "2"}, timeout=600)
        left = residue(before, host, lab.base(host.release).path)
    finally:
        release_package_lock(lab, "lab2")
    assert proc.returncode == 11, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    figure("5 apt lock held", "paths changed on the host", len(left))
    host = report["hosts"]["lab2"]
    retries = [f for f in host["failures"] if "package_manager_lock is transient: retrying" in f]
    figure("5 apt lock held", "apply attempts", len(retries) + 1)
    figure("5 apt lock held", "rollback steps run", int("recover" in host["changed"]))
    assert len(retries) == 3, host["failures"]
    assert host["failures"][-1] == "apply: package_manager_lock persisted through 4 attempts: giving up", host
    assert host["status"] == "failed" and host["cause"] == "package_manager_lock", host
    assert not host["needs_rollback"] and "recover" not in host["changed"], host
    assert left == [], left


def test_stopped_mirror_with_generated_playbooks_spends_no_model_call(lab, isolated_env, tmp_path):
    from tests.conftest import REPO
    from tests.fakes.openai_server import FakeOpenAI

    lab.reset(["lab3"])
    plan = (REPO / "tests" / "fixtures" / "llm" / "collectd_plan.json").read_text()
    with FakeOpenAI([{"content": plan}]) as server:
        env = {**isolated_env, "OPENAI_BASE_URL": server.base_url, "INTAGENT_LLM_MODEL": "recorded",
               "XDG_CACHE_HOME": str(tmp_path / "cache")}
        assert run_cli("generate", "collectd", env=env).returncode == 0
        assert len(server.chat_requests) == 1
        stop_mirror(json.loads(lab.state_file.read_text())["mirror_pid"])
        try:
            proc = run_cli("install", "collectd", "-i", str(lab.inventory_path), "-l", "lab3", "--generate",
                           "--json", env=env)
        finally:
            lab.up(3)  # restarts the mirror
        assert proc.returncode == 11, proc.stdout + proc.stderr
        host = json.loads(proc.stdout)["hosts"]["lab3"]
        assert host["status"] == "failed" and not host["needs_rollback"]
        assert len(server.chat_requests) == 1, "a repository failure is not sent back to the model"


def test_a_repository_answering_5xx_is_classified_and_leaves_the_host_untouched(lab, isolated_env, figure):
    import http.server
    import threading
    from urllib.parse import urlsplit

    lab.reset(["lab1"])
    answered: list[str] = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server API
            answered.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    stop_mirror(json.loads(lab.state_file.read_text())["mirror_pid"])
    where = urlsplit(lab.mirror_url)
    server = http.server.ThreadingHTTPServer((where.hostname, where.port), Unavailable)  # the mirror's address
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proc = run_cli("install", "node_exporter", "-i", str(lab.inventory_path), "-l", "lab1", "--json",
                       env=isolated_env)
    finally:
        server.shutdown()
        server.server_close()
        lab.up(3)  # restarts the mirror
    updates = sum(1 for path in answered if path.endswith("/InRelease"))  # one per apt update
    figure("05 repository 5xx", "requests the repository answered 503", len(answered))
    figure("05 repository 5xx", "apt updates tried", updates)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"]["lab1"]
    assert host["status"] == "failed" and host["cause"] == "repository_unreachable", host
    assert not host["needs_rollback"] and host["changed"].get("recover") is None  # nothing to roll back
    # Ansible's apt module retries a failing update itself (update_cache_retries, 5): bounded, and intagent
    # adds no retry of its own for a persistent failure.
    assert 1 <= updates <= 6, answered
    installed = ssh(lab, "lab1", "dpkg -l prometheus-node-exporter 2>/dev/null | grep -c '^ii'").stdout.strip()
    figure("05 repository 5xx", "hosts changed", int(installed or 0))
    assert installed == "0"
