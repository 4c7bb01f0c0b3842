"""``intagent schema``, ``intagent generate`` and ``intagent promote``: the generated path."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, state


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema(what: Annotated[str, typer.Argument(help="Which schema: generation.")] = "generation") -> None:
        """Print a published JSON schema (generation: what a model must answer)."""
        from ..errors import IntegrationError
        from ..generation.schema import json_schema
        from .output import print_json

        if what != "generation":
            raise IntegrationError(f"unknown schema {what!r}", hint="known: generation")
        print_json(json_schema())

    @app.command("generate")
    def generate(
        ctx: typer.Context, name: str,
        inventory: Annotated[Path | None, typer.Option(
            "--inventory", "-i", help="Run the check-mode gate on these hosts.")] = None,
        limit: Annotated[str | None, typer.Option("--limit", "-l")] = None,
        var: Annotated[list[str] | None, typer.Option(
            "--var", "-e", help="Parameter KEY=VALUE for the check-mode gate.")] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Also write the validated role and report here.")] = None,
        sandbox: Annotated[bool | None, typer.Option(
            "--sandbox/--no-sandbox",
            help="Apply, verify and uninstall the plan on a lab sandbox host and audit it before accepting it "
                 "(default: the llm.sandbox setting, auto: wherever the lab can run).")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Ask the model for NAME's playbooks, gate and repair them, and keep the validated set."""
        from ..api import generate as generate_api
        from .common import err_console
        from .output import print_json

        overrides = {} if sandbox is None else {"llm.sandbox": "on" if sandbox else "off"}
        _generation, report = generate_api(
            name, settings=state(ctx).settings(**overrides), inventory=inventory, limit=limit, variables=var or (),
            out=out, warn=lambda message: err_console.print(f"[yellow]{message}[/]", highlight=False))
        if as_json:
            print_json(report)
            return
        source = "cache (no model call)" if report["from_cache"] else f"{len(report['attempts'])} attempt(s)"
        console.print(f"[green]validated[/] {name} for {report['platform']} from {source}; "
                      f"{report['tokens']} tokens, {report['seconds']} s; sandbox {report['sandbox']}", highlight=False)
        for attempt in report["attempts"]:
            console.print(f"  attempt {attempt['number']}: stopped at {attempt['gate']}", highlight=False)
            for finding in attempt["findings"][:10]:
                console.print(f"    {finding}", markup=False, highlight=False)
        console.print(f"run {report['run_id']}: {report['run_dir']}/generated", highlight=False)
        if out:
            console.print(f"written to {out}", highlight=False)

    @app.command("promote")
    def promote(ctx: typer.Context, run_id: str,
                force: Annotated[bool, typer.Option(
                    "--force", help="Replace an existing curated role.")] = False) -> None:
        """Turn a validated generation (a `generate` run) into roles/NAME and molecule/NAME for review."""
        from ..catalog import Catalog
        from ..generation.promote import promote as promote_run

        settings = state(ctx).settings()
        written = promote_run(settings.runs_dir, run_id, force=force, catalog=Catalog.for_settings(settings))
        for path in written:
            print(path)

    del schema, generate, promote


def register_eval(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        ctx: typer.Context,
        endpoint: Annotated[str | None, typer.Option("--endpoint", help="A live OpenAI-compatible endpoint "
                                                        "(default: replay the recorded answers on loopback).")] = None,
        model: Annotated[str | None, typer.Option("--model", help="Model name at the endpoint.")] = None,
        inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="Also run check mode, apply, "
                                                          "verify and idempotence on these hosts.")] = None,
        limit: Annotated[str | None, typer.Option("--limit", "-l")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Run the fixed generation task set and print the figures (exit 1 if an unsafe plan got through)."""
        import os

        from ..evaluate import evaluate
        from .output import print_json

        settings = state(ctx).settings(**({"llm.model": model} if model else {}))
        llm = None
        if endpoint:
            from ..generation.llm import OpenAICompatible

            llm = OpenAICompatible(endpoint, os.environ.get("OPENAI_API_KEY"), model or settings.llm.model or "")
        summary = evaluate(settings, llm=llm, inventory=inventory, limit=limit)
        if as_json:
            print_json(summary)
        else:
            console.print(f"[bold]{summary['mode']}[/]", highlight=False)
            for key, value in summary.items():
                if key not in ("mode", "results"):
                    console.print(f"  {key:<32} {value}", highlight=False)
            for result in summary["results"]:
                console.print(f"  {result['id']:<40} expect {result['expect']:<8} got {result['outcome']:<8} "
                              f"attempts {result['attempts']}", highlight=False)
        if summary["unsafe_plans_reaching_a_host"]:
            raise typer.Exit(1)

    del eval_
