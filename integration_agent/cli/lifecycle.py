"""``intagent plan|install|verify|uninstall NAME --inventory PATH``: the lifecycle commands."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ..ansible_env import AnsibleOptions, AnsibleSecrets
from ..status import HostStatus
from .ansible_flags import ansible_flags, become_and_vault_secrets
from .common import err_console, interactive, progress, state

InventoryOpt = Annotated[list[Path], typer.Option(
    "--inventory", "-i", metavar="PATH",
    help="Ansible inventory: file, directory or script (repeatable, as with ansible-playbook).")]
LimitOpt = Annotated[str | None, typer.Option("--limit", "-l", help="Ansible host pattern to narrow the targets.")]
VarOpt = Annotated[list[str] | None, typer.Option(
    "--var", "-e", metavar="KEY=VALUE|@FILE",
    help="Integration parameter KEY=VALUE, or @FILE.yml with several (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking (on a terminal the plan "
                                                          "is shown and confirmed first; off one nobody is asked).")]
GenerateOpt = Annotated[bool, typer.Option("--generate", help="Use playbooks generated from the integration's "
                                                               "knowledge (gated) instead of the curated role.")]
BatchOpt = Annotated[list[str] | None, typer.Option(
    "--batch", metavar="SIZE", help="Roll out in batches: a host count or a percentage of the targets, in order, "
    "the last repeating (repeatable: --batch 1 --batch 25% --batch 100%). Default: setting rollout.batches.")]
MaxFailOpt = Annotated[str | None, typer.Option(
    "--max-fail", metavar="PERCENT", help="Stop the rollout when more than PERCENT of a batch fails "
    "(default: setting rollout.max_fail, else 0 with batches: any failure stops).")]

_EVENT_WORDS = {"runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}
_CHECK_MODE = ("plan", "preview")  # stages that only say what would change (install's plan, uninstall's)
# The actions that ask on a terminal before changing hosts, and their question.
_QUESTIONS = {"install": "Apply to {} host(s)?", "uninstall": "Uninstall from {} host(s)?"}


def _progress(stage: str, event: dict[str, Any], verbosity: int = 0) -> None:
    """One line per noteworthy task result, as it happens; with -v, Ansible's own output (redacted)."""
    if verbosity and event.get("stdout"):
        for line in str(event["stdout"]).splitlines():
            progress(line)
        return
    name = event.get("event")
    data = event.get("event_data") or {}
    host, task = data.get("host"), data.get("task", "")
    if name == "playbook_on_play_start":  # one play per stage (an install's apply playbook has verify's too)
        progress(f"{stage}: started", "bold")
        return
    if not host:
        return
    res = data.get("res") or {}
    if name == "runner_on_ok" and res.get("changed"):
        word = "would change" if stage in _CHECK_MODE else "changed"
    elif name in _EVENT_WORDS and not data.get("ignore_errors"):
        word = _EVENT_WORDS[name]
    else:
        return
    progress(f"  {stage:<9} {host:<16} {word:<12} {task}", "red" if word in ("failed", "unreachable") else "yellow")


@contextlib.contextmanager
def stop_on_signals():
    """Ctrl-C and SIGTERM stop the Ansible run cleanly (the run is recorded as interrupted)."""
    cancel = threading.Event()

    def handler(signum, _frame) -> None:
        if not cancel.is_set():
            err_console.print(f"intagent: {signal.Signals(signum).name}: stopping the run (hosts will be "
                              "reported as unknown)", markup=False, highlight=False)
        cancel.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _prompt_secret(name: str, param) -> str | None:
    """A hidden prompt on a terminal (on stderr: stdout may be a JSON document); never off one."""
    if not interactive():
        return None
    return typer.prompt(f"{name} ({param.description})", hide_input=True, default="", show_default=False,
                        err=True) or None


def _confirm(action: str, hosts) -> bool:
    """Show what ``action`` would change on each host, then ask (nothing to change: nothing to ask)."""
    from .output import print_plan

    print_plan(hosts)
    would = sum(1 for h in hosts.values() if h.status == HostStatus.PLANNED)
    if would == 0:
        return True
    return typer.confirm(_QUESTIONS[action].format(would), default=False)


def _rollout_flags(batch: list[str] | None, max_fail: str | None) -> dict[str, Any]:
    """``--batch`` and ``--max-fail`` checked (IntegrationError naming the flag, exit 5); None: not given."""
    from ..errors import IntegrationError
    from ..rollout import parse_batch, parse_max_fail

    try:
        batches = [parse_batch(b) for b in batch] if batch else None
    except ValueError as exc:
        raise IntegrationError(f"--batch: {exc}") from None
    try:
        limit = parse_max_fail(max_fail) if max_fail is not None else None
    except ValueError as exc:
        raise IntegrationError(f"--max-fail: {exc}") from None
    return {"batches": batches, "max_fail": limit}


def _run(ctx: typer.Context, action: str, name: str, inventory: list[Path], limit: str | None,
         variables: list[str] | None, as_json: bool, yes: bool = True, generate: bool = False, *,
         ansible: AnsibleOptions, ansible_secrets: AnsibleSecrets, rollout: dict[str, Any] | None = None,
         plan_out: Path | None = None, saved_plan: Path | None = None) -> None:
    from ..api import run_action
    from .output import print_json, print_report

    ask = action in _QUESTIONS and not yes and not as_json and interactive()
    confirm = functools.partial(_confirm, action) if ask else None
    verbosity = ansible.verbosity
    with stop_on_signals() as cancel:
        report = run_action(
            action, name, inventory, limit=limit, variables=variables or (), settings=state(ctx).settings(),
            on_event=lambda stage, event: _progress(stage, event, verbosity), prompt=_prompt_secret,
            generate=generate, cancel=cancel, confirm=confirm, ansible=ansible,
            ansible_secrets=ansible_secrets, plan_out=plan_out, saved_plan=saved_plan, **(rollout or {}))
    if as_json:
        print_json(report.to_json())
    else:
        print_report(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _run_recommended(ctx: typer.Context, inventory: list[Path], limit: str | None, variables: list[str] | None,
                     as_json: bool, yes: bool, *, ansible: AnsibleOptions, ansible_secrets: AnsibleSecrets,
                     rollout: dict[str, Any]) -> None:
    """``install --recommended``: the discovery table, each integration's install, then who got what."""
    from ..discovery import install_recommended
    from .discovery import print_discovery, print_recommended
    from .output import print_json, print_report

    ask = not yes and not as_json and interactive()
    verbosity = ansible.verbosity

    def discovered(report) -> bool:
        if not as_json:
            print_discovery(report)
        return not ask or not report.recommended() or typer.confirm(
            "Install what is recommended (each integration is planned and asked about again)?", default=False)

    with stop_on_signals() as cancel:
        report = install_recommended(
            inventory, limit=limit, variables=variables or (), settings=state(ctx).settings(),
            on_event=lambda stage, event: _progress(stage, event, verbosity), prompt=_prompt_secret,
            cancel=cancel, ansible=ansible, ansible_secrets=ansible_secrets, on_discovered=discovered,
            confirm=functools.partial(_confirm, "install") if ask else None, **rollout)
    if as_json:
        print_json(report.to_json())
    else:
        for run in report.runs:
            print_report(run)
        print_recommended(report)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    @app.command("plan")
    @ansible_flags
    def plan(ctx: typer.Context, name: str, inventory: InventoryOpt, limit: LimitOpt = None, var: VarOpt = None,
             as_json: JsonOpt = False, generate: GenerateOpt = False,
             out: Annotated[Path | None, typer.Option(
                 "--out", help="Save the plan to FILE for install --plan.")] = None,
             **ansible: Any) -> None:
        """Dry run (check mode with diff): what would change on each host. Changes nothing."""
        _run(ctx, "plan", name, inventory, limit, var, as_json, generate=generate, plan_out=out, **ansible)

    @app.command("install")
    @ansible_flags
    def install(ctx: typer.Context, inventory: InventoryOpt,
                name: Annotated[str | None, typer.Argument(
                    metavar="NAME", help="The integration (or --recommended).")] = None,
                limit: LimitOpt = None, var: VarOpt = None, as_json: JsonOpt = False, yes: YesOpt = False,
                generate: GenerateOpt = False, batch: BatchOpt = None, max_fail: MaxFailOpt = None,
                plan: Annotated[Path | None, typer.Option(
                    "--plan", help="Apply exactly a plan saved with plan --out, or refuse (exit 7).")] = None,
                recommended: Annotated[bool, typer.Option(
                    "--recommended", help="Instead of NAME: discover, then install on each host what discovery "
                    "recommends, dependencies first (--var NAME.KEY=VALUE).")] = False,
                **ansible: Any) -> None:
        """Plan, apply, verify; hosts that fail apply or verify are rolled back with uninstall. With --batch,
        batch by batch: a batch that fails beyond --max-fail stops the rollout before the next one."""
        if recommended == (name is not None):
            raise typer.BadParameter("give an integration NAME or --recommended (one of them)")
        if recommended:
            if generate or plan is not None:
                raise typer.BadParameter("--recommended installs curated roles without --generate or --plan")
            _run_recommended(ctx, inventory, limit, var, as_json, yes, rollout=_rollout_flags(batch, max_fail),
                             **ansible)
            return
        assert name is not None
        _run(ctx, "install", name, inventory, limit, var, as_json, yes, generate,
             rollout=_rollout_flags(batch, max_fail), saved_plan=plan, **ansible)

    @app.command("verify")
    @ansible_flags
    def verify(ctx: typer.Context, name: str, inventory: InventoryOpt, limit: LimitOpt = None,
               var: VarOpt = None, as_json: JsonOpt = False, generate: GenerateOpt = False, **ansible: Any) -> None:
        """Evidence per host that the integration works (service, port, endpoint, version)."""
        _run(ctx, "verify", name, inventory, limit, var, as_json, generate=generate, **ansible)

    @app.command("uninstall")
    @ansible_flags
    def uninstall(ctx: typer.Context, name: str, inventory: InventoryOpt, limit: LimitOpt = None,
                  var: VarOpt = None, as_json: JsonOpt = False, yes: YesOpt = False, generate: GenerateOpt = False,
                  batch: BatchOpt = None, max_fail: MaxFailOpt = None, **ansible: Any) -> None:
        """Remove everything the integration owns (a second run changes nothing); with --batch, batch by batch.
        On a terminal, what would be removed is shown (check mode) and asked about unless --yes."""
        _run(ctx, "uninstall", name, inventory, limit, var, as_json, yes, generate,
             rollout=_rollout_flags(batch, max_fail), **ansible)

    @app.command("resume")
    def resume(ctx: typer.Context, run_id: str, as_json: JsonOpt = False) -> None:
        """Continue an interrupted run from its checkpoint (an interrupted apply is reconciled first)."""
        from ..api import resume as resume_api
        from .output import print_json, print_report

        with stop_on_signals() as cancel:
            report = resume_api(run_id, settings=state(ctx).settings(), on_event=_progress, cancel=cancel,
                                ansible_secrets=become_and_vault_secrets())
        print_json(report.to_json()) if as_json else print_report(report)
        if report.exit_code:
            raise typer.Exit(report.exit_code)

    del plan, install, verify, uninstall, resume
