"""node_exporter on lab3 through the streaming executor (transmit -> worker process -> process), from the CLI.

Only lab3 is used: it is reset here and nothing else in the lab is touched.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import node_exporter_metrics, run_cli
from tests.e2e.test_node_exporter import assert_clean, cli_json

pytestmark = pytest.mark.lab
HOST = "lab3"


def _comparable(report: dict) -> dict:
    """What must not depend on the executor: everything but run ids, times and paths."""
    return {"integration": report["integration"], "action": report["action"], "status": report["status"],
            "exit_code": report["exit_code"], "fingerprint": report["fingerprint"], "hosts": report["hosts"]}


def test_install_and_uninstall_streamed_to_a_worker_match_a_local_run(lab, isolated_env, tmp_path: Path):
    log = tmp_path / "worker.log"
    worker = tmp_path / "worker.sh"
    worker.write_text(f'#!/bin/sh\necho "$$ $PPID $*" >> "{log}"\nexec ansible-runner worker "$@"\n')
    worker.chmod(0o755)
    streaming = {**isolated_env, "INTAGENT_ANSIBLE_EXECUTOR": "streaming",
                 "INTAGENT_ANSIBLE_WORKER_COMMAND": str(worker)}
    inventory = str(lab.inventory_path)

    lab.reset([HOST])
    rc, streamed = cli_json("install", "node_exporter", "-i", inventory, "-l", HOST, env=streaming)
    assert rc == 0, streamed
    assert streamed["status"] == "ok" and streamed["hosts"][HOST]["status"] == "installed"
    assert streamed["hosts"][HOST]["changed"]["apply"] > 0
    assert streamed["hosts"][HOST]["evidence"]["endpoint_ok"] in (True, "True")
    assert "node_exporter_build_info" in node_exporter_metrics(lab, HOST)

    # One worker process per playbook: an install is one (its plan, apply and verify plays), a child of the CLI.
    workers = [line.split() for line in log.read_text().splitlines()]
    assert len(workers) == 1, workers
    pids, parents = {int(w[0]) for w in workers}, {int(w[1]) for w in workers}
    assert len(pids) == 1 and len(parents) == 1 and not pids & parents and os.getpid() not in pids | parents
    events = Path(streamed["run_dir"], "events.jsonl").read_text()
    assert all(f'"stage": "{s}"' in events for s in ("plan", "apply", "verify")) and "playbook_on_stats" in events

    lab.reset([HOST])
    rc, local = cli_json("install", "node_exporter", "-i", inventory, "-l", HOST, env=isolated_env)
    assert rc == 0, local
    assert len(log.read_text().splitlines()) == 1  # the local run started no worker
    assert _comparable(streamed) == _comparable(local)
    assert streamed["run_id"] != local["run_id"]

    rc, removed = cli_json("uninstall", "node_exporter", "-i", inventory, "-l", HOST, env=streaming)
    assert rc == 0 and removed["hosts"][HOST]["status"] == "uninstalled", removed
    assert len(log.read_text().splitlines()) == 2
    assert_clean(lab, HOST)

    shown = run_cli("runs", "show", streamed["run_id"], env=streaming)
    assert shown.returncode == 0 and f"{HOST}: installed" in shown.stdout
    assert json.loads(Path(streamed["run_dir"], "report.json").read_text())["hosts"] == streamed["hosts"]
