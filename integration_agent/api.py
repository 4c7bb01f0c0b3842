"""The public Python API: the same verbs as the command line, returning report objects."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .executor import EventSink, Executor
from .inventory import resolve_hosts
from .render import render
from .runs import RunDir
from .settings import Settings, load_settings


@dataclass
class PingReport:
    """Which targeted hosts answered over Ansible."""

    run_id: str
    run_dir: str
    status: str  # ok | partial | failed
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ping(inventory: Path, *, limit: str | None = None, settings: Settings | None = None,
         on_event: EventSink | None = None, cancel: threading.Event | None = None) -> PingReport:
    """Ping every host the inventory (and limit) targets, through intagent's own runner."""
    settings = settings or load_settings()
    targets = resolve_hosts(inventory, limit)
    run = RunDir.create(settings.runs_dir)
    run.write_json("request.json", {"action": "ping", "inventory": str(inventory.resolve()), "limit": limit,
                                    "targets": targets, "created": datetime.now(timezone.utc).isoformat()})
    playbook = run.playbook("ping.yml", render("ping.yml.j2"))
    result = Executor(forks=settings.ansible.forks, timeout=settings.ansible.timeout).run(
        playbook, inventory, limit=limit, events_file=run.events_file, on_event=on_event, cancel=cancel)
    hosts: dict[str, dict[str, Any]] = {}
    for host in targets:
        outcome = result.hosts.get(host)
        if outcome is None:
            hosts[host] = {"status": "unknown", "detail": "no result (run interrupted?)"}
        elif outcome.unreachable:
            hosts[host] = {"status": "unreachable", "detail": "; ".join(outcome.failures)}
        elif outcome.failed:
            hosts[host] = {"status": "failed", "detail": "; ".join(outcome.failures)}
        else:
            hosts[host] = {"status": "reachable", "detail": "pong"}
    good = sum(1 for h in hosts.values() if h["status"] == "reachable")
    status = "ok" if good == len(hosts) else ("failed" if good == 0 else "partial")
    report = PingReport(run.id, str(run.path), status, hosts)
    run.write_json("report.json", report.to_json())
    return report
