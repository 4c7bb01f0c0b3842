"""How results look: rich tables on a terminal, plain text otherwise, one JSON document with --json."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from .common import console

_STYLE = {"reachable": "green", "unreachable": "red", "failed": "red", "unknown": "yellow"}


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_ping(report) -> None:
    table = Table(title="ping", caption=f"run {report.run_id}")
    table.add_column("host")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for host, outcome in sorted(report.hosts.items()):
        style = _STYLE.get(outcome["status"], "")
        table.add_row(host, f"[{style}]{outcome['status']}[/]" if style else outcome["status"], outcome["detail"])
    console.print(table)
