#!/usr/bin/env python3
"""Install node_exporter three ways on 1, 3 and 10 fresh lab hosts and print the wall times.

    .venv/bin/python benchmarks/install.py [--sizes 1,3,10]

1. `intagent install node_exporter` (plan, apply, verify; check-mode dry run included);
2. `ansible-playbook` running the same role's install entry point directly, with the same ansible.cfg;
3. a plain sequential shell script: per host, ssh; apt-get update; apt-get install; systemctl start.
Every measurement starts from hosts reset to the pristine base image. Run as root, on demand.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,3,10")
    args = parser.parse_args()
    from integration_agent.executor import ansible_env
    from integration_agent.lab import Lab
    from integration_agent.render import render
    from integration_agent.settings import load_settings

    lab = Lab(load_settings().lab)
    playbook = Path(tempfile.mkdtemp()) / "node_exporter.yml"
    playbook.write_text(render("role.yml.j2", role="node_exporter", entry="main", title="node_exporter main"))
    env = {**os.environ, **ansible_env()}
    print(f"{'hosts':>5}  {'intagent install':>17}  {'ansible-playbook':>17}  {'shell script':>13}  "
          f"{'intagent/ansible':>16}  {'intagent/shell':>14}")
    for size in [int(s) for s in args.sizes.split(",")]:
        lab.up(size)
        names = [f"lab{i}" for i in range(1, size + 1)]
        limit = ",".join(names)
        inventory = str(lab.inventory_path)

        lab.reset(names)
        t_intagent = timed([str(BIN / "intagent"), "install", "node_exporter", "-i", inventory, "-l", limit,
                            "--yes", "--json"])
        lab.reset(names)
        t_ansible = timed([str(BIN / "ansible-playbook"), "-i", inventory, "-l", limit, str(playbook)], env=env)
        lab.reset(names)
        script = "; ".join(
            " ".join(lab.ssh_command(h.address, "'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install"
                                                " -y -qq --no-install-recommends prometheus-node-exporter >/dev/null"
                                                " && systemctl start prometheus-node-exporter'"))
            for h in lab.hosts() if h.name in names)
        t_shell = timed(["bash", "-ec", script])
        print(f"{size:>5}  {t_intagent:>16.1f}s  {t_ansible:>16.1f}s  {t_shell:>12.1f}s  "
              f"{t_intagent / t_ansible:>16.2f}  {t_intagent / t_shell:>14.2f}")
        lab.reset(names)


if __name__ == "__main__":
    main()
