#!/usr/bin/env python3
"""Install node_exporter on fresh lab hosts every way an operator could, and print the wall times.

    .venv/bin/python benchmarks/install.py [--sizes 1,10,50] [--only COLUMN,...] [--streaming]

Columns (each measured on hosts reset to the pristine base image first):

- intagent           `intagent install node_exporter --yes --json`: dry run (check mode), apply, verify, with
                     intagent's defaults (Mitogen's strategy, without its CPU pinning)
- intagent -mitogen  the same with Ansible's own strategy (`ansible.mitogen: false`)
- intagent stream    the same as intagent through the streaming executor (a local `ansible-runner worker`;
                     --streaming)
- ap intagent.cfg    one `ansible-playbook` of a plain play that applies the role, with intagent's ansible.cfg
- ap stock           the same play with Ansible's stock settings (no ansible.cfg: forks 5, no pipelining)
- ap+mitogen         the same play, intagent's ansible.cfg and Mitogen's own strategy (as Mitogen ships it)
- shell seq          a shell loop, one host after another: ssh; apt-get update; apt-get install; start
- shell par          the same commands on every host at once (close to what the hosts themselves need)

The ratios compare intagent (with its defaults) to `ansible-playbook` with stock settings and to both
shell columns. The shell and plain playbook columns do no dry run, no verification and no rollback.
Run as root, on demand; the lab is grown to the largest size asked for.
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
PLAY = """\
- name: Install node_exporter
  hosts: all
  become: true
  roles:
    - node_exporter
"""
SHELL = ("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
         "prometheus-node-exporter >/dev/null && systemctl start prometheus-node-exporter")
COLUMNS = ("intagent", "intagent -mitogen", "intagent stream", "ap intagent.cfg", "ap stock", "ap+mitogen",
           "shell seq", "shell par")


def timed(args: list[str], env: dict[str, str], cwd: Path = REPO) -> float:
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def clean_env() -> dict[str, str]:
    """This process's environment without intagent's or Ansible's settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("INTAGENT_", "ANSIBLE_"))}


class Bench:
    def __init__(self, lab, names: list[str], scratch: Path) -> None:
        import ansible_mitogen

        self.lab, self.names, self.scratch = lab, names, scratch
        self.inventory = str(lab.inventory_path)
        self.limit = ",".join(names)
        self.play = scratch / "node_exporter.yml"
        self.play.write_text(PLAY)
        # Mitogen's own strategy, as a user who installs Mitogen runs it.
        self.mitogen = {"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"),
                        "ANSIBLE_STRATEGY": "mitogen_linear"}

    def measure(self, column: str) -> float:
        self.lab.reset(self.names)
        return getattr(self, "_" + column.replace(" ", "_").replace("+", "_").replace(".", "_").replace("-", "_"))()

    def _intagent(self, **settings: str) -> float:
        env = {**clean_env(), "INTAGENT_LEARN": "false", "INTAGENT_RUNS_DIR": str(self.scratch / "runs"), **settings}
        return timed([str(BIN / "intagent"), "install", "node_exporter", "-i", self.inventory, "-l", self.limit,
                      "--yes", "--json"], env)

    def _intagent__mitogen(self) -> float:
        return self._intagent(INTAGENT_ANSIBLE_MITOGEN="false")

    def _intagent_stream(self) -> float:
        return self._intagent(INTAGENT_ANSIBLE_EXECUTOR="streaming")

    def _playbook(self, config: bool, extra: dict[str, str] | None = None) -> float:
        # The lab's host keys are new on every reset: stock settings would refuse them (a fleet's known_hosts
        # holds them); not checking them costs nothing in time.
        env = {**clean_env(), "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_HOST_KEY_CHECKING": "False",
               **(extra or {})}
        if config:
            env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
        # Run from the scratch folder: no ./ansible.cfg there, so the stock run reads none.
        return timed([str(BIN / "ansible-playbook"), "-i", self.inventory, "-l", self.limit, str(self.play)], env,
                     cwd=self.scratch)

    def _ap_intagent_cfg(self) -> float:
        return self._playbook(True)

    def _ap_stock(self) -> float:
        return self._playbook(False)

    def _ap_mitogen(self) -> float:
        return self._playbook(True, self.mitogen)

    def _commands(self) -> list[list[str]]:
        return [self.lab.ssh_command(h.address, SHELL) for h in self.lab.hosts() if h.name in self.names]

    def _shell_seq(self) -> float:
        started = time.perf_counter()
        for command in self._commands():
            subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started

    def _shell_par(self) -> float:
        started = time.perf_counter()
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in self._commands()]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit("a parallel shell install failed")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,10,50")
    parser.add_argument("--only", default="", help="comma-separated columns to measure (default: all)")
    parser.add_argument("--streaming", action="store_true", help="add the streaming executor's column")
    args = parser.parse_args()
    from integration_agent.lab import Lab
    from integration_agent.settings import load_settings

    columns = [c for c in COLUMNS if c != "intagent stream" or args.streaming]
    if args.only:
        columns = [c for c in columns if c in args.only.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    lab = Lab(load_settings(env={}).lab)
    lab.up(max(sizes))
    header = f"{'hosts':>5}" + "".join(f"{c:>18}" for c in columns)
    ratios = [c for c in ("ap stock", "shell seq", "shell par") if c in columns and "intagent" in columns]
    header += "".join(f"{'intagent/' + c:>20}" for c in ratios) + f"{'intagent s/host':>17}"
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            bench = Bench(lab, [f"lab{i}" for i in range(1, size + 1)], Path(scratch))
            times = {c: bench.measure(c) for c in columns}
            line = f"{size:>5}" + "".join(f"{times[c]:>17.1f}s" for c in columns)
            line += "".join(f"{times['intagent'] / times[c]:>20.2f}" for c in ratios)
            line += f"{times['intagent'] / size:>16.2f}s" if "intagent" in times else ""
            print(line, flush=True)
            lab.reset(bench.names)


if __name__ == "__main__":
    main()
