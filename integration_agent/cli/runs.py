"""``intagent runs list|show``: the record of past runs."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import console, state

app = typer.Typer(no_args_is_help=True, help="Past runs: their reports, playbooks and events.")


@app.command("list")
def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every run, newest first."""
    from rich.table import Table

    from ..runs import list_runs
    from .output import print_json

    rows = []
    for run in list_runs(state(ctx).settings().runs_dir):
        request, report = run.read_json("request.json") or {}, run.read_json("report.json") or {}
        rows.append({"run_id": run.id, "action": request.get("action"), "integration": request.get("integration", ""),
                     "status": report.get("status", "incomplete"), "hosts": len(request.get("targets", []))})
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("run", "action", "integration", "status", "hosts"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["run_id"], row["action"] or "", row["integration"], row["status"], str(row["hosts"]))
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One run: its request, per-host results and where its files are."""
    from ..runs import RunDir
    from .output import print_json

    run = RunDir.open(state(ctx).settings().runs_dir, run_id)
    request, report = run.read_json("request.json"), run.read_json("report.json")
    if as_json:
        print_json({"request": request, "report": report, "dir": str(run.path)})
        return
    console.print(f"run {run.id} ({run.path})", highlight=False)
    console.print(f"request: {request.get('action')} {request.get('integration', '')} on "
                  f"{', '.join(request.get('targets', []))}", highlight=False, markup=False)
    if not report:
        console.print("no report: the run did not finish", style="yellow")
        return
    console.print(f"status: {report['status']} (exit {report.get('exit_code', '?')})", highlight=False)
    for host, data in sorted(report.get("hosts", {}).items()):
        line = f"  {host}: {data['status']}"
        if data.get("evidence"):
            line += "  " + " ".join(f"{k}={v}" for k, v in data["evidence"].items())
        console.print(line, highlight=False, markup=False)
        for failure in data.get("failures", []):
            console.print(f"    {failure}", highlight=False, markup=False)
