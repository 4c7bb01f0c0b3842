"""``intagent discover``: what each host runs and which integrations fit it (read only)."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from .ansible_flags import ansible_flags
from .common import console, state
from .lifecycle import InventoryOpt, JsonOpt, LimitOpt, stop_on_signals

_STATUS_STYLE = {"discovered": "green", "verified": "green", "failing": "red", "unreachable": "red",
                 "failed": "red", "unknown": "yellow"}


def print_discovery(report: Any) -> None:
    """One row per host: what runs there, what is installed (and verified), what is recommended and why."""
    from .output import new_table

    table = new_table("host", "platform", "runs", "installed", "recommended (why)",
                      title=f"discover: {report.status}", caption=Text(f"run {report.run_id} · {report.run_dir}"))
    for name, host in sorted(report.hosts.items()):
        if host.status != "discovered":
            table.add_row(Text(name), Text(host.status, style=_STATUS_STYLE.get(host.status, "")), "", "",
                          Text("; ".join(host.failures[:2])))
            continue
        runs = "; ".join(filter(None, [", ".join(host.services),
                                       f"ports {', '.join(map(str, host.ports))}" if host.ports else ""]))
        installed = Text()
        for item in host.installed:
            installed.append(f"{item.integration} ")
            installed.append(item.status, style=_STATUS_STYLE.get(item.status, ""))
            installed.append("\n")
        recommended = Text()
        for rec in host.recommended:
            recommended.append(rec.integration, style="bold" if rec.blocked is None else "dim")
            recommended.append(f" ({'; '.join(rec.why)})")
            if rec.requires:
                recommended.append(f" after {', '.join(rec.requires)}")
            if rec.blocked:
                recommended.append(f" - cannot install now: {rec.blocked}", style="yellow")
            recommended.append("\n")
        installed.rstrip()
        recommended.rstrip()
        table.add_row(Text(name), Text(host.platform), Text(runs), installed, recommended)
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("discover")
    @ansible_flags
    def discover(ctx: typer.Context, inventory: InventoryOpt, limit: LimitOpt = None, as_json: JsonOpt = False,
                 **ansible: Any) -> None:
        """What each host runs, which integrations are installed (and pass verify) and which are recommended,
        with the rule that matched as evidence. Read only: changes nothing on any host."""
        from ..discovery import discover as discover_api
        from .output import print_json

        with stop_on_signals() as cancel:
            report = discover_api(inventory, limit=limit, settings=state(ctx).settings(), cancel=cancel, **ansible)
        print_json(report.to_json()) if as_json else print_discovery(report)
        if report.exit_code:
            raise typer.Exit(report.exit_code)

    del discover


def print_recommended(report: Any) -> None:
    """Who got what from ``install --recommended``: host by integration, in install order."""
    from .output import new_table, styled

    if not report.order:
        console.print("Nothing to install: discovery recommends nothing on these hosts.", markup=False)
        return
    table = new_table("host", *report.order, title="install --recommended",
                      caption=Text("order: " + " → ".join(report.order)))
    for host, outcomes in sorted(report.hosts.items()):
        cells = []
        for name in report.order:
            outcome = outcomes.get(name)
            cell = styled(outcome["status"]) if outcome else Text("-")
            if outcome and outcome["status"] == "skipped":
                cell.append(f" ({outcome['detail']})")
            cells.append(cell)
        table.add_row(Text(host), *cells)
    console.print(table)
