"""``intagent audit NAME``: what an integration's install really writes, and what its uninstall leaves."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import console, progress, state
from .lab import Release


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def audit_(
        ctx: typer.Context, name: str,
        release: Annotated[Release | None, typer.Option(
            "--release", "-r", help="Debian release of the sandbox host (default: the lab's).")] = None,
        var: Annotated[list[str] | None, typer.Option("--var", "-e", help="Parameter KEY=VALUE.")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Install, verify and uninstall NAME on a fresh lab sandbox host and audit it from outside.

        Prints every path install wrote (by category: footprint, package, accounts, bookkeeping, outside),
        what uninstall left, the dependencies it kept and the connections the host tried. Exit 7 when the
        integration leaves its footprint, reaches out, leaves residue or does not verify.
        """
        from ..audit import audit
        from ..catalog import Catalog
        from ..errors import IntegrationError, ValidationFailed
        from ..lab import Lab
        from .output import print_json

        settings = state(ctx).settings()
        found = Catalog.for_settings(settings).get(name)
        if not found.has_role:
            raise IntegrationError(f"{name} has no curated role to audit",
                                   hint="generated plans are audited by: intagent generate NAME --sandbox")
        report = audit(found, Lab(settings.lab), settings, release=release.value if release else None,
                       variables=var or (), progress=lambda m: progress(f"audit: {m}"))
        if as_json:
            print_json(report.to_json())
        else:
            _print(report)
        if report.findings:
            raise ValidationFailed(f"{name} failed the audit: {'; '.join(f.rule for f in report.findings)}")

    del audit_


def _print(report) -> None:
    console.print(f"[bold]{report.integration}[/] on a {report.release} sandbox host "
                  f"(install: {report.statuses.get('install')}, uninstall: {report.statuses.get('uninstall')})",
                  highlight=False)
    counts = ", ".join(f"{k} {len(v)}" for k, v in sorted(report.written.items()))
    console.print(f"install wrote: {counts}", highlight=False)
    for category in ("footprint", "accounts", "outside"):
        for change in report.written.get(category, []):
            console.print(f"  {category:<10} {change}", markup=False, highlight=False)
    console.print(f"uninstall left: {len(report.left) or 'nothing'}", highlight=False)
    for change in report.left:
        console.print(f"  {change}", markup=False, highlight=False)
    if report.kept:
        console.print("dependencies kept (never removed: other software may need them): "
                      + ", ".join(report.kept), highlight=False)
    console.print(f"connection attempts: {', '.join(report.egress) or 'none'}", highlight=False)
    for finding in report.findings:
        console.print(f"[red]{finding.rule}[/] {finding.message}", highlight=False)
    if not report.findings:
        console.print("[green]inside its footprint[/]", highlight=False)
