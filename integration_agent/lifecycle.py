"""The lifecycle of a curated integration: plan, apply, verify, recover.

Each action is a sequence of stages (data, below). A stage runs one entry point of the integration's
role on the hosts still in play and moves each host's state forward; per-host outcomes are values,
and only the final report decides the exit code.

A rolling run (a :class:`~integration_agent.rollout.RolloutPlan` with batches) runs the stages up to
recovery on one batch at a time; a batch whose failures exceed the limit stops the rollout, and the hosts
of later batches are never touched (``skipped``). Learning runs once, after the batches.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .catalog import ENTRY_POINTS, Integration
from .errors import ExecutionFailed, Interrupted, RecoveryFailed, TotalFailure, ValidationFailed, VerificationFailed
from .executor import Executor, HostRun, PlaybookRun, settle
from .journal import (
    BatchFinished,
    BatchStarted,
    HostOutcome,
    Journal,
    Note,
    RunFinished,
    RunInterrupted,
    RunRequested,
    RunState,
    StepFinished,
    StepStarted,
)
from .params import ResolvedParams
from .recovery import BY_ID, classify, classify_host, retry_delays, rollbacks
from .render import entry_playbook
from .rollout import RolloutPlan
from .runs import REPORT, RunDir
from .savedplan import SavedPlan, planned_tasks
from .secrets import Redactor
from .status import OUT_OF_PLAY, UNSETTLED, HostStatus, RunStatus
from .verifier import verdicts

ACTIONS: dict[str, tuple[str, ...]] = {
    "plan": ("plan",),
    "install": ("plan", "apply", "verify", "recover", "learn"),
    "verify": ("verify", "learn"),
    "uninstall": ("uninstall", "learn"),
}
APPLY_RETRIES = 3  # extra apply attempts for hosts whose failure is transient (package manager lock)
# Final host statuses that mean "ended as asked", per action.
SUCCESS: dict[str, frozenset[str]] = {
    "plan": frozenset({HostStatus.PLANNED, HostStatus.UNCHANGED}),
    "install": frozenset({HostStatus.INSTALLED, HostStatus.UNCHANGED}),
    "verify": frozenset({HostStatus.VERIFIED}),
    "uninstall": frozenset({HostStatus.UNINSTALLED, HostStatus.UNCHANGED}),
}
# The role entry point and Ansible mode of each stage.
STAGES: dict[str, dict[str, Any]] = {
    "plan": {"entry": "main", "check": True, "diff": True},
    "apply": {"entry": "main", "check": False, "diff": False},
    "verify": {"entry": "verify", "check": False, "diff": False},
    "recover": {"entry": "uninstall", "check": False, "diff": False},
    "uninstall": {"entry": "uninstall", "check": False, "diff": False},
    # What uninstall would remove, shown before asking (only when there is someone to ask).
    "preview": {"entry": "uninstall", "check": True, "diff": True},
}
# The steps that change hosts: with a ``confirm``, each is shown in check mode first and asked about.
# apply follows its own plan step; uninstall has none, so the question brings its preview.
CONFIRMED: dict[str, str] = {"apply": "applied", "uninstall": "uninstalled"}

StageEvent = Callable[[str, dict[str, Any]], None]
# The steps after the batches of a rolling run (with the custom steps after them): once, on every host.
AFTER_BATCHES = ("learn",)


@dataclass(frozen=True)
class StepView:
    """What a custom step sees: the run and every host's state at that point (a copy)."""

    run_id: str
    integration: str
    action: str
    hosts: dict[str, HostReport]


@dataclass(frozen=True)
class CustomStep:
    """A step added through the API without editing the coordinator: runs ``run`` after step ``after``.

    Whatever ``run`` returns (a string or a JSON-able value) is recorded in the run's journal.
    """

    name: str
    after: str
    run: Callable[[StepView], Any]


def step_table(action: str, custom: tuple[CustomStep, ...] = ()) -> list[str | CustomStep]:
    """The ordered steps of ``action``: the built-in stages with custom steps inserted after theirs."""
    table: list[str | CustomStep] = []
    for stage in ACTIONS[action]:
        table.append(stage)
        table.extend(step for step in custom if step.after == stage)
    return table


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run continues: the steps left (``reconcile`` first after an interrupted apply) and,
    in a rolling run, the batch they belong to (``in_batch``: that batch had started)."""

    steps: tuple[str, ...]
    batch: int = 1
    in_batch: bool = False


def resume_point(action: str, state: RunState) -> ResumePoint:
    """Where the interrupted run whose journal folds to ``state`` continues.

    Inside a batch, the batch's own steps that did not finish; between batches, the next batch from its
    start. An interrupted apply is reconciled in check mode first: nothing is re-applied blindly.
    """
    if state.batch is not None:
        return ResumePoint(_left(action, state.batch_steps), state.batch, in_batch=True)
    following = max((b["index"] for b in state.batches), default=0) + 1
    return ResumePoint(_left(action, state.steps_done), following)


def _left(action: str, done: list[str]) -> tuple[str, ...]:
    remaining = [s for s in ACTIONS[action] if s not in done]
    if action == "install" and "apply" in remaining:
        remaining = ["reconcile", *[s for s in remaining if s != "plan"]]
    return tuple(remaining)


def _ended_well(action: str, status: str) -> bool:
    """Whether a host ended its batch as asked (an installed host is ``verified`` until the run ends)."""
    return status in SUCCESS[action] or (action == "install" and status == HostStatus.VERIFIED)


def _name(step: str | CustomStep) -> str:
    return step.name if isinstance(step, CustomStep) else step


def _only(steps: list[str | CustomStep], names: tuple[str, ...] | None) -> list[str | CustomStep]:
    """``steps`` limited to ``names`` (None: all), ``reconcile`` first when named."""
    if names is None:
        return steps
    return [s for s in ["reconcile", *steps] if _name(s) in names]


def _split(table: list[str | CustomStep]) -> tuple[list[str | CustomStep], list[str | CustomStep]]:
    """The steps each batch runs, and those that run once after the batches."""
    cut = next((i for i, s in enumerate(table) if s in AFTER_BATCHES), len(table))
    return table[:cut], table[cut:]


@dataclass
class HostReport:
    """Where one host stands in a run."""

    host: str
    status: HostStatus = HostStatus.PENDING
    changed: dict[str, int] = field(default_factory=dict)
    evidence: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    unpredictable: list[str] = field(default_factory=list)
    needs_rollback: bool = False
    rollback_failed: bool = False
    cause: str | None = None  # why a host did not end as asked: a failure class id (recovery.CLASSES)


@dataclass
class RunReport:
    """The outcome of one action on one inventory; ``report.json`` in the run directory."""

    run_id: str
    integration: str
    action: str
    status: str
    exit_code: int
    hosts: dict[str, HostReport]
    run_dir: str
    fingerprint: str
    started: str
    finished: str
    # Rolling runs only (absent from a run without batches): what was asked, where it stopped, each batch.
    rollout: dict[str, Any] | None = None
    batches: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if k not in ("rollout", "batches") or v is not None}


def entry_playbooks(integration: Integration) -> dict[str, str]:
    """The playbook of each entry point, as a run renders them (part of its fingerprint)."""
    return {entry: entry_playbook(integration.name, entry, integration.manifest.facts) for entry in ENTRY_POINTS}


def chained_playbook(integration: Integration, stages: Sequence[str]) -> str:
    """One playbook of a play per stage in ``stages``, for stages that follow one another with nothing between
    (plan, apply, verify): one Ansible start-up instead of one per stage, and with Mitogen one interpreter per
    host. The plan play sets check and diff mode itself (intagent's strategy makes ``ansible_check_mode``
    follow it); a later play of an entry point an earlier one ran skips the argument spec check the earlier
    one made, and of a role whose main entry point is its preflight checks then its changes
    (``preflight_split``), it imports the changes alone. Ansible leaves a host that failed a play out of the
    plays after it; the executor keeps each later play's results apart (``PlaybookRun.later``)."""
    plays: list[str] = []
    checked: list[str] = []
    for stage in stages:
        entry = STAGES[stage]["entry"]
        validate = not checked or not spec_covered(integration.argument_specs, entry, checked)
        tasks = PREFLIGHT_SPLIT[1] if entry in checked and preflight_split(integration.role_dir, entry) else entry
        play = entry_playbook(integration.name, entry, integration.manifest.facts, check=STAGES[stage]["check"],
                              validate=validate, tasks_from=tasks)
        plays.append(play if not plays else play.removeprefix("---\n"))
        checked.append(entry)
    return "".join(plays)


# A main entry point that imports these two task files and nothing else: checks that change nothing and whose
# results no later task reads, then the changes.
PREFLIGHT_SPLIT = ("preflight", "install")


def preflight_split(role_dir: Path, entry: str) -> bool:
    """Whether ``entry`` of the role in ``role_dir`` is its main entry point split into preflight checks and
    changes (``PREFLIGHT_SPLIT``). A play that runs it again right after a play that ran it on the same hosts
    with the same variables (the dry run, in a chained playbook) imports the changes alone: Ansible left the
    hosts that failed a check out, and the others would pass them again."""
    tasks = role_dir / "tasks"
    return entry == "main" and all((tasks / f"{name}.yml").is_file() for name in PREFLIGHT_SPLIT)


def spec_covered(specs: dict[str, Any], entry: str, checked: Sequence[str]) -> bool:
    """Whether the argument spec of ``entry`` asks nothing that the specs of ``checked`` (entry points an
    earlier play validated, with the same variables) did not: every option of it is one of theirs, the same
    but for its description, and it has no rule across options."""
    spec = specs.get(entry) or {}
    if set(spec) - {"short_description", "description", "author", "options"}:
        return False  # required_if, mutually_exclusive, ...: not compared here

    def bare(option: Any) -> Any:
        return {k: v for k, v in option.items() if k != "description"} if isinstance(option, dict) else option

    theirs = [(specs.get(other) or {}).get("options") or {} for other in checked]
    return all(any(name in options and bare(options[name]) == bare(option) for options in theirs)
               for name, option in (spec.get("options") or {}).items())


def fingerprint(integration: Integration, playbooks: dict[str, str], extravars: dict[str, Any]) -> str:
    """Hash of everything that decides what a run does (secret values excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in integration.role_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(integration.role_dir)).encode())
        digest.update(path.read_bytes())
    for name in sorted(playbooks):
        digest.update(name.encode() + playbooks[name].encode())
    digest.update(json.dumps(extravars, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class _Handoff:
    """Journals the hand-off from plan to apply inside a chained playbook as it happens: when the apply play
    starts, the plan step finishes (each host planned, or failed or unreachable in the plan play, folded from
    the plan play's events the way the executor folds them) and the apply step starts. An interrupted or
    killed run is then known to have started changing hosts, and its resume reconciles them first."""

    def __init__(self, life: Lifecycle, hosts: list[HostReport]) -> None:
        self.life = life
        self.plan = {h.host: HostRun(h.host) for h in hosts}
        self.seen: dict[str, Any] = {}
        self.done = False

    def see(self, event: dict[str, Any]) -> None:
        if self.done:
            return
        if event.get("event") == "playbook_on_play_start" and event.get("stage") == "apply":
            self.done = True
            outcomes = {host: self._outcome(run) for host, run in self.plan.items()}
            self.life.journal.append(StepFinished("plan", outcomes))
            self.life.journal.append(StepStarted("apply", tuple(h for h, o in outcomes.items()
                                                                if o.status == HostStatus.PLANNED)))
            self.life.journaled |= {("finished", "plan"), ("started", "apply")}
        elif event.get("stage") == "plan":
            Executor.fold_event(event, self.plan, self.seen)

    def _outcome(self, run: HostRun) -> HostOutcome:
        status = (HostStatus.UNREACHABLE if run.unreachable else HostStatus.FAILED if run.failures
                  else HostStatus.PLANNED)
        return HostOutcome(status, 0, tuple(self.life.redact.text(f"plan: {f}") for f in run.failures))


class Lifecycle:
    """Runs one action of one integration against an inventory and reports per host."""

    def __init__(self, integration: Integration, inventory: Path | Sequence[Path], targets: list[str],
                 params: ResolvedParams, run: RunDir, *, executor: Executor, limit: str | None = None,
                 on_event: StageEvent | None = None, confirm: Callable[[dict[str, HostReport]], bool] | None = None,
                 cancel: threading.Event | None = None, steps: tuple[CustomStep, ...] = (),
                 learner: Callable[[Any], list[Any]] | None = None, sleep: Callable[[float], None] = time.sleep,
                 rollout: RolloutPlan | None = None, saved: SavedPlan | None = None) -> None:
        self.integration = integration
        self.inventory = inventory
        self.params = params
        self.run = run
        self.executor = executor
        self.limit = limit
        self.on_event = on_event
        self.confirm = confirm
        # Set by a signal (the CLI), or here when the run's record cannot be written (a full disk).
        self.cancel = cancel if cancel is not None else threading.Event()
        self.stop_reason: str | None = None  # why the run stopped, when it was not a signal
        self.hosts = {h: HostReport(h) for h in targets}
        # A rolling run: its plan, the hosts of the batch running (None: every host), the hosts whose
        # batch started, and where the rollout stopped.
        self.rollout = rollout if rollout is not None and rollout.batched else None
        self.batch: frozenset[str] | None = None
        self.attempted: set[str] = set()
        self.stopped: tuple[int, str] | None = None
        self.declined = False
        self.saved = saved  # install --plan FILE: apply only what that plan showed
        self.refused = False
        # The executor's own secrets (become and vault passwords) are masked in the journal and report too;
        # an executor that only implements ``run`` (a test fake) has none.
        self.redact = Redactor([*params.secrets.values(), *getattr(executor, "secret_values", ())])
        self.custom = tuple(steps)
        self.learner = learner
        self.sleep = sleep
        self.journal = Journal(run.journal_file, redact=self.redact, reserve=run.reserve)
        self.playbooks = entry_playbooks(integration)
        self.fingerprint = fingerprint(integration, self.playbooks, params.extravars)
        # The stages whose playbook also runs the stages after them, as later plays (see chained_playbook): set
        # per action in execute. The later plays' results wait in ``ahead`` until their step takes them, and
        # verify's per host in ``verified``.
        self.chain: dict[str, tuple[str, ...]] = {}
        self.ahead: dict[str, PlaybookRun] = {}
        self.unfinished = False  # the last playbook with later plays stopped before its end
        # Steps a chained playbook journaled as it went (plan finished, apply started), in the steps running now.
        self.journaled: set[tuple[str, str]] = set()
        self.verified: dict[str, PlaybookRun] = {}

    def execute(self, action: str, *, resume: ResumePoint | None = None) -> RunReport:
        """Run the steps of ``action`` (or, resuming, those left at ``resume``), journaling every hand-off."""
        started = datetime.now(UTC).isoformat()
        for entry, text in self.playbooks.items():
            self.run.playbook(f"{entry}.yml", text)
        if resume is None:
            self.journal.append(RunRequested(action, self.integration.name, tuple(self.hosts),
                                             self.params.recorded()))
        table = step_table(action, self.custom)
        self.chain = self._chain([_name(step) for step in table], resumed=resume is not None)
        for stage, later in self.chain.items():
            self.run.playbook(f"{stage}.yml", chained_playbook(self.integration, (stage, *later)))
        with self.executor.fact_cache():
            if self.rollout is None:
                current = self._steps(action, _only(table, resume.steps if resume else None))
            else:
                current = self._batches(action, table, resume)
        self._finish(action)
        report = self._report(action, started)
        if report.status == RunStatus.INTERRUPTED:
            unknown = tuple(h for h, r in self.hosts.items() if r.status == HostStatus.UNKNOWN)
            self.journal.append(RunInterrupted(current, unknown, reason=self.stop_reason))
        else:
            self.journal.append(RunFinished(report.status, report.exit_code))
        self.run.reserve.unlink(missing_ok=True)  # needed no more (a resume sets it aside again)
        return report

    def _chain(self, names: list[str], resumed: bool) -> dict[str, tuple[str, ...]]:
        """Which stages run the stages after them in their own playbook: only stages with nothing between them
        (a custom step after apply sees the host before verify). The plan takes apply along only when nobody
        looks at it before apply (no question, no saved plan to compare), in a fresh run, with intagent's
        strategy (which gives a dry-run play its ``ansible_check_mode``)."""
        def then(stage: str, following: str) -> bool:
            return stage in names and names[names.index(stage) + 1:][:1] == [following]

        chain: dict[str, tuple[str, ...]] = {}
        if then("apply", "verify"):
            chain["apply"] = ("verify",)
        if (then("plan", "apply") and not resumed and self.confirm is None and self.saved is None
                and getattr(self.executor, "play_modes", False)):
            chain["plan"] = ("apply", *chain.get("apply", ()))
        return chain

    def _steps(self, action: str, steps: list[str | CustomStep]) -> str | None:
        """Run ``steps`` on the hosts in scope; the step running when the run stopped (or the last one)."""
        current = None
        self.journaled = set()
        for step in steps:
            current = _name(step)
            if self._declined(step):
                break
            if ("started", current) not in self.journaled:
                self.journal.append(StepStarted(current, tuple(h.host for h in self._in_play())))
            if isinstance(step, CustomStep):
                result = step.run(StepView(self.run.id, self.integration.name, action, copy.deepcopy(self.hosts)))
                if result is not None:
                    self.journal.append(Note(current, result if isinstance(result, str) else json.dumps(result)))
            else:
                getattr(self, f"_stage_{step}")(action)
            if self._cancelled():
                if ("started", "apply") in self.journaled and current == "plan":
                    current = "apply"  # the plan's playbook had gone on to apply
                break
            if ("finished", current) not in self.journaled:
                self.journal.append(StepFinished(current, self._outcomes(current)))
        return current

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _declined(self, step: str | CustomStep) -> bool:
        """With a ``confirm``, ask before a step that changes hosts, showing its plan; True when declined.
        With a saved plan, apply goes ahead only when this run's dry run shows what the saved one showed."""
        if self.saved is not None and step == "apply" and self._drifted():
            return True
        if self.confirm is None or not isinstance(step, str) or step not in CONFIRMED:
            return False
        if step == "uninstall":
            self._preview_uninstall()
        if self.confirm({h.host: h for h in self._scope()}):
            return False
        self.declined = True
        for host in self._in_play():
            host.status = HostStatus.UNCHANGED
            host.failures.append(f"not {CONFIRMED[step]}: the plan was not confirmed")
        return True

    def _drifted(self) -> bool:
        assert self.saved is not None
        drift = self.saved.drift({h.host: planned_tasks(h.changes) for h in self._in_play()})
        if not drift:
            return False
        self.refused = True
        for host in self._in_play():
            host.status = HostStatus.UNCHANGED
            saved, now = drift.get(host.host, (None, None))
            detail = f": saved {saved}, now {now}" if host.host in drift else " on another host"
            host.failures.append(f"not applied: the dry run differs from the saved plan{detail}")
        return True

    # -- batches ----------------------------------------------------------------------------------
    def _batches(self, action: str, table: list[str | CustomStep], resume: ResumePoint | None) -> str | None:
        """Each batch through the per-batch steps in turn, until one stops the rollout; then the rest once."""
        assert self.rollout is not None
        each, after = _split(table)
        if resume is None:
            self.journal.append(Note(None, self._describe_rollout()))
        current = None
        for index, hosts in enumerate(self.rollout.batches, start=1):
            if resume and index < resume.batch:
                self.attempted.update(hosts)  # finished before the run was interrupted
                continue
            resumed = resume is not None and resume.in_batch and index == resume.batch
            steps = _only(each, resume.steps) if resume is not None and resumed else each
            current = self._batch(action, index, hosts, steps, resumed)
            if self._cancelled() or self.stopped is not None:
                break
        self.batch = None
        if not self._cancelled():
            current = self._steps(action, _only(after, resume.steps if resume else None)) or current
        return current

    def _batch(self, action: str, index: int, hosts: tuple[str, ...], steps: list[str | CustomStep],
               resumed: bool) -> str | None:
        """One batch: its steps on its hosts only, then whether the rollout goes on (journaled)."""
        assert self.rollout is not None
        hosts = tuple(h for h in hosts if h in self.hosts)  # a resumed run's inventory may have lost one
        self.batch = frozenset(hosts)
        self.attempted.update(hosts)
        self.journal.append(Note(None, f"resuming batch {index}") if resumed else BatchStarted(index, hosts))
        current = self._steps(action, steps)
        if self._cancelled():
            return current
        failed = tuple(h for h in hosts if not _ended_well(action, self.hosts[h].status))
        reason = ""
        if self.declined:
            reason = "the plan was not confirmed"
        elif self.rollout.stops(len(failed), len(hosts)):
            reason = self.rollout.why_stopped(len(failed), len(hosts))
        status = (RunStatus.DECLINED if self.declined else RunStatus.FAILED if reason
                  else RunStatus.PARTIAL if failed else RunStatus.OK)
        self.journal.append(BatchFinished(index, hosts, status, failed, stopped=bool(reason), reason=reason))
        if reason:
            self.stopped = (index, reason)
        return current

    def _describe_rollout(self) -> str:
        assert self.rollout is not None
        sizes = ", ".join(str(b) for b in self.rollout.rollout.batches)
        return (f"rollout: {len(self.rollout.batches)} batch(es) of sizes {sizes}, "
                f"max-fail {self.rollout.max_fail:g}% per batch")

    def _outcomes(self, step: str) -> dict[str, HostOutcome]:
        return {h.host: HostOutcome(h.status, h.changed.get(step, 0), tuple(h.failures), h.evidence)
                for h in self._scope()}

    # -- stages -----------------------------------------------------------------------------------
    def _scope(self) -> list[HostReport]:
        """The hosts the running step may touch: those of the running batch, or every host."""
        return [h for h in self.hosts.values() if self.batch is None or h.host in self.batch]

    def _in_play(self) -> list[HostReport]:
        return [h for h in self._scope() if h.status not in OUT_OF_PLAY]

    def _run(self, stage: str, hosts: list[HostReport]) -> PlaybookRun | None:
        if not hosts:
            return None
        spec = STAGES[stage]
        later = self.chain.get(stage, ())
        playbook = self.run.playbooks_dir / (f"{stage}.yml" if later else f"{spec['entry']}.yml")
        if stage == "apply" or "apply" in later:
            self._check_fingerprint()
        on_event = self.on_event
        handoff = _Handoff(self, hosts) if stage == "plan" and "apply" in later else None

        def seen(event: dict[str, Any]) -> None:
            if handoff is not None:
                handoff.see(event)
            if on_event is not None:
                on_event(event.get("stage") or stage, event)

        # A chained playbook's plays set their own modes (only its plan play is a dry run).
        result = self.executor.run(
            playbook, self.inventory, limit=",".join(h.host for h in hosts), extravars=self.params.extravars,
            secrets=self.params.secrets, check=spec["check"] and not later, diff=spec["diff"] and not later,
            events_file=self.run.events_file, stage=stage, later=later, roles_path=self.integration.roles_path,
            on_event=seen, cancel=self.cancel)
        self._count_changes(stage, hosts, result)
        self.unfinished = bool(later) and not result.completed and not result.refused
        for step in later:
            if (ran := result.play(step)) is not None:
                self.ahead[step] = ran
        if result.record_error:  # the executor stopped the playbook: what it does can no longer be recorded
            self.stop_reason = result.record_error
            self.cancel.set()
        return result

    @staticmethod
    def _count_changes(stage: str, hosts: list[HostReport], result: PlaybookRun) -> None:
        for host in hosts:
            outcome = result.hosts.get(host.host)
            if outcome is not None:
                host.changed[stage] = outcome.changed

    def _settle(self, host: HostReport, outcome: HostRun | None, result: PlaybookRun, stage: str) -> bool:
        """Record a host's failure in ``stage``; return True when the host succeeded."""
        settled = settle(outcome, result, stage)
        if settled.status is not None:
            host.status = settled.status
        host.failures.extend(settled.failures)
        return settled.succeeded

    def _check_mode(self, hosts: list[HostReport], label: str, stage: str = "plan") -> list[HostReport]:
        """Check-mode run of ``stage`` (the plan, or uninstall's preview): hosts become planned or unchanged;
        return those that failed it."""
        result = self._run(stage, hosts)
        failed: list[HostReport] = []
        if result is None:
            return failed
        for host in hosts:
            outcome = result.hosts.get(host.host)
            if self._settle(host, outcome, result, label):
                assert outcome is not None
                host.changes, host.unpredictable = outcome.changes, outcome.unpredictable
                host.status = HostStatus.PLANNED if outcome.changed else HostStatus.UNCHANGED
            elif host.status == HostStatus.PENDING:
                failed.append(host)
        return failed

    def _stage_plan(self, action: str) -> None:
        hosts = self._in_play()
        for host in self._check_mode(hosts, "plan"):
            host.status = HostStatus.FAILED
        if self.unfinished:  # a plan playbook that went on to apply stopped: any host may be changed part way
            for host in hosts:
                if host.status in (HostStatus.PLANNED, HostStatus.UNCHANGED):
                    host.status = HostStatus.UNKNOWN
                    host.failures.append("apply: the playbook stopped before it finished (no result for this host)")

    def _preview_uninstall(self) -> None:
        """What uninstall would remove on each host (check mode), for the question; hosts it fails on are
        left alone."""
        for host in self._check_mode(self._in_play(), "preview", stage="preview"):
            host.status = HostStatus.FAILED

    def _stage_reconcile(self, action: str) -> None:
        """After an interrupted apply: learn each host's real state in check mode before going on."""
        hosts = [h for h in self._scope() if h.status == HostStatus.UNKNOWN or h.status in UNSETTLED]
        for host in hosts:
            host.status = HostStatus.PENDING
        for host in self._check_mode(hosts, "reconcile"):
            # It may have been changed part way: clean it up rather than guess.
            host.status, host.needs_rollback = HostStatus.FAILED, action == "install"

    def _stage_apply(self, action: str) -> None:
        hosts = self._in_play()
        delays = retry_delays(BY_ID["package_manager_lock"], APPLY_RETRIES)
        touched: set[str] = set()  # hosts an attempt changed: only they need a rollback if the lock never frees
        # The plan's playbook applied already (its second play), unless it stopped before that play.
        ahead = self.ahead.pop("apply", None)
        if ahead is None and "apply" in self.chain.get("plan", ()):
            return  # no host went on to the apply play (each failed the plan, or the playbook stopped)
        while hosts:
            result: PlaybookRun | None
            if ahead is not None:
                result, ahead = ahead, None
                self._count_changes("apply", hosts, result)
            else:
                result = self._run("apply", hosts)
            if result is None:
                return
            touched.update(h.host for h in hosts if h.changed.get("apply"))
            verify = self.ahead.pop("verify", None)
            retry = []
            for host in hosts:
                outcome = result.hosts.get(host.host)
                if self._settle(host, outcome, result, "apply"):
                    host.status = HostStatus.APPLIED
                    if verify is not None:  # verified by the same playbook: the verify step reads it
                        self.verified[host.host] = verify
                    continue
                if host.status in (HostStatus.UNREACHABLE, HostStatus.UNKNOWN) or result.refused:
                    continue  # a refused playbook ran nothing: failed, with nothing to roll back
                cause = classify("apply", outcome.failures[0] if outcome and outcome.failures else "")
                if cause.transient:
                    retry.append((host, cause.id))
                    continue
                # A host the package repository never reached was not changed: nothing to roll back.
                untouched = cause.strategy == "stop" and host.host not in touched
                host.status, host.needs_rollback = HostStatus.FAILED, not untouched
            cancelled = self.cancel is not None and self.cancel.is_set()
            if retry and delays and not cancelled:
                for host, why in retry:
                    host.failures.append(f"apply: {why} is transient: retrying")
                self.sleep(delays.pop(0))
                hosts = [host for host, _ in retry]
            else:
                for host, why in retry:  # it never went away: a host no attempt changed is left as it was
                    if not cancelled:
                        host.failures.append(f"apply: {why} persisted through {APPLY_RETRIES + 1} attempts: "
                                             "giving up")
                    host.status, host.needs_rollback = HostStatus.FAILED, host.host in touched
                hosts = []

    def _stage_verify(self, action: str) -> None:
        """The verifier's verdict on each host in play; an install rolls back the hosts that failed it."""
        hosts = self._in_play()
        # Hosts the apply playbook verified in its second play; the others (none, unless the action has no
        # apply or a custom step runs between) in a verify playbook of their own.
        results = {h.host: self.verified.pop(h.host) for h in hosts if h.host in self.verified}
        for host in hosts:  # what _run records of the hosts it runs, for those the apply playbook verified
            if host.host in results and (outcome := results[host.host].hosts.get(host.host)) is not None:
                host.changed["verify"] = outcome.changed
        rest = [h for h in hosts if h.host not in results]
        ran = self._run("verify", rest)
        if ran is not None:
            results.update(dict.fromkeys((h.host for h in rest), ran))
        for host in hosts:
            if host.host not in results:
                continue
            result = results[host.host]
            verdict = verdicts([host.host], result)[host.host]
            if verdict.answered:
                host.evidence = verdict.evidence
            host.status = verdict.status
            host.failures.extend(verdict.failures)
            if verdict.status == HostStatus.FAILED:
                host.needs_rollback = action == "install"

    def _stage_recover(self, action: str) -> None:
        hosts = [h for h in self._scope() if h.needs_rollback and h.status == HostStatus.FAILED]
        result = self._run("recover", hosts)
        if result is None:
            return
        found = rollbacks([h.host for h in hosts], result)
        for host in hosts:
            if found[host.host].rolled_back:
                host.status = HostStatus.ROLLED_BACK
            else:
                host.rollback_failed = True
                host.failures.extend(found[host.host].failures)

    def _stage_learn(self, action: str) -> None:
        """Failures become knowledge: classified, de-duplicated notes for the integration (never fatal)."""
        failed = (HostStatus.FAILED, HostStatus.ROLLED_BACK)
        if self.learner is None or not any(h.status in failed for h in self.hosts.values()):
            return
        try:
            notes = self.learner(SimpleNamespace(integration=self.integration.name, action=action,
                                                 run_id=self.run.id, hosts=self.hosts))
        except Exception as exc:  # learning must never fail a run
            self.journal.append(Note("learn", f"learning failed: {type(exc).__name__}: {exc}"))
            return
        if notes:
            self.journal.append(Note("learn", "recorded: " + ", ".join(str(n) for n in notes)))

    def _stage_uninstall(self, action: str) -> None:
        hosts = self._in_play()
        result = self._run("uninstall", hosts)
        assert result is not None
        for host in hosts:
            outcome = result.hosts.get(host.host)
            if self._settle(host, outcome, result, "uninstall"):
                assert outcome is not None
                host.status = HostStatus.UNINSTALLED if outcome.changed else HostStatus.UNCHANGED
            elif host.status not in (HostStatus.UNREACHABLE, HostStatus.UNKNOWN):  # pending, or planned by the preview
                host.status = HostStatus.FAILED

    def _check_fingerprint(self) -> None:
        now = fingerprint(self.integration, self.playbooks, self.params.extravars)
        if now != self.fingerprint:
            raise ExecutionFailed("the role or its parameters changed between plan and apply; nothing was applied",
                                  hint="run the command again to plan the new content")

    # -- outcome ----------------------------------------------------------------------------------
    def _finish(self, action: str) -> None:
        interrupted = self._cancelled()
        if interrupted:
            self.executor.stop_leftovers()
        self._skip_unattempted(interrupted)
        for host in self.hosts.values():
            # UNKNOWN too: a playbook stopped before it reported on the host (which says only "no result").
            stopped = host.status in UNSETTLED or host.status in (HostStatus.FAILED, HostStatus.UNKNOWN)
            if interrupted and stopped and not host.rollback_failed:
                host.status = HostStatus.UNKNOWN  # stopped part way: its state is not known until reconciled
                host.failures.append(f"interrupted: {self.stop_reason or 'the run was stopped'} before this "
                                     "host finished")
            if action == "install" and host.status == HostStatus.VERIFIED:
                host.status = HostStatus.INSTALLED if host.changed.get("apply", 0) else HostStatus.UNCHANGED
            if host.status in UNSETTLED and action == "install":
                host.status = HostStatus.UNKNOWN  # stopped before it could be verified
            host.failures = [self.redact.text(f) for f in host.failures]

    def _skip_unattempted(self, interrupted: bool) -> None:
        """A rolling run: the hosts of batches that never started were not touched at all."""
        if self.rollout is None:
            return
        if self.stopped is not None:
            why = f"skipped: the rollout stopped after batch {self.stopped[0]} ({self.stopped[1]})"
        else:
            why = "skipped: the run was interrupted before this host's batch started"
        for host in self.hosts.values():
            if host.host not in self.attempted:
                host.status = HostStatus.SKIPPED
                host.failures.append(why)

    def _classify(self) -> None:
        """Each host that did not end as asked gets the class of its first failure (license_rejected, ...)."""
        for host in self.hosts.values():
            cls = classify_host(host)
            host.cause = cls.id if cls is not None else None

    def _report(self, action: str, started: str) -> RunReport:
        statuses = [h.status for h in self.hosts.values()]
        good = sum(1 for s in statuses if s in SUCCESS[action])
        exit_code, status = 0, RunStatus.OK
        if any(h.rollback_failed for h in self.hosts.values()):
            exit_code, status = RecoveryFailed.exit_code, RunStatus.ROLLBACK_FAILED
        elif self.stopped is not None:
            # Some hosts were attempted and the others never touched: a partial result whatever the canary did.
            exit_code, status = ExecutionFailed.exit_code, RunStatus.PARTIAL
        elif good < len(statuses):
            if action == "verify":
                exit_code = VerificationFailed.exit_code
            else:
                exit_code = TotalFailure.exit_code if good == 0 else ExecutionFailed.exit_code
            status = RunStatus.FAILED if good == 0 else RunStatus.PARTIAL
        if self.refused:
            exit_code, status = ValidationFailed.exit_code, RunStatus.REFUSED
        if self._cancelled():
            exit_code, status = Interrupted.exit_code, RunStatus.INTERRUPTED
        self._classify()
        report = RunReport(run_id=self.run.id, integration=self.integration.name, action=action, status=status,
                           exit_code=exit_code, hosts=self.hosts, run_dir=str(self.run.path),
                           fingerprint=self.fingerprint, started=started,
                           finished=datetime.now(UTC).isoformat())
        if self.rollout is not None:
            report.rollout, report.batches = self._rollout_report()
        self.run.write_json(REPORT, self.redact(report.to_json()))
        return report

    def _rollout_report(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What was asked, where it stopped, and each planned batch's status (from the whole journal, so
        batches run before a resume count too; a batch never started is ``skipped``)."""
        assert self.rollout is not None
        folded = {b["index"]: b for b in self.journal.state().batches}
        batches = []
        for index, hosts in enumerate(self.rollout.batches, start=1):
            status = folded.get(index, {}).get("status", "skipped")
            batches.append({"index": index, "hosts": list(hosts),
                            "status": "interrupted" if status == "running" else status})
        rollout = {"batches": list(self.rollout.rollout.batches), "max_fail": self.rollout.max_fail,
                   "stopped_after": self.stopped[0] if self.stopped else None,
                   "reason": self.stopped[1] if self.stopped else None}
        return rollout, batches
