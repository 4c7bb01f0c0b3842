"""How results look: rich tables on a terminal, ASCII tables of plain text otherwise, one JSON document
with --json. Text that comes from hosts or files is printed as ``Text``, never parsed as markup."""

from __future__ import annotations

import json
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from .common import console

_STYLE = {"reachable": "green", "unreachable": "red", "failed": "red", "unknown": "yellow"}


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def new_table(*columns: str, **options: Any) -> Table:
    """A table with these columns (long cells fold): rich's box on a terminal, ASCII off one."""
    table = Table(box=box.HEAVY_HEAD if console.is_terminal else box.ASCII2, **options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def print_ping(report) -> None:
    table = new_table("host", "status", "detail", title="ping", caption=f"run {report.run_id}")
    for host, outcome in sorted(report.hosts.items()):
        table.add_row(Text(host), Text(outcome["status"], style=_STYLE.get(outcome["status"], "")),
                      Text(str(outcome["detail"])))
    console.print(table)


_HOST_STYLE = {"installed": "green", "verified": "green", "uninstalled": "green", "unchanged": "green",
               "planned": "yellow", "rolled_back": "yellow", "failed": "red", "unreachable": "red",
               "unknown": "magenta", "skipped": "cyan",
               # batches of a rolling run
               "ok": "green", "partial": "yellow", "declined": "yellow", "interrupted": "magenta"}


def styled(status: str) -> Text:
    return Text(status, style=_HOST_STYLE.get(status, ""))


def print_plan(hosts) -> None:
    """What check mode predicts per host: changed tasks (with diffs) and what it cannot predict."""
    for name, host in sorted(hosts.items()):
        console.print(Text.assemble((name, "bold"), ": ", styled(host.status)))
        for change in host.changes:
            console.print(f"  would change: {change['task']}", markup=False, highlight=False)
            for line in _diff_lines(change.get("diff"))[:20]:
                console.print(f"    {line}", markup=False, highlight=False)
        for task in host.unpredictable:
            console.print(Text.assemble("  ", ("cannot predict in check mode:", "yellow"), f" {task}"))
        for failure in host.failures:
            console.print(Text(f"  {failure}", style="red"))


def _diff_lines(diff: Any) -> list[str]:
    import difflib

    lines: list[str] = []
    for item in diff if isinstance(diff, list) else ([diff] if diff else []):
        if not isinstance(item, dict):
            continue
        if "prepared" in item:
            lines.extend(str(item["prepared"]).splitlines())
            continue
        before, after = item.get("before", ""), item.get("after", "")
        if isinstance(before, str) and isinstance(after, str):
            lines.extend(difflib.unified_diff(before.splitlines(), after.splitlines(),
                                              str(item.get("before_header", "before")),
                                              str(item.get("after_header", "after")), lineterm=""))
        else:
            lines.append(f"{item.get('before_header', '')}: {before!r} -> {after!r}")
    return lines


def print_report(report) -> None:
    """The summary table at the end of a run."""
    if report.action == "plan":
        print_plan(report.hosts)
    table = new_table("host", "status", "changed", "evidence", "problems",
                      title=f"{report.action} {report.integration}: {report.status}",
                      caption=Text(f"run {report.run_id} · {report.run_dir}"))
    for name, host in sorted(report.hosts.items()):
        changed = " ".join(f"{stage}={n}" for stage, n in host.changed.items())
        table.add_row(Text(name), styled(host.status), changed, Text(_evidence(host.evidence)),
                      Text("; ".join(host.failures[:3])))
    console.print(table)
    if report.batches is not None:
        print_batches(report.rollout or {}, report.batches)


def print_batches(rollout: dict[str, Any], batches: list[dict[str, Any]]) -> None:
    """A rolling run's batches in order, and where the rollout stopped."""
    stopped = rollout.get("stopped_after")
    caption = (f"stopped after batch {stopped}: {rollout.get('reason')}" if stopped
               else f"max-fail {rollout.get('max_fail', 0):g}% per batch")
    table = new_table("batch", "status", "hosts", title="rollout", caption=Text(caption))
    for batch in batches:
        table.add_row(str(batch["index"]), styled(batch["status"]), Text(", ".join(batch["hosts"])))
    console.print(table)


def _evidence(evidence: dict[str, Any] | None) -> str:
    """Compact evidence: checks as ok/NOT, other facts as key=value."""
    parts = []
    for key, value in (evidence or {}).items():
        if key in ("service", "endpoint", "port"):
            continue
        truth = value if isinstance(value, bool) else {"true": True, "false": False}.get(str(value).lower())
        parts.append(f"{key} {'ok' if truth else 'NOT'}" if truth is not None else f"{key}={value}")
    return ", ".join(parts)
