"""``intagent lab``: disposable Debian hosts on this machine for trying and testing integrations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, progress, state

app = typer.Typer(no_args_is_help=True, help="Disposable test hosts (systemd-nspawn) on this machine.")


def _lab(ctx: typer.Context):
    from ..lab import Lab

    return Lab(state(ctx).settings().lab)


def _progress(message: str) -> None:
    progress(f"lab: {message}")


@app.command("up")
def up(
    ctx: typer.Context,
    hosts: Annotated[Optional[int], typer.Option("--hosts", "-n", min=1, max=200,
                                                 help="Hosts to have running (default: lab.hosts).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the cached base image first.")] = False,
) -> None:
    """Create the lab, or grow it to --hosts hosts; print the path of its Ansible inventory."""
    report = _lab(ctx).up(hosts, rebuild=rebuild, progress=_progress)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
    _progress(f"{len(report.hosts)} host(s) up ({len(report.started)} started; {timings})")
    print(report.inventory)


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Remove every host, mount, namespace, link, route and process of the lab (safe to repeat)."""
    removed = _lab(ctx).down(progress=_progress)
    _progress(f"removed {len(removed)} host(s)" if removed else "nothing left to remove")


@app.command("reset")
def reset(ctx: typer.Context,
          hosts: Annotated[Optional[list[str]], typer.Argument(help="Hosts to reset (default: all).")] = None) -> None:
    """Put lab hosts back to the pristine base image (a fresh boot, nothing installed)."""
    reset_hosts = _lab(ctx).reset(hosts or (), progress=_progress)
    _progress(f"reset {', '.join(reset_hosts)}")


@app.command("inventory")
def inventory(ctx: typer.Context) -> None:
    """Print the path of the lab's Ansible inventory."""
    print(_lab(ctx).require_inventory())


@app.command("status")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the lab's hosts and whether each one runs and answers SSH."""
    from .output import new_table, print_json

    rows = _lab(ctx).status()
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    if not rows:
        console.print("no lab hosts")
        return
    table = new_table("host", "address", "running", "answers")
    for row in rows:
        table.add_row(row.name, row.address, "yes" if row.running else "[red]no[/]",
                      "yes" if row.answers else "[red]no[/]")
    console.print(table)


@app.command("add-deb")
def add_deb(ctx: typer.Context, debs: Annotated[list[Path], typer.Argument(help=".deb files to serve.")]) -> None:
    """Serve extra .deb files to the lab's hosts from its package mirror."""
    for name in _lab(ctx).add_packages(debs):
        print(name)
