#!/usr/bin/env python3
"""Where the time of one intagent install goes, on fresh lab hosts; run on demand as root, prints figures.

    .venv/bin/python benchmarks/profile.py [--hosts 10] [--set INTAGENT_ANSIBLE_MITOGEN=false ...]

Resets lab1..labN to the pristine base image, runs `intagent install node_exporter --yes --json` on them
and prints:

- the wall time, the CPU time of the whole machine over it (the lab's hosts share the controller's CPUs),
  that of intagent with every process it started (ansible-playbook, its workers, ssh, Mitogen) and that of
  the lab's hosts (every process in them);
- each playbook's plays and tasks in order, with the wall time from one task's start to the next
  (from the `created` time of the run's events), labelled with the stage each belongs to, and the CPU time
  the hosts and the whole machine spent over it.

The hosts' CPU is read from a cgroup-v1 `cpuacct` group the script puts every process of the hosts in; on a
machine without that controller those columns say n/a.

`--set NAME=VALUE` adds an intagent setting to the run's environment (for example the Ansible strategy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MARKS = ("playbook_on_play_start", "playbook_on_task_start", "playbook_on_stats")
HOSTS_GROUP = Path("/sys/fs/cgroup/cpuacct/intagent-profile-hosts")
SAMPLE_EVERY = 0.05  # seconds between two readings of the CPU counters


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent (every core, idle and I/O wait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def account_hosts(netns: list[str]) -> Path | None:
    """Put every process of the hosts (by network namespace) into one cpuacct group and return its usage file
    (nanoseconds), or None without a cgroup-v1 cpuacct controller. What a host starts later stays in it."""
    if not HOSTS_GROUP.parent.is_dir():
        return None
    HOSTS_GROUP.mkdir(exist_ok=True)
    for name in netns:
        for pid in subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split():
            with contextlib.suppress(OSError):  # gone meanwhile
                (HOSTS_GROUP / "cgroup.procs").write_text(pid)
    return HOSTS_GROUP / "cpuacct.usage"


class Sampler(threading.Thread):
    """Reads (time, hosts' CPU, machine CPU) every SAMPLE_EVERY seconds until stopped."""

    def __init__(self, usage: Path | None) -> None:
        super().__init__(daemon=True)
        self.usage, self.done = usage, threading.Event()
        self.samples: list[tuple[float, float, float]] = []

    def read(self) -> tuple[float, float, float]:
        hosts = int(self.usage.read_text()) / 1e9 if self.usage else float("nan")
        return time.time(), hosts, machine_cpu()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(self.read())
            self.done.wait(SAMPLE_EVERY)
        self.samples.append(self.read())

    def between(self, start: float, end: float) -> tuple[float, float]:
        """CPU seconds of the hosts and of the machine from ``start`` to ``end`` (epoch seconds)."""
        def at(when: float) -> tuple[float, float, float]:
            return min(self.samples, key=lambda sample: abs(sample[0] - when))
        first, last = at(start), at(end)
        return last[1] - first[1], last[2] - first[2]


def seconds_or_na(value: float) -> str:
    """CPU seconds, or n/a where they were not measured (NaN: no cpuacct controller)."""
    return "n/a" if math.isnan(value) else f"{value:.2f} s"


def timeline(events: Path) -> list[tuple[float, float, str, str]]:
    """(start, seconds to the next mark, stage, name) for each play start, task start and the final stats."""
    marks: list[tuple[float, str, str]] = []
    last = 0.0
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if not event.get("created"):
            continue
        when = datetime.fromisoformat(event["created"].replace("Z", "+00:00")).timestamp()
        last = max(last, when)
        if event["event"] in MARKS:
            data = event.get("event_data") or {}
            name = data.get("task") or data.get("play") or "(stats)"
            if event["event"] == "playbook_on_play_start":
                name = f"play: {name}"
            marks.append((when, event.get("stage", ""), name))
    return [(when, nxt[0] - when, stage, name)
            for (when, stage, name), nxt in zip(marks, [*marks[1:], (last, "", "")], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    from integration_agent.lab import Lab
    from integration_agent.settings import load_settings

    lab = Lab(load_settings(env={}).lab)
    lab.up(args.hosts)
    names = [f"lab{i}" for i in range(1, args.hosts + 1)]
    lab.reset(names)
    usage = account_hosts([host.netns for host in lab.hosts() if host.name in names])
    with tempfile.TemporaryDirectory() as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAGENT_", "ANSIBLE_"))}
        env.update(INTAGENT_LEARN="false", INTAGENT_RUNS_DIR=scratch, **dict(s.split("=", 1) for s in args.set))
        sampler = Sampler(usage)
        sampler.start()
        own, started = children_cpu(), time.perf_counter()
        proc = subprocess.run([str(BIN / "intagent"), "install", "node_exporter", "-i", str(lab.inventory_path),
                               "-l", ",".join(names), "--yes", "--json"], env=env, cwd=REPO, capture_output=True,
                              text=True)
        wall = time.perf_counter() - started
        own = children_cpu() - own
        sampler.done.set()
        sampler.join()
        (_, hosts_before, cpu_before), (_, hosts_after, cpu_after) = sampler.samples[0], sampler.samples[-1]
        hosts, cpu = hosts_after - hosts_before, cpu_after - cpu_before
        if proc.returncode != 0:
            raise SystemExit(f"install failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        print(f"{args.hosts} host(s): wall {wall:.1f} s; CPU: machine {cpu:.1f} s, intagent and its processes "
              f"{own:.1f} s, the hosts {seconds_or_na(hosts)} ({', '.join(args.set) or 'defaults'})")
        [events] = Path(scratch).glob("*/events.jsonl")
        print(f"{'wall':>9} {'hosts CPU':>10} {'machine CPU':>12}  stage   play or task")
        for start, seconds, stage, name in timeline(events):
            on_hosts, on_machine = sampler.between(start, start + seconds)
            print(f"{seconds:7.2f} s {seconds_or_na(on_hosts):>10} {on_machine:10.2f} s  {stage:<7} {name}")


if __name__ == "__main__":
    main()
