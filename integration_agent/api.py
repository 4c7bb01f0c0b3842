"""The public Python API: the same verbs as the command line, returning report objects."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ansible_env import AnsibleOptions, AnsibleSecrets
from .catalog import Catalog, Integration
from .errors import ConfigError, IntegrationError, ValidationFailed
from .executor import REFUSED, EventSink, private_prefix, stop_marked
from .inventory import Inventories, InventoryView, inspect_inventory, require_vault_secret, resolve_hosts, sources
from .locks import HostLocks
from .render import render
from .rollout import Batch, Rollout, RolloutPlan
from .runs import REPORT, RunDir, RunRequest, new_run_id
from .savedplan import SavedPlan
from .scratch import Scratch
from .secrets import MASK
from .settings import Settings, load_settings
from .status import HostStatus
from .streaming import make_executor

if TYPE_CHECKING:  # imported where they are used: `import integration_agent.api` stays cheap
    from .generation.builder import Generation, HostGate
    from .generation.llm import LLM
    from .journal import RunState
    from .lifecycle import CustomStep, HostReport, Lifecycle, RunReport, StageEvent
    from .params import Prompt, ResolvedParams

log = logging.getLogger(__name__)
# Asked before hosts are changed, with each host's plan; a no leaves them unchanged.
Confirm = Callable[[dict[str, "HostReport"]], bool]


@dataclass
class PingReport:
    """Which targeted hosts answered over Ansible."""

    run_id: str
    run_dir: str
    status: str  # ok | partial | failed
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ping(inventory: Inventories, *, limit: str | None = None, settings: Settings | None = None,
         on_event: EventSink | None = None, cancel: threading.Event | None = None,
         ansible: AnsibleOptions | None = None, ansible_secrets: AnsibleSecrets | None = None,
         scratch: Scratch | None = None) -> PingReport:
    """Ping every host the inventory (and limit) targets, through intagent's own runner."""
    settings = settings or load_settings()
    scratch = scratch or Scratch.for_settings(settings)
    targets = resolve_hosts(inventory, limit, options=ansible, secrets=ansible_secrets, scratch=scratch)
    _refuse_secrets_on_disk(scratch, {}, ansible_secrets)
    run = RunDir.create(settings.runs_dir)
    run.write_request(RunRequest.new(action="ping", inventory=[str(p.resolve()) for p in sources(inventory)],
                                     limit=limit, targets=targets, ansible=(ansible or AnsibleOptions()).recorded()))
    playbook = run.playbook("ping.yml", render("ping.yml.j2"))
    result = make_executor(settings, ansible, ansible_secrets, scratch).run(
        playbook, sources(inventory), limit=limit, events_file=run.events_file, on_event=on_event, cancel=cancel)
    hosts: dict[str, dict[str, Any]] = {}
    for host in targets:
        outcome = result.hosts.get(host)
        if outcome is None and result.refused:
            hosts[host] = {"status": "failed", "detail": f"{REFUSED}: {result.refused}"}
        elif outcome is None:
            hosts[host] = {"status": "unknown", "detail": "no result (run interrupted?)"}
        elif outcome.unreachable:
            hosts[host] = {"status": "unreachable", "detail": "; ".join(outcome.failures)}
        elif outcome.failed:
            hosts[host] = {"status": "failed", "detail": "; ".join(outcome.failures)}
        else:
            hosts[host] = {"status": "reachable", "detail": "pong"}
    good = sum(1 for h in hosts.values() if h["status"] == "reachable")
    status = "ok" if good == len(hosts) else ("failed" if good == 0 else "partial")
    report = PingReport(run.id, str(run.path), status, hosts)
    run.write_json(REPORT, report.to_json())
    return report


def run_action(action: str, integration: str | Integration, inventory: Inventories, *, limit: str | None = None,
               variables: list[str] | tuple[str, ...] = (), settings: Settings | None = None,
               on_event: StageEvent | None = None, prompt: Prompt | None = None, confirm: Confirm | None = None,
               cancel: threading.Event | None = None, catalog: Catalog | None = None, generate: bool = False,
               llm: LLM | None = None, steps: Iterable[CustomStep] = (),
               ansible: AnsibleOptions | None = None, ansible_secrets: AnsibleSecrets | None = None,
               batches: Sequence[Batch] | None = None, max_fail: int | str | None = None,
               scratch: Scratch | None = None, plan_out: Path | None = None,
               saved_plan: Path | None = None, parent: str | None = None) -> RunReport:
    """Run ``plan``, ``install``, ``verify`` or ``uninstall`` of an integration (a name or an Integration).

    The curated role runs unless ``generate`` asks for the generated variant (see ``generate``).
    ``inventory`` is one Ansible inventory source or several (``-i`` given more than once); ``ansible`` holds
    the connection and privilege options an operator gives ``ansible-playbook``, ``ansible_secrets`` the
    become and vault passwords. ``batches`` (sizes like ``[1, "25%", "100%"]``) and ``max_fail`` (a
    percentage) roll an install or uninstall out batch by batch; each left None comes from the ``rollout``
    settings.

    ``confirm(hosts) -> bool``, when given, is asked before hosts are changed, with each host's plan: before
    apply (after the plan step) and before uninstall (after a check-mode preview of it); a no leaves the
    hosts unchanged. ``scratch`` decides where the run's private files go (default: ``/dev/shm``, else the
    ``secrets_dir`` setting). ``parent`` names the run this one works for (a generation's gate).

    Everything that can be checked before touching a host is checked first (integration, parameters,
    inventory, limit, a safe folder for the run's secrets); a failure there raises and starts no playbook.
    Host outcomes are in the report.
    """
    from .lifecycle import ACTIONS
    from .params import resolve

    if action not in ACTIONS:
        raise IntegrationError(f"unknown action {action!r}")
    settings = settings or load_settings()
    rollout = _rollout(action, settings, batches, max_fail)
    ansible = ansible or AnsibleOptions()
    catalog = catalog or Catalog.for_settings(settings)
    found = integration if not isinstance(integration, str) else catalog.get(integration)
    scratch = scratch or Scratch.for_settings(settings)
    view = inspect_inventory(inventory, limit, options=ansible, secrets=ansible_secrets, scratch=scratch)
    secret_vars = [found.role_var(n) for n, p in found.manifest.parameters.items() if p.secret]
    require_vault_secret(view, (found.role_var(n) for n in found.manifest.parameters), ansible, ansible_secrets)
    provided = view.defined_everywhere(found.role_var(n) for n in found.manifest.parameters)
    if saved_plan is not None:
        variables = _plan_variables(saved_plan, found, action, variables)
    try:
        params = resolve(found, variables, prompt=prompt, require=action in ("plan", "install"), provided=provided)
    finally:
        if saved_plan is not None:
            Path(variables[0][1:]).unlink(missing_ok=True)
    _refuse_secrets_on_disk(scratch, params.secrets, ansible_secrets)
    ansible_secrets = _with_inventory_secrets(ansible_secrets, view, secret_vars)
    targets = view.hosts
    generated = None
    run_id = new_run_id()  # before generation: its gates' runs name this one as their parent
    if generate:
        found, generated = _generated(found, settings, llm, inventory, limit, variables, parent=run_id)
    if not found.has_role:
        raise IntegrationError(f"{found.name} has no curated role in {found.role_dir}",
                               hint="generate one from its knowledge with --generate")
    saved = None
    if saved_plan is not None:  # refused here, before any run directory or playbook, when it no longer holds
        from .lifecycle import entry_playbooks, fingerprint

        saved = SavedPlan.read(saved_plan)
        saved.check(found.name, targets, fingerprint(found, entry_playbooks(found), params.extravars))
    require_free_space(settings.runs_dir)
    changes_hosts = action in ("install", "uninstall")
    planned = rollout.plan(targets)
    with _locks(settings).hold(targets if changes_hosts else (), run_id):
        run = RunDir.create(settings.runs_dir, run_id)
        created = datetime.now(UTC).isoformat()
        lifecycle = _lifecycle(found, sources(inventory), targets, params, run, settings, limit=limit,
                               on_event=on_event, confirm=confirm, cancel=cancel, steps=tuple(steps),
                               ansible=ansible, ansible_secrets=ansible_secrets, rollout=planned, scratch=scratch,
                               saved=saved)
        # Resume continues with the very batches, holds the run to its saved plan and refuses content
        # changed since (the fingerprint); only a rolling run has a rollout, only install --plan a saved plan.
        optional: dict[str, Any] = {}
        if planned.batched:
            optional["rollout"] = planned.to_record()
        if saved is not None:
            optional["saved_plan"] = asdict(saved)
        if parent is not None:
            optional["parent"] = parent
        run.write_request(RunRequest(
            action=action, integration=found.name, inventory=[str(p.resolve()) for p in sources(inventory)],
            limit=limit, targets=targets, parameters=params.recorded(), ansible=ansible.recorded(), created=created,
            source=found.origin, generation=generated, fingerprint=lifecycle.fingerprint, **optional))
        with run.owned():
            _record_marker(run, lifecycle)
            report = lifecycle.execute(action)
        if plan_out is not None and action == "plan":
            SavedPlan.of(report, params.recorded(), limit).write(plan_out)
        return report


def _plan_variables(saved_plan: Path, found: Integration, action: str, variables: Sequence[str]) -> list[str]:
    """The parameters of a saved plan as ``-e @FILE`` (secrets are not in it: given again as usual)."""
    import tempfile

    import yaml

    if action != "install":
        raise IntegrationError(f"a saved plan is applied with install, not {action}")
    if variables:
        raise IntegrationError("--var cannot be combined with --plan: the saved plan fixes the parameters",
                               hint="plan again with the new parameters")
    saved = SavedPlan.read(saved_plan)
    names = {found.role_var(n): n for n, p in found.manifest.parameters.items() if not p.secret}
    values = {names[k]: v for k, v in saved.parameters.items() if k in names}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="intagent-plan-", delete=False) as fh:
        yaml.safe_dump(values, fh)
    return [f"@{fh.name}"]


MIN_FREE_BYTES = 16 * 1024 * 1024  # a run's record (journal, events, playbooks) with room to spare


def require_free_space(runs_dir: Path, minimum: int = MIN_FREE_BYTES) -> None:
    """Refuse to start a run (ConfigError, exit 3) whose record the runs folder may not have room for: a
    run that cannot record what it does to hosts must not start."""
    where = runs_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < minimum:
        raise ConfigError(f"the runs folder {runs_dir} has {free // 1024} KiB free; a run needs "
                          f"{minimum // (1024 * 1024)} MiB to be recorded: nothing was run",
                          hint="free space there, or set runs_dir to another folder")


def _rollout(action: str, settings: Settings, batches: Sequence[Batch] | None,
             max_fail: int | str | None) -> Rollout:
    """The rollout asked for: each of ``batches`` and ``max_fail`` given wins over its setting.

    Only install and uninstall roll out in batches: the settings do not apply to the other actions, and
    asking for batches there is an error, as is a bad size or limit (IntegrationError, exit 5).
    """
    if action not in ("install", "uninstall"):
        if batches:
            raise IntegrationError(f"batches apply to install and uninstall, not to {action}")
        return Rollout()
    configured = settings.rollout.rollout()
    try:
        return Rollout.of(configured.batches if batches is None else batches,
                          configured.max_fail if max_fail is None else max_fail)
    except ValueError as exc:
        raise IntegrationError(f"bad rollout: {exc}") from None


def _refuse_secrets_on_disk(scratch: Scratch, secrets: dict[str, str], ansible_secrets: AnsibleSecrets | None) -> None:
    """ConfigError now, before any run directory or playbook, when the run has a secret to write (a secret
    parameter, a become or vault password) and no folder it may go to (``scratch``)."""
    passwords = ansible_secrets is not None and bool(ansible_secrets.become_password or ansible_secrets.vault_password)
    scratch.folder(secrets=bool(secrets) or passwords)


def _with_inventory_secrets(secrets: AnsibleSecrets | None, view: InventoryView,
                            secret_vars: list[str]) -> AnsibleSecrets:
    """``secrets`` plus the plain values of secret parameters the inventory holds, to be masked."""
    secrets = secrets or AnsibleSecrets()
    found = {str(v) for host in view.hosts for k, v in view.hostvars.get(host, {}).items()
             if k in secret_vars and isinstance(v, (str, int))}
    return dataclasses.replace(secrets, masked=tuple(sorted({*secrets.masked, *found}))) if found else secrets


def _locks(settings: Settings) -> HostLocks:
    return HostLocks(settings.runs_dir.parent / "locks")


def _lifecycle(found: Integration, inventory: list[Path], targets: list[str], params: ResolvedParams, run: RunDir,
               settings: Settings, *, ansible: AnsibleOptions | None = None,
               ansible_secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None,
               **options: Any) -> Lifecycle:
    """A Lifecycle wired to this settings' executor and learner (shared by run_action and resume)."""
    from .lifecycle import Lifecycle

    return Lifecycle(found, inventory, targets, params, run,
                     executor=make_executor(settings, ansible, ansible_secrets, scratch),
                     learner=_learner(settings), **options)


def _learner(settings: Settings) -> Callable[[RunReport], list[Path]] | None:
    """The improvement agent's entry point, or None when learning is switched off."""
    if not settings.learn:
        return None

    def learn(report: RunReport) -> list[Path]:
        from .improvement import learn as learn_from
        from .knowledge import KnowledgeBase

        with KnowledgeBase.for_settings(settings) as kb:
            return learn_from(report, kb)
    return learn


@dataclass(frozen=True)
class GenerationGates:
    """The builder's gates that need hosts (None: not run); each takes the generated integration and returns
    its findings, none when it passes."""

    check_mode: HostGate | None = None
    sandbox: HostGate | None = None


def generation_gates(settings: Settings, *, inventory: Inventories | None = None, limit: str | None = None,
                     variables: Sequence[str] = (), platform: str = "debian-12", sandbox: bool = False,
                     parent: str | None = None) -> GenerationGates:
    """The gates ``build`` takes: check mode on the target hosts (with an inventory) and the audit on the lab's
    sandbox host (with ``sandbox``). Each makes runs of its own, which name ``parent`` (the run that asked)
    and which the attempt records."""
    from .generation.builder import GateResult
    from .generation.policy import Finding

    given = tuple(variables)

    def check_mode(integration: Integration) -> GateResult:
        assert inventory is not None
        report = run_action("plan", integration, inventory, limit=limit, variables=given, settings=settings,
                            parent=parent)
        return GateResult([Finding("IA203", f"check mode on {host}: {'; '.join(h.failures[:2]) or h.status}")
                           for host, h in report.hosts.items()
                           if h.status not in (HostStatus.PLANNED, HostStatus.UNCHANGED)],
                          [{"gate": "check_mode", "run_id": report.run_id, "status": report.status}])

    def audited(integration: Integration) -> GateResult:
        from .audit import RELEASES, audit
        from .lab import Lab

        report = audit(integration, Lab(settings.lab), settings, release=RELEASES.get(platform), variables=given,
                       parent=parent)
        return GateResult([Finding(f.rule, str(f).removeprefix(f"{f.rule} ")) for f in report.findings],
                          [{"gate": f"sandbox {action}", "run_id": run_id, "status": report.statuses.get(action)}
                           for action, run_id in report.runs.items()])

    return GenerationGates(check_mode if inventory is not None else None, audited if sandbox else None)


def _generated(found: Integration, settings: Settings, llm: LLM | None, inventory: Inventories | None,
               limit: str | None, variables: Sequence[str], *, parent: str | None = None,
               ) -> tuple[Integration, dict[str, Any] | None]:
    """The generated variant of ``found`` (or the curated one when generation gives up and that is allowed)."""
    from .errors import GenerationFailed
    from .generation.service import build, use_sandbox

    gates = generation_gates(settings, inventory=inventory, limit=limit, variables=variables,
                             sandbox=use_sandbox(settings, log.warning), parent=parent)
    try:
        generation = build(found, settings, llm=llm, check_mode=gates.check_mode, sandbox=gates.sandbox)
    except GenerationFailed:
        if settings.llm.fallback_to_curated and found.has_role:
            return found, {"fallback": "curated role: generation gave up"}
        raise
    return generation.as_integration(found), generation.report()


def generate(integration: str, *, settings: Settings | None = None, inventory: Path | None = None,
             limit: str | None = None, variables: list[str] | tuple[str, ...] = (), out: Path | None = None,
             llm: LLM | None = None, platform: str = "debian-12",
             warn: Callable[[str], None] | None = None) -> tuple[Generation, dict[str, Any]]:
    """Generate and gate the playbooks of ``integration``; record a run; return (generation, report).
    The sandbox gate runs as the ``llm.sandbox`` setting says; ``warn`` hears why it was skipped."""
    from .generation.service import build, export, use_sandbox

    settings = settings or load_settings()
    found = Catalog.for_settings(settings).get(integration)
    if inventory is not None:
        resolve_hosts(inventory, limit)
    sandboxed = use_sandbox(settings, warn or log.warning)
    run_id = new_run_id()  # before the gates: their runs name this one as their parent
    gates = generation_gates(settings, inventory=inventory, limit=limit, variables=variables, platform=platform,
                             sandbox=sandboxed, parent=run_id)
    generation = build(found, settings, llm=llm, platform=platform, check_mode=gates.check_mode,
                       sandbox=gates.sandbox)
    run = RunDir.create(settings.runs_dir, run_id)
    run.write_request(RunRequest.new(action="generate", integration=integration, platform=platform,
                                     inventory=str(inventory) if inventory else None, limit=limit, targets=[]))
    export(generation, run.path / "generated")
    report = {**generation.report(), "sandbox": "passed" if sandboxed else "skipped", "status": "ok", "exit_code": 0,
              "run_id": run.id, "run_dir": str(run.path)}
    run.write_json(REPORT, report)
    if out is not None:
        export(generation, out)
    return generation, report


def resume(run_id: str, *, settings: Settings | None = None, on_event: StageEvent | None = None,
           cancel: threading.Event | None = None, catalog: Catalog | None = None,
           ansible_secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None) -> RunReport:
    """Continue an interrupted run from its checkpoint, in the same run directory and journal.

    An interrupted apply is reconciled first: check mode on the hosts whose state is unknown decides what
    still needs applying; nothing is re-applied blindly, nothing is assumed rolled back. A rolling run
    continues with the batches recorded in its ``request.json``: the batch it was in (its steps left),
    or the next one, and then the batches after it.
    """
    from .lifecycle import resume_point
    from .params import ResolvedParams, resolve

    settings = settings or load_settings()
    run = RunDir.open(settings.runs_dir, run_id)
    require_free_space(settings.runs_dir)
    run.keep_reserve()  # a run stopped by a full disk used its reserve to record where it stopped
    request = run.request()
    state = run.journal.state()
    if state.status in ("requested", "running"):
        if run.has_owner():
            raise ConfigError(f"run {run_id} is still running: nothing to resume")
        state = _record_crash(run, scratch or Scratch.for_settings(settings))
    if state.status != "interrupted":
        raise ConfigError(f"run {run_id} is {state.status}, not interrupted: nothing to resume")
    if request.action is None or request.integration is None or request.inventory is None:
        raise ConfigError(f"run {run_id}: its request.json names no action, integration or inventory: "
                          "nothing to resume")
    action = request.action
    found = (catalog or Catalog.for_settings(settings)).get(request.integration)
    if not found.has_role:
        raise IntegrationError(f"{found.name} has no curated role to resume with")
    ansible = AnsibleOptions.from_record(request.ansible or {})
    recorded_inventory = request.inventory
    inventory = [Path(p) for p in ([recorded_inventory] if isinstance(recorded_inventory, str) else recorded_inventory)]
    scratch = scratch or Scratch.for_settings(settings)
    view = inspect_inventory(inventory, request.limit, options=ansible, secrets=ansible_secrets, scratch=scratch)
    provided = view.defined_everywhere(found.role_var(n) for n in found.manifest.parameters)
    secrets = resolve(found, (), require=action in ("plan", "install"), provided=provided).secrets
    _refuse_secrets_on_disk(scratch, secrets, ansible_secrets)
    recorded = {k: v for k, v in request.parameters.items() if k not in secrets and v != MASK}
    params = ResolvedParams(recorded, secrets)
    secret_vars = [found.role_var(n) for n, p in found.manifest.parameters.items() if p.secret]
    ansible_secrets = _with_inventory_secrets(ansible_secrets, view, secret_vars)
    targets = view.hosts
    rollout = RolloutPlan.from_record(request.rollout) if request.rollout else None
    point = resume_point(action, state)
    with _locks(settings).hold(targets if action in ("install", "uninstall") else (), run.id):
        saved = SavedPlan(**request.saved_plan) if request.saved_plan else None
        lifecycle = _lifecycle(found, inventory, targets, params, run, settings, limit=request.limit,
                               on_event=on_event, cancel=cancel, ansible=ansible, ansible_secrets=ansible_secrets,
                               rollout=rollout, scratch=scratch, saved=saved)
        if request.fingerprint and lifecycle.fingerprint != request.fingerprint:
            raise ValidationFailed(f"run {run_id}: the role, its entry playbooks or its parameters changed since it "
                                   "started: nothing was resumed", hint="start a new run")
        for host, status in state.hosts.items():
            if host in lifecycle.hosts:
                lifecycle.hosts[host].status = HostStatus(status)
        if rollout is not None:
            _restore_changes(lifecycle.hosts, run.journal.events())
        with run.owned():
            _record_marker(run, lifecycle)
            return lifecycle.execute(action, resume=point)


def _record_marker(run: RunDir, lifecycle: Lifecycle) -> None:
    """Note the run marker every process of this run carries, so that a resume after a crash can stop
    what the dead controller left running."""
    run.marker_file.write_text(lifecycle.executor.marker)


def _record_crash(run: RunDir, scratch: Scratch) -> RunState:
    """A run whose process died without a word (SIGKILL, a crash, power loss) is recorded as interrupted
    where it stood: the hosts of the step it was in are unknown, and are reconciled like any interrupted run."""
    from .journal import RunInterrupted, fold

    marker = run.marker_file
    if marker.is_file():  # ansible-playbook and its workers outlive a controller killed by SIGKILL
        value = marker.read_text().strip()
        stopped = stop_marked(value, grace=10)
        if stopped:
            log.warning("run %s: stopped %d process(es) its dead controller left running", run.id, len(stopped))
        for private in scratch.leftovers(private_prefix(value)):  # its secret files, among others
            shutil.rmtree(private, ignore_errors=True)
    events = run.journal.events()
    current = fold(events).current
    hosts = next((tuple(e.get("hosts") or ()) for e in reversed(events)
                  if e.get("type") == "step_started" and e.get("step") == current), ()) if current else ()
    run.journal.append(RunInterrupted(current, hosts))
    return run.journal.state()


def _restore_changes(hosts: dict[str, HostReport], events: list[dict[str, Any]]) -> None:
    """The changed-task counts the journal holds per host and step: a host of a batch finished before the
    interruption is reported ``installed``, not ``unchanged``, when the resumed run ends."""
    for event in events:
        if event.get("type") == "step_finished":
            for host, outcome in (event.get("hosts") or {}).items():
                if host in hosts and (outcome or {}).get("changed"):
                    hosts[host].changed[str(event["step"])] = int(outcome["changed"])


def plan(integration: str | Integration, inventory: Inventories, **kwargs: Any) -> RunReport:
    """Check-mode run with diff: what would change on each host."""
    return run_action("plan", integration, inventory, **kwargs)


def install(integration: str | Integration, inventory: Inventories, **kwargs: Any) -> RunReport:
    """Plan, apply, verify, and roll back the hosts that failed."""
    return run_action("install", integration, inventory, **kwargs)


def verify(integration: str | Integration, inventory: Inventories, **kwargs: Any) -> RunReport:
    """Evidence per host that the integration works."""
    return run_action("verify", integration, inventory, **kwargs)


def uninstall(integration: str | Integration, inventory: Inventories, **kwargs: Any) -> RunReport:
    """Remove everything the integration owns."""
    return run_action("uninstall", integration, inventory, **kwargs)
