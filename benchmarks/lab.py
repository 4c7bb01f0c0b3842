#!/usr/bin/env python3
"""Lab figures, run on demand as root (not part of the test suite); prints a table.

    .venv/bin/python benchmarks/lab.py [--cold] [--sizes 1,3,10]

--cold rebuilds the base image (tearing the lab down first) to time a cold build.
Measures: base image build (cold, warm), `intagent lab up` wall time for each size from nothing,
memory per host (sum of PSS of the host's processes), and `intagent --help` wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

INTAGENT = [sys.executable, "-m", "integration_agent"]
BIN = Path(sys.executable).parent / "intagent"


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def host_memory_mib(nspawn_pid: int) -> float:
    """PSS of nspawn plus every process in the host's PID namespace (found through its init)."""
    inits = [p for p in _pids() if _ppid(p) == nspawn_pid]
    if not inits:
        return 0.0
    namespace = os.readlink(f"/proc/{inits[0]}/ns/pid")
    total = pss_kib(nspawn_pid)
    for pid in _pids():
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") == namespace:
                total += pss_kib(pid)
        except OSError:
            continue
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a cold base image build")
    parser.add_argument("--sizes", default="1,3,10")
    args = parser.parse_args()
    from integration_agent.lab import Lab
    from integration_agent.settings import load_settings

    lab = Lab(load_settings().lab)
    base = lab.base(lab.settings.suite)
    rows: list[tuple[str, str]] = []
    if args.cold:
        lab.down()
        rows.append(("base image, cold build (debootstrap)", f"{base.ensure(rebuild=True):.1f} s"))
    started = time.perf_counter()
    base.ensure()
    rows.append(("base image, warm (cached)", f"{time.perf_counter() - started:.3f} s"))

    for size in [int(s) for s in args.sizes.split(",")]:
        lab.down()
        seconds = timed([*INTAGENT, "lab", "up", "--hosts", str(size)])
        rows.append((f"lab up, {size} host(s), from nothing", f"{seconds:.1f} s"))
        time.sleep(3)  # let the hosts settle before reading memory
        memory = [host_memory_mib(h.pid) for h in lab.hosts() if h.pid]
        rows.append((f"memory per host ({size} hosts, PSS)", f"{statistics.mean(memory):.1f} MiB"))

    helps = [timed([str(BIN), "--help"]) for _ in range(10)]
    rows.append(("intagent --help (mean of 10)", f"{statistics.mean(helps) * 1000:.0f} ms"))
    versions = [timed([str(BIN), "--version"]) for _ in range(10)]
    rows.append(("intagent --version (mean of 10)", f"{statistics.mean(versions) * 1000:.0f} ms"))

    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
