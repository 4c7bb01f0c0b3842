"""``intagent list`` and ``intagent show NAME``: the integration catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import console, state

if TYPE_CHECKING:
    from ..catalog import Catalog
    from ..settings import Settings


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """List the integrations intagent knows (this project's, the integrations_path setting's and
        installed plugins')."""
        from rich.text import Text

        from ..catalog import Catalog
        from .output import new_table, print_json

        items = Catalog.for_settings(state(ctx).settings()).integrations
        if as_json:
            print_json([{"name": i.name, "version": i.manifest.version, "description": i.manifest.description,
                         "curated_role": i.has_role, "origin": i.origin} for i in items.values()])
            return
        table = new_table("integration", "version", "curated role", "origin", "description")
        for item in items.values():
            table.add_row(item.name, item.manifest.version, "yes" if item.has_role else "no", Text(item.origin),
                          Text(item.manifest.description))
        console.print(table)

    @app.command("show")
    def show(ctx: typer.Context, name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Show one integration: parameters, platforms, footprint and sources."""
        from rich.text import Text

        from ..catalog import Catalog
        from .output import print_json

        settings = state(ctx).settings()
        catalog = Catalog.for_settings(settings)
        item = catalog.get(name)
        manifest = item.manifest
        failures = _known_failures(settings, catalog, item.name)
        if as_json:
            print_json({**manifest.model_dump(mode="json"), "curated_role": item.has_role, "origin": item.origin,
                        "known_failures": failures})
            return
        console.print(Text.assemble((manifest.name, "bold"), f" {manifest.version} — {manifest.description}"))
        console.print("parameters (--var NAME=VALUE):", highlight=False)
        for pname, p in manifest.parameters.items():
            flags: list[str] = [p.type]
            if p.required:
                flags.append("required")
            if p.secret:
                flags.append(f"secret, from {p.env}" if p.env else "secret")
            if p.default not in (None, "", [], {}):
                flags.append(f"default {p.default!r}")
            console.print(f"  {pname} ({', '.join(flags)})", highlight=False, markup=False)
            console.print(f"      {p.description}", highlight=False, markup=False)
        for platform in manifest.platforms:
            lab = " (tested in the lab)" if platform.tested_in_lab else ""
            console.print(f"platform: {platform.family}: {', '.join(platform.distributions)} "
                          f"{', '.join(platform.versions)}{lab}", highlight=False, markup=False)
        owns = manifest.owns
        for label, values in (("packages", owns.packages), ("services", owns.services), ("paths", owns.paths),
                              ("users", owns.users), ("ports", owns.ports)):
            if values:
                console.print(f"owns {label}: {', '.join(map(str, values))}", highlight=False, markup=False)
        rules = manifest.discovery
        if not rules.empty:
            parts = ([f"any of: {', '.join(map(str, rules.any))}"] if rules.any else []) + (
                [f"all of: {', '.join(map(str, rules.all))}"] if rules.all else [])
            console.print(f"recommended where: {'; '.join(parts)}", highlight=False, markup=False)
        if manifest.requires:
            console.print(f"requires: {', '.join(manifest.requires)}", highlight=False, markup=False)
        for source in manifest.sources:
            console.print(f"source: {source.title} <{source.url}> ({source.retrieved or 'undated'})",
                          highlight=False, markup=False)
        if failures:
            console.print("known failures:", highlight=False)
        for note in failures:
            console.print(f"  {note['class'] or 'note'}: {note['title']} ({note['source']}, {note['retrieved']})",
                          highlight=False, markup=False)

    del list_, show


def _known_failures(settings: Settings, catalog: Catalog, name: str) -> list[dict[str, Any]]:
    """The integration's learned failure notes (the ``learned_dir`` setting's folder); none when the
    knowledge index cannot be opened."""
    from ..errors import IntagentError
    from ..improvement import known_failures
    from ..knowledge import KnowledgeBase

    try:
        with KnowledgeBase.for_settings(settings, catalog) as kb:
            return known_failures(name, kb)
    except (IntagentError, OSError):
        return []  # the notes are extra information: a broken cache must not hide the integration
