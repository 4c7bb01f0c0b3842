"""Host locks: two processes never both hold a host, and a dead holder never blocks one."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integration_agent.errors import HostBusy
from integration_agent.locks import HostLocks

RACERS, ATTEMPTS = 6, 60


def _race(directory: str, log: str, racer: int, start: float) -> None:
    """Try to hold host ``web1`` ATTEMPTS times; record each time inside the lock."""
    locks = HostLocks(Path(directory))
    while time.time() < start:
        time.sleep(0.001)
    for attempt in range(ATTEMPTS):
        try:
            with locks.hold(["web1"], f"run-{racer}-{attempt}"):
                with open(log, "a") as fh:
                    fh.write(f"in {racer}\n")
                time.sleep(0.002)
                with open(log, "a") as fh:
                    fh.write(f"out {racer}\n")
        except HostBusy:
            pass
        time.sleep(random.random() / 500)  # up to 2 ms: the racers collide at varied moments


def test_racing_processes_never_both_hold_a_host(tmp_path: Path, figure) -> None:
    log = tmp_path / "log"
    log.touch()
    start = time.time() + 0.5
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_race, args=(str(tmp_path / "locks"), str(log), n, start)) for n in range(RACERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    lines = log.read_text().splitlines()
    assert len(lines) >= 2 * 20, "the lock must have been won many times"
    overlaps = sum(1 for first, second in zip(lines[::2], lines[1::2], strict=False) if second != "out " + first[3:])
    figure("16 racing runs", f"times two of {RACERS} processes held a host at once ({len(lines) // 2} wins)",
           overlaps)
    for first, second in zip(lines[::2], lines[1::2], strict=False):  # strictly: in A, out A, in B, out B, ...
        assert first.startswith("in ") and second == "out " + first[3:], lines
    assert not list((tmp_path / "locks").iterdir()), "every lock file is removed on release"


def test_a_busy_host_names_its_holder_and_nothing_is_held_half(tmp_path: Path) -> None:
    locks = HostLocks(tmp_path)
    with locks.hold(["web2"], "first-run"):
        assert locks.holder("web2")["run_id"] == "first-run"
        with (pytest.raises(HostBusy, match="host web2 is being changed by run first-run"),
              HostLocks(tmp_path).hold(["web1", "web2", "web3"], "second-run")):
            pass
        assert locks.holder("web1") is None, "all or nothing: web1 was released when web2 was busy"
    assert locks.holder("web2") is None


def test_a_killed_holder_leaves_the_host_free(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from integration_agent.locks import HostLocks\n"
            f"with HostLocks(Path({str(tmp_path)!r})).hold(['web1'], 'doomed'):\n"
            "    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    locks = HostLocks(tmp_path)
    assert locks.holder("web1")["pid"] == proc.pid
    with pytest.raises(HostBusy), locks.hold(["web1"], "too-early"):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert (tmp_path / "web1.lock").exists()  # the file is left behind, but nobody holds it
    assert locks.holder("web1") is None
    with locks.hold(["web1"], "after-the-crash"):
        assert json.loads((tmp_path / "web1.lock").read_text())["run_id"] == "after-the-crash"
