#!/usr/bin/env python3
"""Local versus streaming executor: `intagent install node_exporter` on fresh lab hosts, wall time each.

    .venv/bin/python benchmarks/executors.py [--sizes 1,3,5] [--repeat 2]

The streaming executor runs every playbook of the run (plan, apply, verify) through ansible-runner's
transmit -> worker -> process with a local `ansible-runner worker`; the difference is the protocol's cost
(packing the job, starting the worker, streaming events back). Hosts are reset to the pristine base image
before each measurement. Run as root, on demand.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def install(inventory: Path, hosts: list[str], executor: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_")}
    env.update(INTAGENT_ANSIBLE_EXECUTOR=executor, INTAGENT_LEARN="false")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "integration_agent", "install", "node_exporter", "-i", str(inventory),
                           "-l", ",".join(hosts), "--json"], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{executor} install failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3,5")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from integration_agent.lab import Lab
    from integration_agent.settings import load_settings

    lab = Lab(load_settings().lab)
    print(f"{'hosts':>5}  {'local':>8}  {'streaming':>9}  {'overhead':>8}")
    for size in [int(s) for s in args.sizes.split(",")]:
        lab.up(size)
        hosts = [f"lab{i}" for i in range(1, size + 1)]
        times: dict[str, list[float]] = {"local": [], "streaming": []}
        for _ in range(args.repeat):
            for executor in times:
                lab.reset(hosts)
                times[executor].append(install(lab.inventory_path, hosts, executor))
        local, streaming = (statistics.median(times[e]) for e in ("local", "streaming"))
        print(f"{size:>5}  {local:>7.1f}s  {streaming:>8.1f}s  {streaming - local:>+7.1f}s", flush=True)
    lab.reset([f"lab{i}" for i in range(1, max(int(s) for s in args.sizes.split(",")) + 1)])


if __name__ == "__main__":
    main()
