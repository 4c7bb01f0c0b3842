"""``intagent runs list|show|export``: the record of past runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import console, err_console, state

if TYPE_CHECKING:
    from ..settings import Settings

app = typer.Typer(no_args_is_help=True, help="Past runs: their reports, journals, playbooks and events.")


@app.command("list")
def list_(ctx: typer.Context,
          integration: Annotated[str | None, typer.Option("--integration",
                                                          help="Only runs of this integration.")] = None,
          status: Annotated[str | None, typer.Option("--status", help="Only runs with this status "
                                                     "(ok, partial, failed, interrupted, incomplete...).")] = None,
          host: Annotated[str | None, typer.Option("--host", help="Only runs that targeted this host.")] = None,
          as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every run, newest first."""
    from ..runs import list_runs, run_status
    from .output import new_table, print_json

    rows: list[dict[str, Any]] = []
    for run in list_runs(state(ctx).settings().runs_dir, integration=integration, status=status, host=host):
        request = run.request()
        rows.append({"run_id": run.id, "action": request.action, "integration": request.integration or "",
                     "status": run_status(run), "hosts": len(request.targets), "parent": request.parent})
    if as_json:
        print_json(rows)
        return
    table = new_table("run", "action", "integration", "status", "hosts")
    for row in rows:
        # A gate of a generation (check mode, the sandbox) is marked with the run it worked for.
        action = (row["action"] or "") + (f" (gate of {row['parent']})" if row["parent"] else "")
        table.add_row(row["run_id"], action, row["integration"] or "", row["status"], str(row["hosts"]))
    console.print(table)


def _summary(event: dict[str, Any]) -> str:
    """One short line about a journal event."""
    kind = event.get("type")
    if kind == "run_requested":
        text = (f"{event.get('action')} {event.get('integration') or ''} on {len(event.get('targets') or [])} host(s)"
                f": {', '.join(event.get('targets') or [])}")
    elif kind in ("step_started", "run_interrupted"):
        hosts = ", ".join(event.get("hosts") or []) or "no host"
        text = f"hosts: {hosts}" if kind == "step_started" else f"unknown: {hosts}"
        if event.get("reason"):
            text += f" ({event['reason']})"
    elif kind == "step_finished":
        outcomes = event.get("hosts") or {}
        text = ", ".join(f"{h}={(o or {}).get('status')}" for h, o in sorted(outcomes.items())) or "no host"
    elif kind == "run_finished":
        text = f"status {event.get('status')}, exit {event.get('exit_code')}"
    elif kind == "batch_started":
        text = f"batch {event.get('index')}: {', '.join(event.get('hosts') or []) or 'no host'}"
    elif kind == "batch_finished":
        failed = ", ".join(event.get("failed") or [])
        text = f"batch {event.get('index')} {event.get('status')}" + (f" (failed: {failed})" if failed else "")
        if event.get("stopped"):
            text += f"; rollout stopped: {event.get('reason')}"
    else:
        text = str(event.get("text", ""))
    return text if len(text) <= 100 else text[:97] + "..."


def _timeline(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"seq": e.get("seq"), "at": e.get("at"), "type": e.get("type"), "step": e.get("step"),
             "summary": _summary(e)} for e in events]


@app.command("show")
def show(ctx: typer.Context, run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One run: its request, the timeline of its journal, per-host results and where its files are."""
    from ..journal import JournalError
    from ..runs import REPORT, REQUEST, RunDir, RunRequest
    from .output import print_json

    run = RunDir.open(state(ctx).settings().runs_dir, run_id)
    stored, report = run.read_json(REQUEST) or {}, run.read_json(REPORT)  # the request as stored, for --json
    request = RunRequest.read(stored)
    journal, events, journal_error = run.journal, None, None
    if journal.exists():
        try:
            events = journal.events()
        except JournalError as exc:
            journal_error = str(exc)
    run_state = None
    if events is not None:
        from ..journal import fold

        run_state = fold(events)
    if as_json:
        data: dict[str, Any] = {"request": stored, "report": report, "dir": str(run.path)}
        if events is not None:
            data.update(timeline=_timeline(events), journal=events, state=run_state.to_json() if run_state else None,
                        journal_notes=journal.notes)
        if journal_error:
            data["journal_error"] = journal_error
        print_json(data)
        return
    console.print(f"run {run.id} ({run.path})", highlight=False, markup=False)
    console.print(f"request: {request.action} {request.integration or ''} on "
                  f"{', '.join(request.targets)}", highlight=False, markup=False)
    if request.parent:
        console.print(f"for run {request.parent} (a gate of its generation)", highlight=False, markup=False)
    if journal_error:
        err_console.print(f"warning: the journal cannot be trusted: {journal_error}", style="yellow",
                          highlight=False, markup=False)
    if events:
        console.print("timeline:", highlight=False)
        for item in _timeline(events):
            at = str(item["at"] or "")[:19].replace("T", " ")
            step = item["step"] or "-"
            console.print(f"  {item['seq']:>3}  {at}  {item['type']:<15} {step:<9} {item['summary']}",
                          highlight=False, markup=False, soft_wrap=True)
        for note in journal.notes:
            console.print(f"  note: {note}", style="yellow", highlight=False, markup=False)
    if not report:
        if run_state is not None and run_state.hosts:
            where = (f"stopped after {run_state.checkpoint}" if run_state.checkpoint
                     else "stopped before any step finished")
            console.print(f"no report: the run did not finish ({run_state.status}, {where})", style="yellow",
                          highlight=False, markup=False)
            for host, status in sorted(run_state.hosts.items()):
                console.print(f"  {host}: {status}", highlight=False, markup=False)
            return
        console.print("no report: the run did not finish", style="yellow")
        return
    console.print(f"status: {report.get('status')} (exit {report.get('exit_code', '?')})", highlight=False,
                  markup=False)
    for host, data in sorted((report.get("hosts") or {}).items()):
        line = f"  {host}: {data.get('status')}"
        if data.get("evidence"):
            line += "  " + " ".join(f"{k}={v}" for k, v in data["evidence"].items())
        console.print(line, highlight=False, markup=False)
        for failure in data.get("failures", []):
            console.print(f"    {failure}", highlight=False, markup=False)
    _print_batches(report)


def _print_batches(report: dict[str, Any]) -> None:
    """A rolling run's batches, and where it stopped (nothing for a run without batches)."""
    if not report.get("batches"):
        return
    console.print("batches:", highlight=False)
    for batch in report["batches"]:
        console.print(f"  {batch.get('index')}: {batch.get('status')}  {', '.join(batch.get('hosts') or [])}",
                      highlight=False, markup=False)
    rollout = report.get("rollout") or {}
    if rollout.get("stopped_after"):
        console.print(f"rollout stopped after batch {rollout['stopped_after']}: {rollout.get('reason')}",
                      highlight=False, markup=False)


@app.command("export")
def export_(ctx: typer.Context, run_id: str,
            out: Annotated[Path | None, typer.Option("--out", help="Where to write the bundle "
                                                     "(default ./intagent-run-ID.tar.gz).")] = None) -> None:
    """A redacted .tar.gz of one run (request, report, journal, events, playbooks) for a bug report."""
    from ..runs import RunDir, export

    settings = state(ctx).settings()
    run = RunDir.open(settings.runs_dir, run_id)
    path = export(run, out if out is not None else Path.cwd() / f"intagent-run-{run.id}.tar.gz",
                  secrets=_known_secrets(run.request().integration, settings))
    print(path)


def _known_secrets(integration: str | None, settings: Settings) -> list[str]:
    """Secret values this shell could have given the run: masked in the bundle even if they leaked."""
    import os

    values = [os.environ.get("OPENAI_API_KEY", "")]
    if integration:
        try:
            from ..catalog import Catalog

            found = Catalog.for_settings(settings).get(integration)
            values += [os.environ.get(p.env, "") for p in found.manifest.parameters.values() if p.secret and p.env]
        except Exception:  # best effort: an unknown integration has no known secrets
            pass
    return [v for v in values if v]
