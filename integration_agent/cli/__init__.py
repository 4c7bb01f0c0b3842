"""The ``intagent`` command line: a thin layer over the public API. Only this package prints and exits.

Heavy modules (ansible, openai, jinja2) are imported inside the commands that need them, so that
``intagent --help`` and ``intagent --version`` answer fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import __version__
from ..errors import IntagentError, Interrupted
from . import audit as audit_cli
from . import catalog as catalog_cli
from . import collection as collection_cli
from . import discovery as discovery_cli
from . import generation as generation_cli
from . import knowledge as knowledge_cli
from . import lab as lab_cli
from . import lifecycle as lifecycle_cli
from . import runs as runs_cli
from .ansible_flags import ansible_flags
from .common import State, console, err_console, state

app = typer.Typer(
    name="intagent", no_args_is_help=True, pretty_exceptions_enable=False,
    help="Install, verify and remove monitoring integrations on fleets of hosts with Ansible.",
    # Off a terminal, help and usage errors are click's plain text (typer's rich panels would be coloured
    # under FORCE_COLOR or GITHUB_ACTIONS even in a log).
    rich_markup_mode="rich" if console.is_terminal and err_console.is_terminal else None,
)
app.add_typer(lab_cli.app, name="lab")
lifecycle_cli.register(app)
discovery_cli.register(app)
app.add_typer(runs_cli.app, name="runs")
catalog_cli.register(app)
generation_cli.register(app)
generation_cli.register_eval(app)
audit_cli.register(app)
app.add_typer(knowledge_cli.app, name="knowledge", help="Integration knowledge: search and add documents.")
app.add_typer(collection_cli.app, name="collection")


def _version(value: bool) -> None:
    if value:
        print(f"intagent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Settings file (default: "
                      "./workflow_config.yaml, then ~/.config/intagent/workflow_config.yaml).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = State(config=config)


@app.command("config")
def config_show(
    ctx: typer.Context,
    ansible: Annotated[bool, typer.Option("--ansible/--no-ansible", help="Also list the Ansible settings runs "
                                          "use and where each came from.")] = True,
) -> None:
    """Print the effective settings (defaults < file < INTAGENT_* environment < flags) as YAML, then every
    Ansible setting intagent's runs use that differs from Ansible's default, with its origin (your
    ansible.cfg, your environment, or intagent)."""
    import yaml

    settings = state(ctx).settings()
    print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
    if ansible:
        from ..ansible_env import describe, layered

        environment = layered()
        rows = describe(environment)
        print("---\n# Your Ansible configuration file (null: none found), then every Ansible setting of\n"
              "# intagent's runs that differs from Ansible's default (ansible-config dump --only-changed).")
        print(yaml.safe_dump({
            "ansible_config_file": str(environment.config_file) if environment.config_file else None,
            "ansible_settings": {r["name"]: {"value": r["value"], "origin": r["origin"]} for r in rows},
        }, sort_keys=False), end="")


@app.command("ping")
@ansible_flags
def ping_cmd(
    ctx: typer.Context,
    inventory: Annotated[list[Path], typer.Option("--inventory", "-i", metavar="PATH",
                                                  help="Ansible inventory file, directory or script (repeatable).")],
    limit: Annotated[str | None, typer.Option("--limit", "-l", help="Ansible host pattern.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    **ansible: Any,
) -> None:
    """Check that every targeted host answers over Ansible (through intagent's runner)."""
    from ..api import ping
    from ..errors import ExecutionFailed, TotalFailure
    from .output import print_json, print_ping

    report = ping(inventory, limit=limit, settings=state(ctx).settings(), **ansible)
    print_json(report.to_json()) if as_json else print_ping(report)
    if report.status == "failed":
        raise TotalFailure(f"no targeted host answered (run {report.run_id})")
    if report.status == "partial":
        raise ExecutionFailed(f"some hosts did not answer (run {report.run_id})")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: runs the app and maps errors to exit codes."""
    try:
        app(args=argv, standalone_mode=True)
    except IntagentError as exc:
        err_console.print(f"intagent: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("intagent: interrupted", markup=False)
        sys.exit(Interrupted.exit_code)


__all__ = ["app", "main", "console"]
