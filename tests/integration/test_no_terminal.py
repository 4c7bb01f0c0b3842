"""intagent in a job (AWX, CI, a pipe): it never prompts, writes plain lines, and exits with the documented code.

Each command runs as a job runs it: stdin an open pipe that nobody writes to (a prompt would wait for ever,
so a timeout means it prompted), stdout and stderr pipes, and an environment that asks for colour
(``TERM``, ``FORCE_COLOR``, ``GITHUB_ACTIONS``, ``ANSIBLE_FORCE_COLOR`` as AWX sets it, a narrow
``COLUMNS``). On a pseudo-terminal the same CLI does ask.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # everything but \t and \n; \x1b (escape) among them
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
JOB_ENV = {"TERM": "xterm-256color", "COLUMNS": "40", "FORCE_COLOR": "1", "GITHUB_ACTIONS": "true",
           "ANSIBLE_FORCE_COLOR": "1"}
# Left out of every run: NO_COLOR would make plain output trivially true, the license key would skip the prompt.
UNSET = ("NO_COLOR", "NEW_RELIC_LICENSE_KEY")


def cli_env(env: dict[str, str], extra: dict[str, str] = JOB_ENV) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_") and k not in UNSET}
    return {**base, **extra, **env}


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "integration_agent", *args]


def run_job(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``intagent ARGS`` with no terminal: stdin an open, silent pipe; fails if it waits past ``timeout``."""
    stdin_r, stdin_w = os.pipe()
    proc = subprocess.Popen(argv(*args), stdin=stdin_r, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=cli_env(env), cwd=REPO, start_new_session=True)
    os.close(stdin_r)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"intagent {' '.join(args)} still waited after {timeout}s (a prompt?): {out!r} {err!r}")
    finally:
        os.close(stdin_w)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_plain(proc: subprocess.CompletedProcess[bytes]) -> tuple[str, str]:
    """stdout and stderr hold no control character but newline and tab; returns them decoded."""
    for name, data in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        found = CONTROL.search(data)
        assert found is None, f"{name} has {found.group()!r} at {found.start()}: {data!r}"
    return proc.stdout.decode(), proc.stderr.decode()


def error_line(proc: subprocess.CompletedProcess[bytes], code: int) -> str:
    out, err = assert_plain(proc)
    assert proc.returncode == code, (proc.returncode, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("intagent: error: "), err
    return lines[0]


class Terminal:
    """``intagent ARGS`` on a pseudo-terminal (its controlling terminal); stdin or stdout may be a pipe instead."""

    def __init__(self, *args: str, env: dict[str, str], stdin_terminal: bool = True,
                 stdout_terminal: bool = True) -> None:
        self.master, slave = pty.openpty()
        stdin_r, self._stdin_w = os.pipe()  # the pipe, when stdin is not the terminal: open and silent
        out = slave if stdout_terminal else subprocess.PIPE
        self.proc = subprocess.Popen(argv(*args), stdin=slave if stdin_terminal else stdin_r, stdout=out, stderr=out,
                                     env=cli_env(env, {"TERM": "xterm-256color"}), cwd=REPO,
                                     start_new_session=True, preexec_fn=self._take_terminal)
        os.close(slave)
        os.close(stdin_r)
        self.screen = b""

    @staticmethod
    def _take_terminal() -> None:
        """In the child, a session leader by now: the pseudo-terminal becomes its controlling terminal."""
        fcntl.ioctl(0 if os.isatty(0) else 1, termios.TIOCSCTTY, 0)

    def _read(self, timeout: float) -> bool:
        """Add what the terminal shows within ``timeout`` to ``screen``; False once nothing holds it open."""
        if not select.select([self.master], [], [], timeout)[0]:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every process has closed the terminal
            return False
        self.screen += chunk
        return bool(chunk)

    def expect(self, pattern: bytes, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.screen):
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} never shown: {self.screen!r}"
            assert self._read(left), f"exited before showing {pattern!r}: {self.screen!r}"

    def send(self, text: bytes) -> None:
        os.write(self.master, text)

    def wait(self, timeout: float = 300) -> tuple[int, str]:
        """Exit code, and all it wrote: on the terminal, and on the pipes when stdout is not the terminal."""
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None:  # the terminal is read meanwhile: the program never blocks on it
                if time.monotonic() > deadline:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    pytest.fail(f"still running after {timeout}s (waiting on a prompt?): {self.screen!r}")
                self._read(0.1)
            while select.select([self.master], [], [], 0.2)[0] and self._read(0):
                pass
            piped = b"".join(part or b"" for part in self.proc.communicate())
        finally:
            os.close(self._stdin_w)
            os.close(self.master)
        return self.proc.returncode, (self.screen + piped).decode(errors="replace")


@pytest.fixture
def env(isolated_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**isolated_env, "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def unreachable(tmp_path: Path) -> Path:
    """An inventory whose one host refuses SSH at once (nothing listens on port 1): every run of it fails."""
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    return inv


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    inv = tmp_path / "broken.yml"
    inv.write_text("all:\n  hosts: [\n")
    return inv


@pytest.mark.parametrize("args, expect", [
    (["--help"], "Usage:"),
    (["install", "--help"], "--inventory"),
    (["list"], "| node_exporter"),
    (["show", "node_exporter"], "listen_address"),
    (["config"], "runs_dir"),
    (["runs", "list"], "| run"),
    (["knowledge", "search", "license key"], "infra_agent/"),
])
def test_read_only_commands_are_plain(args, expect, env):
    proc = run_job(*args, env=env)
    out, err = assert_plain(proc)
    assert proc.returncode == 0, err
    assert expect in out


def test_lab_status_is_plain(env):
    proc = run_job("lab", "status", env=env)
    out, err = assert_plain(proc)
    from tests.conftest import _lab_possible

    reason = _lab_possible()
    if reason is None:  # the lab can run here: a table of its hosts, or the word that there are none
        assert proc.returncode == 0, err
        assert "| host" in out or "no lab hosts" in out, out
    else:  # exit 6, naming what is missing
        assert proc.returncode == 6, err
        assert "intagent: error: " in err and ("root" in err or "missing tools" in err), err


def test_usage_error_is_plain_and_exit_2(env):
    proc = run_job("ping", env=env)
    _out, err = assert_plain(proc)
    assert proc.returncode == 2
    assert "Missing option '--inventory'" in err


@pytest.mark.parametrize("action", ["plan", "install"])
def test_bad_inventory_is_exit_4(action, broken, env):
    assert "broken.yml" in error_line(run_job(action, "node_exporter", "-i", str(broken), env=env), 4)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_missing_secret_is_exit_5_naming_the_variable_never_a_prompt(json_flag, unreachable, env):
    proc = run_job("install", "infra_agent", "-i", str(unreachable), *json_flag, env=env)
    line = error_line(proc, 5)
    assert "NEW_RELIC_LICENSE_KEY" in line and "license_key" in line


def test_failing_job_exits_11_with_plain_progress_and_report(unreachable, env):
    proc = run_job("install", "node_exporter", "-i", str(unreachable), env=env)
    out, err = assert_plain(proc)
    assert proc.returncode == 11, (out, err)  # total failure: no targeted host ended as asked
    assert err.splitlines() and all(STAMPED.match(line) for line in err.splitlines()), err
    assert any(line.endswith(" plan: started") for line in err.splitlines())
    assert re.search(r"plan +web1 +unreachable", err)
    assert "install node_exporter: failed" in out and "| web1 | unreachable |" in out

    proc = run_job("install", "node_exporter", "-i", str(unreachable), "--json", env=env)
    out, err = assert_plain(proc)
    assert proc.returncode == 11
    report = json.loads(out)  # exactly one JSON document, nothing else
    assert report["status"] == "failed" and report["hosts"]["web1"]["status"] == "unreachable"
    assert re.search(r"plan +web1 +unreachable", err)  # progress still goes to stderr

    listed = run_job("runs", "list", env=env)
    assert listed.returncode == 0 and report["run_id"] in assert_plain(listed)[0]
    shown = run_job("runs", "show", report["run_id"], env=env)
    assert shown.returncode == 0 and "web1: unreachable" in assert_plain(shown)[0]


def test_on_a_terminal_a_missing_secret_is_asked_for(unreachable, env):
    term = Terminal("install", "infra_agent", "-i", str(unreachable), env=env)
    term.expect(rb"license_key \(.*\): ")
    term.send(b"typed-on-the-terminal\n")
    code, screen = term.wait()
    assert code == 11, screen  # the answer was taken: the run went on to the (unreachable) host
    assert "typed-on-the-terminal" not in screen  # hidden input
    assert "web1" in screen


def test_a_broken_inventory_fails_before_any_prompt(broken, env):
    """The inventory is read first (it may hold the secret): a broken one is named, nothing is asked."""
    term = Terminal("install", "infra_agent", "-i", str(broken), env=env)
    code, screen = term.wait(timeout=60)
    assert code == 4, screen
    assert "broken.yml" in screen and "license_key" not in screen


@pytest.mark.parametrize("stdin_terminal, stdout_terminal", [(True, False), (False, True)])
def test_half_a_terminal_never_prompts(stdin_terminal, stdout_terminal, unreachable, env):
    term = Terminal("install", "infra_agent", "-i", str(unreachable), env=env, stdin_terminal=stdin_terminal,
                    stdout_terminal=stdout_terminal)
    code, screen = term.wait(timeout=60)
    assert code == 5, screen
    assert "NEW_RELIC_LICENSE_KEY" in screen


def test_become_and_vault_passwords_are_asked_on_a_terminal_only(unreachable, env):
    term = Terminal("install", "node_exporter", "-i", str(unreachable), "-K", "--yes", env=env)
    term.expect(rb"BECOME password: ")
    term.send(b"typed-become-password\n")
    code, screen = term.wait()
    assert code == 11, screen  # the run went on, to the unreachable host
    assert "typed-become-password" not in screen

    proc = run_job("install", "node_exporter", "-i", str(unreachable), "-K", env=env)
    assert proc.returncode == 5 and "INTAGENT_BECOME_PASSWORD" in proc.stderr.decode(), proc.stderr
    proc = run_job("install", "node_exporter", "-i", str(unreachable), "--ask-vault-pass", env=env)
    assert proc.returncode == 5 and "INTAGENT_VAULT_PASSWORD" in proc.stderr.decode(), proc.stderr
    # The operator's own ansible.cfg asking for the become password counts as -K.
    cfg = unreachable.parent / "ansible.cfg"
    cfg.write_text("[privilege_escalation]\nbecome_ask_pass = True\n")
    proc = run_job("install", "node_exporter", "-i", str(unreachable), env={**env, "ANSIBLE_CONFIG": str(cfg)})
    assert proc.returncode == 5 and "INTAGENT_BECOME_PASSWORD" in proc.stderr.decode(), proc.stderr
    proc = run_job("install", "node_exporter", "-i", str(unreachable), "--json",
                   env={**env, "ANSIBLE_CONFIG": str(cfg), "INTAGENT_BECOME_PASSWORD": "from-env"})
    assert proc.returncode == 11 and b"from-env" not in proc.stdout + proc.stderr
