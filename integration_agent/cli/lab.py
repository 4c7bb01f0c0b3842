"""``intagent lab``: disposable Debian hosts on this machine for trying and testing integrations."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..lab.layout import OPS_USER
from .common import console, progress, state


# typer offers choices through enums. These mirror the lab's own lists (lab.layout RELEASES and
# LOGIN_USERS; a unit test holds them equal), spelled out so that type checkers know their members.
class Release(StrEnum):
    bullseye = "bullseye"
    bookworm = "bookworm"
    trixie = "trixie"


class LoginUser(StrEnum):
    root = "root"
    ops = OPS_USER

app = typer.Typer(no_args_is_help=True, help="Disposable test hosts (systemd-nspawn) on this machine.")


def _lab(ctx: typer.Context):
    from ..lab import Lab

    return Lab(state(ctx).settings().lab)


def _progress(message: str) -> None:
    progress(f"lab: {message}")


@app.command("up")
def up(
    ctx: typer.Context,
    hosts: Annotated[int | None, typer.Option("--hosts", "-n", min=1, max=200,
                                                 help="Hosts to have running (default: lab.hosts).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild the cached base images first.")] = False,
    release: Annotated[list[Release] | None, typer.Option(
        "--release", "-r",
        help="Debian release of the hosts; repeat it for a mix, dealt out round-robin (default: lab.suite).")] = None,
    bastion: Annotated[bool, typer.Option(
        "--bastion",
        help="Add a bastion host: the other hosts accept SSH from it only, the inventory jumps through it.")] = False,
    login_user: Annotated[LoginUser, typer.Option(
        "--login-user",
        help=f"User the inventory logs in as; {OPS_USER} needs become with its sudo password.")] = LoginUser.root,
    fleet: Annotated[bool, typer.Option(
        "--fleet",
        help=f"Also write fleet/hosts.yml and fleet/ansible.cfg (remote_user {OPS_USER}) in the lab's state "
             "dir.")] = False,
) -> None:
    """Create the lab, or grow it to --hosts hosts, in the layout the options ask for; print its inventory's path.

    Hosts whose release or access differs from the options are re-created from their pristine image.
    """
    from ..lab.layout import Layout

    the_lab = _lab(ctx)
    releases = tuple(r.value for r in release) if release else (the_lab.settings.suite,)
    layout = Layout(releases=releases, bastion=bastion, login_user=login_user.value, fleet=fleet)
    report = the_lab.up(hosts, layout=layout, rebuild=rebuild, progress=_progress)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
    _progress(f"{len(report.hosts)} host(s) up ({len(report.started)} started; {timings})")
    if report.bastion:
        _progress(f"hosts are reached through the bastion {report.bastion}")
    if report.fleet:
        _progress(f"fleet-like set-up: ANSIBLE_CONFIG={report.fleet / 'ansible.cfg'} -i {report.fleet / 'hosts.yml'}")
    print(report.inventory)


@app.command("down")
def down(ctx: typer.Context) -> None:
    """Remove every host, mount, namespace, link, route and process of the lab (safe to repeat)."""
    removed = _lab(ctx).down(progress=_progress)
    _progress(f"removed {len(removed)} host(s)" if removed else "nothing left to remove")


@app.command("reset")
def reset(ctx: typer.Context,
          hosts: Annotated[list[str] | None, typer.Argument(help="Hosts to reset (default: all).")] = None) -> None:
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
    table = new_table("host", "address", "release", "running", "answers")
    for row in rows:
        table.add_row(row.name, row.address, row.release, "yes" if row.running else "[red]no[/]",
                      "yes" if row.answers else "[red]no[/]")
    console.print(table)


@app.command("add-deb")
def add_deb(ctx: typer.Context, debs: Annotated[list[Path], typer.Argument(help=".deb files to serve.")]) -> None:
    """Serve extra .deb files to the lab's hosts from its package mirror."""
    for name in _lab(ctx).add_packages(debs):
        print(name)
