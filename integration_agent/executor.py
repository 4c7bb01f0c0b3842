"""The executor: runs one playbook with ansible-runner and turns its events into per-host results.

Each run gets a fresh private data dir on a memory file system (``/dev/shm``; see ``scratch`` for a
machine without one), so that ansible-runner's own artifacts (which hold the command line, environment
and raw events) never reach the disk; only redacted events are kept, in the caller's run directory.
Secret variables are handed to Ansible in a 0600 vars file in that private dir, which is removed when
the run ends.

``Executor`` runs Ansible here; ``streaming.StreamingExecutor`` sends the same job to a worker process
and shares everything else (event folding, redaction, events file, secrets file).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .ansible_env import (
    REQUIRED_ENV,
    AnsibleEnvironment,
    AnsibleOptions,
    AnsibleSecrets,
    layered,
    quote_args,
    user_strategy,
)
from .mitogen import strategy_env
from .paths import ANSIBLE_CFG, ROLES_DIR
from .scratch import Scratch
from .secrets import Redactor
from .status import HostStatus

MARKER_ENV = "INTAGENT_RUN_MARKER"
EventSink = Callable[[dict[str, Any]], None]
Status = Literal["successful", "failed", "timeout", "canceled", "error"]

# The settings every Ansible process of intagent's needs, whatever the environment says.
SAFE_ENV = dict(REQUIRED_ENV)
# This checkout's settings and curated roles, for intagent's own checks (syntax check, lint, collection
# build). Runs against hosts use the operator's Ansible configuration instead (``ansible_env.layered``).
LOCAL_ENV = {"ANSIBLE_CONFIG": str(ANSIBLE_CFG), "ANSIBLE_ROLES_PATH": str(ROLES_DIR)}


def venv_path() -> str:
    """PATH with this Python's scripts first, so a venv's ``ansible-playbook`` (or ``ansible-runner``)
    is found even when the venv is not activated."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return path if bindir in path.split(os.pathsep) else bindir + os.pathsep + path


def ansible_env(**extra: str) -> dict[str, str]:
    """Variables for intagent's own Ansible checks on this machine: the safety settings, this checkout's
    ansible.cfg and roles, and the venv on PATH."""
    return {**SAFE_ENV, **LOCAL_ENV, "PATH": venv_path(), **extra}


# Seconds apt waits for its lock on a host per attempt (apt's own default), handed to every playbook as
# this variable; the entry playbooks make it apt's ``lock_timeout`` (``module_defaults`` in role.yml.j2).
PACKAGE_LOCK_VAR = "intagent_package_lock_timeout"
CANCEL_POLL = 0.2  # seconds between two looks at whether a running playbook must stop
MAX_FORKS = 50  # hosts changed at once when nobody chose forks (ansible.forks, -f, the operator's ansible.cfg)
DEFAULT_PACKAGE_LOCK_TIMEOUT = 60

# A task that prints a ``<name>_evidence`` fact (discover.yml); a role's verify sets its own with set_fact.
EVIDENCE_TASK = "intagent evidence"
SET_FACT = frozenset({"set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact"})
# How a host's failure begins when Ansible refused the playbook, and how many lines of its error are kept
# (the error and where: "Origin: <file>:<line>:<column>").
REFUSED = "Ansible refused the playbook before running it"
REFUSAL_LINES = 2

_HOST_EVENTS = {
    "runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


@dataclass
class HostRun:
    """What one host did during one playbook run."""

    host: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: bool = False
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    failures: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)  # changed tasks, with their diff if any
    unpredictable: list[str] = field(default_factory=list)  # tasks check mode could not predict
    evidence: dict[str, Any] | None = None  # what a verify entry point reported

    @property
    def succeeded(self) -> bool:
        return not self.unreachable and self.failed == 0


@dataclass
class PlaybookRun:
    """The outcome of one ansible-runner invocation."""

    status: Status
    rc: int
    hosts: dict[str, HostRun]
    completed: bool  # False when the final stats event never came (interrupted or crashed)
    events: int = 0
    record_error: str | None = None  # the events file could not be written (a full disk): the run was stopped
    # Ansible's own error when it refused the playbook before its first play (YAML, a role or plugin it cannot
    # find): nothing ran on any host.
    refused: str | None = None
    # The hosts of the playbook's later plays, by the stage each one stands for (``hosts`` is the first play's).
    later: dict[str, dict[str, HostRun]] = field(default_factory=dict)

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.hosts.items() if not r.succeeded)

    def play(self, stage: str) -> PlaybookRun | None:
        """The later play that stood for ``stage``, as a run of its own (None: the playbook had no such play)."""
        if stage not in self.later:
            return None
        return PlaybookRun(status=self.status, rc=self.rc, hosts=self.later[stage], completed=self.completed,
                           events=self.events, record_error=self.record_error, refused=self.refused)


@dataclass(frozen=True)
class Settled:
    """What one playbook run says of one host: whether it succeeded, the status that alone decides (``failed``
    or ``unknown`` when the run has no result for it, ``unreachable``), and its failures labelled by stage."""

    succeeded: bool
    status: HostStatus | None = None
    failures: tuple[str, ...] = ()


def settle(outcome: HostRun | None, result: PlaybookRun, stage: str) -> Settled:
    """How ``outcome`` (a host's part of ``result``, None when it has none) came out of ``stage``."""
    if outcome is None and result.refused:
        return Settled(False, HostStatus.FAILED, (f"{stage}: {REFUSED}: {result.refused}",))
    if outcome is None:
        why = "interrupted" if not result.completed else "skipped it"
        return Settled(False, HostStatus.UNKNOWN if not result.completed else HostStatus.FAILED,
                       (f"{stage}: no result for this host (run {why})",))
    failures = tuple(f"{stage}: {f}" for f in outcome.failures)
    if outcome.unreachable:
        return Settled(False, HostStatus.UNREACHABLE, failures)
    if not outcome.succeeded:
        return Settled(False, None, failures)
    return Settled(True)


@dataclass
class Job:
    """One playbook run, as ``Executor.run`` prepared it for ansible-runner."""

    private: Path  # the fresh private data dir, removed when the run ends
    playbook: Path
    inventories: list[Path]
    limit: str | None
    extravars: dict[str, Any]
    options: list[str]  # --check, --diff, and the operator's connection and privilege flags
    secret_files: list[Path]  # the 0600 secret vars file and vault password file, inside ``private``
    env: dict[str, str]  # required settings, defaults and run marker: no path of this machine
    ansible: AnsibleEnvironment  # the operator's Ansible environment with intagent's layer (local paths)
    roles_path: Path | None  # searched before the curated roles
    forks: int | None  # None: the operator's (or intagent's default) forks setting
    verbosity: int
    handle: Callable[[dict[str, Any]], bool]  # folds, redacts and records one event
    redact: Redactor

    @property
    def secret_args(self) -> list[str]:
        """The flags that hand the secret files to ansible-playbook (absolute paths)."""
        return secret_args(self.secret_files, lambda path: str(path))


def secret_args(files: list[Path], name: Callable[[Path], str]) -> list[str]:
    """``-e @secrets.json`` and ``--vault-password-file vault.pass`` for the files a run wrote."""
    flag = {"secrets.json": "-e", "vault.pass": "--vault-password-file"}
    args: list[str] = []
    for path in files:
        args += [flag[path.name], f"@{name(path)}" if path.name == "secrets.json" else name(path)]
    return args


def write_secret(path: Path, text: str) -> Path:
    """Create ``path`` 0600 with ``text`` (it must not exist: nobody else's file is reused)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


class Executor:
    """Runs playbooks through ansible-runner's Python API, in the operator's Ansible environment."""

    def __init__(self, *, forks: int | None = None, timeout: int | None = None,
                 package_lock_timeout: int = DEFAULT_PACKAGE_LOCK_TIMEOUT, mitogen: bool = False,
                 options: AnsibleOptions | None = None, secrets: AnsibleSecrets | None = None,
                 scratch: Scratch | None = None) -> None:
        self.options = options or AnsibleOptions()
        self.forks = self.options.forks or forks
        self.timeout = timeout
        self.package_lock_timeout = package_lock_timeout
        # intagent's variant of the operator's strategy: Mitogen's when asked for (the setting checked that it
        # can run here), else Ansible's with play-level modes.
        self.strategy_env = strategy_env(user_strategy(), mitogen)
        self.secrets = secrets or AnsibleSecrets()
        self.scratch = scratch or Scratch()  # where each run's private dir goes (refused for secrets on disk)
        # Every process this executor starts (ansible-playbook, its workers, ssh masters) inherits this
        # marker, so an interrupted run can find and stop all of them.
        self.marker = uuid.uuid4().hex
        self._facts: Path | None = None  # the run's fact cache, while fact_cache() holds it

    @property
    def play_modes(self) -> bool:
        """Whether a play's own check and diff mode reach its templates (intagent's strategy runs), so that a
        dry-run play and the plays that apply can share one playbook."""
        return "ANSIBLE_STRATEGY_PLUGINS" in self.strategy_env

    @property
    def secret_values(self) -> list[str]:
        """The become and vault passwords this executor hands to Ansible (to be masked everywhere)."""
        return self.secrets.values()

    def _forks(self, ansible: AnsibleEnvironment, limit: str | None) -> int | None:
        """The forks asked for (-f, the forks setting, the operator's Ansible configuration), else one per
        host of the playbook's limit, up to MAX_FORKS: every host of a batch is changed at once."""
        if (self.forks is not None or ansible.origin("ANSIBLE_FORKS") != "intagent (default)" or not limit
                or any(c in limit for c in "*?[]!&:~@")):  # a pattern, not a list of hosts: count unknown
            return self.forks
        return max(1, min(len(limit.split(",")), MAX_FORKS))

    @contextlib.contextmanager
    def fact_cache(self) -> Iterator[None]:
        """Within: the playbooks share one fact cache (a private dir named after the run marker, removed on
        the way out, or by a resume after a crash), so a run gathers each host's facts once, not once per
        playbook. Only where Ansible runs on this machine: a streaming worker gathers its own."""
        self._facts = self.scratch.private_dir(private_prefix(self.marker) + "facts-", secrets=False)
        try:
            yield
        finally:
            shutil.rmtree(self._facts, ignore_errors=True)
            self._facts = None

    def _fact_cache_args(self) -> tuple[dict[str, str], dict[str, str]]:
        """The environment and ansible-runner arguments of the run's fact cache (ansible-runner always sets
        a jsonfile cache: in the job's own artifacts unless it is given one)."""
        if self._facts is None:
            return {}, {}
        # smart: gather a host's facts unless the cache has them (the entry playbooks ask for facts).
        return {"ANSIBLE_GATHERING": "smart"}, {"fact_cache": str(self._facts), "fact_cache_type": "jsonfile"}

    def leftovers(self) -> list[int]:
        """PIDs of processes still running from this executor's runs."""
        return marked_processes(self.marker)

    def stop_leftovers(self, grace: float = 3.0) -> list[int]:
        """Terminate (then kill) every process left from this executor's runs; return their PIDs."""
        return stop_marked(self.marker, grace)


    def run(self, playbook: Path, inventory: Path | Sequence[Path], *, limit: str | None = None,
            extravars: Mapping[str, Any] | None = None, secrets: Mapping[str, str] | None = None,
            check: bool = False, diff: bool = False, events_file: Path | None = None, stage: str = "",
            later: Sequence[str] = (), roles_path: Path | None = None,
            on_event: EventSink | None = None, cancel: threading.Event | None = None) -> PlaybookRun:
        """Run ``playbook`` against ``inventory`` (one source or several); a failed play is a status,
        never an exception.

        ``stage`` labels the playbook's events; ``later`` labels its second and later plays, whose hosts are
        kept apart (``PlaybookRun.later``) and whose events carry their own label (``event["stage"]`` for
        ``on_event``, as in the events file)."""
        secrets = dict(secrets or {})
        if self.secrets.become_password:
            secrets["ansible_become_password"] = self.secrets.become_password
        redact = Redactor([*secrets.values(), *self.secret_values])
        # First: a run whose secrets would land on a disk is refused before anything starts.
        # Named after the run marker: a resume after a crash finds (and removes) what the dead run left.
        private = self.scratch.private_dir(private_prefix(self.marker),
                                           secrets=bool(secrets or self.secrets.vault_password))
        hosts: dict[str, HostRun] = {}
        seen: dict[str, Any] = {"stats": False, "count": 0, "record_error": None, "labels": tuple(later),
                                "later": {}}
        sink = open(events_file, "a", encoding="utf-8") if events_file else None  # noqa: SIM115 - closed below
        # A playbook whose events cannot be recorded is stopped like an interrupted one.
        cancel = cancel if cancel is not None else threading.Event()

        def handle(event: dict[str, Any]) -> bool:
            event = redact(event)
            seen["count"] += 1
            self.fold_event(event, hosts, seen)
            event["stage"] = _label(event, seen, stage)
            if sink and not seen["record_error"]:
                try:
                    sink.write(json.dumps({"stage": event["stage"], **_slim(event)}, default=str) + "\n")
                    sink.flush()
                except OSError as exc:
                    seen["record_error"] = f"{events_file} cannot be written ({exc.strerror})"
                    cancel.set()
            if on_event:
                on_event(event)
            return False  # never let ansible-runner write raw events to disk

        secret_files = []
        if secrets:
            secret_files.append(write_secret(private / "secrets.json", json.dumps(secrets)))
        if self.secrets.vault_password:
            secret_files.append(write_secret(private / "vault.pass", self.secrets.vault_password))
        options = [flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted]
        timeout = {"ANSIBLE_TIMEOUT": str(self.timeout)} if self.timeout else {}
        ansible = layered(roles_path=roles_path)
        portable = {k: v for k, v in ansible.env.items() if k not in ("ANSIBLE_CONFIG", "ANSIBLE_ROLES_PATH")}
        sources = [inventory] if isinstance(inventory, (str, Path)) else list(inventory)
        job = Job(private=private, playbook=playbook.resolve(), inventories=[Path(i).resolve() for i in sources],
                  limit=limit, extravars={**(extravars or {}), PACKAGE_LOCK_VAR: self.package_lock_timeout},
                  options=[*options, *self.options.playbook_args()], secret_files=secret_files,
                  env={**portable, **timeout, **self.strategy_env, MARKER_ENV: self.marker}, ansible=ansible,
                  roles_path=roles_path, forks=self._forks(ansible, limit), verbosity=self.options.verbosity,
                  handle=handle, redact=redact)
        try:
            status, rc = self._invoke(job, cancel)
            if cancel is not None and cancel.is_set():
                self.stop_leftovers()
        finally:
            if sink:
                with contextlib.suppress(OSError):  # what did not fit stays unwritten
                    sink.close()
            shutil.rmtree(private, ignore_errors=True)
        refused = None
        if not seen["stats"] and "play" not in seen and not cancel.is_set() and seen.get("refusal"):
            refused = " ".join(" ".join(seen["refusal"]).split())
        return PlaybookRun(status=status, rc=rc, hosts=hosts, completed=seen["stats"], events=seen["count"],
                           record_error=seen["record_error"], later=seen["later"], refused=refused)

    def _invoke(self, job: Job, cancel: threading.Event | None) -> tuple[Status, int]:
        """Run ``job`` with ansible-runner in this process, Ansible on this machine."""
        import ansible_runner  # heavy: imported only when a run happens

        # Ansible's controller-side scratch (rendered templates, module payloads) stays in the private dir
        # in memory, and goes with it, instead of ~/.ansible/tmp on disk.
        cache_env, cache_args = self._fact_cache_args()
        env = {**job.ansible.env, **job.env, **cache_env, "PATH": venv_path(),
               "ANSIBLE_LOCAL_TEMP": str(job.private / "tmp")}
        # ansible-runner looks at the cancel callback each time its wait for output times out; its default
        # of 5 s let a stopped playbook run on to its end. It reads the setting from env/settings only (a
        # ``settings`` argument is dropped when that file is missing).
        (job.private / "env").mkdir(exist_ok=True)
        (job.private / "env" / "settings").write_text(json.dumps({"pexpect_timeout": CANCEL_POLL}))
        runner = ansible_runner.run(
            private_data_dir=str(job.private), playbook=str(job.playbook),
            inventory=[str(i) for i in job.inventories], limit=job.limit, extravars=job.extravars,
            cmdline=quote_args([*job.options, *job.secret_args]) or None, envvars=env, forks=job.forks,
            verbosity=job.verbosity or None, quiet=True, suppress_env_files=True, suppress_output_file=True,
            event_handler=job.handle, cancel_callback=(lambda: cancel.is_set()) if cancel else None,
            project_dir=str(job.playbook.parent), **cache_args,
        )
        return runner.status, runner.rc if runner.rc is not None else -1

    @staticmethod
    def fold_event(event: dict[str, Any], hosts: dict[str, HostRun], seen: dict[str, Any]) -> None:
        """Fold one event into ``hosts`` (the first play's) or, in a later play that ``seen["labels"]`` names,
        into ``seen["later"][label]``. The final stats count every play: a later play's own counts (from its
        events) are taken back out of the first play's."""
        name = event.get("event", "")
        data = event.get("event_data") or {}
        later: dict[str, dict[str, HostRun]] = seen.setdefault("later", {})
        if name == "playbook_on_play_start":
            seen["play"] = seen.get("play", -1) + 1
            return
        if name == "verbose" and "play" not in seen:
            _note_refusal(str(event.get("stdout") or ""), seen)
            return
        if name == "playbook_on_stats":
            seen["stats"] = True
            for key, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"),
                              ("skipped", "skipped"), ("rescued", "rescued"), ("ignored", "ignored")):
                for host, count in (data.get(key) or {}).items():
                    setattr(hosts.setdefault(host, HostRun(host)), attr, count)
            for host in data.get("dark") or {}:
                # A host unreachable in a later play was reached in the first (or it would not have gone on).
                if not any(host in play and play[host].unreachable for play in later.values()):
                    hosts.setdefault(host, HostRun(host)).unreachable = True
            for play in later.values():
                for host, own in play.items():
                    first = hosts.setdefault(host, HostRun(host))
                    for attr in ("ok", "changed", "failed", "skipped"):
                        setattr(first, attr, max(0, getattr(first, attr) - getattr(own, attr)))
            return
        if name not in _HOST_EVENTS or not data.get("host"):
            return
        label = _later_label(seen)
        if label is not None:
            host = later.setdefault(label, {}).setdefault(data["host"], HostRun(data["host"]))
            _count(host, name, data)
        else:
            host = hosts.setdefault(data["host"], HostRun(data["host"]))
        result = data.get("res") or {}
        if name == "runner_on_unreachable":
            host.unreachable = True
            host.failures.append(f"{data.get('task', '')}: {result.get('msg', 'unreachable')}")
        elif name == "runner_on_failed" and not data.get("ignore_errors"):
            host.failures.append(f"{data.get('task', '')}: {_failure_message(result)}")
        task = data.get("task") or ""
        if not isinstance(result, dict):
            return
        # What a verify entry point proved: the ``<role>_evidence`` fact its set_fact reports (role.yml.j2 runs
        # no task of its own to print it), or what an evidence task prints (discover.yml).
        facts = result.get("ansible_facts") if data.get("task_action") in SET_FACT else None
        shown = result if task == EVIDENCE_TASK else facts if isinstance(facts, dict) else {}
        host.evidence = next((v for k, v in shown.items() if k.endswith("_evidence") and isinstance(v, dict)),
                             host.evidence)
        if name == "runner_on_skipped" or result.get("skipped"):
            reason = str(result.get("msg") or result.get("skip_reason") or "")
            if "check mode" in reason:
                host.unpredictable.append(f"{task}: {reason}")
            elif guarded_by_check_mode(str(data.get("task_path") or "")):
                host.unpredictable.append(f"{task}: skipped in check mode (its condition reads ansible_check_mode)")
        elif name == "runner_on_ok" and result.get("changed"):
            change: dict[str, Any] = {"task": task}
            if result.get("diff"):
                change["diff"] = result["diff"]
            host.changes.append(change)


@functools.lru_cache(maxsize=512)
def guarded_by_check_mode(task_path: str) -> bool:
    """Does the task at ``task_path`` (``file:line``, as Ansible reports it) mention ``ansible_check_mode``
    (in practice: a condition that skips it in check mode)? Such a task is skipped in a plan and runs in
    apply, so what it does cannot be predicted: the plan lists it rather than counting it as ok. Read from
    the task's own lines, up to its next sibling; a task that cannot be read is not guarded."""
    path, _, line = task_path.rpartition(":")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()[int(line) - 1:]
    except (OSError, ValueError):
        return False
    if not lines:
        return False
    dash = len(lines[0]) - len(lines[0].lstrip(" "))
    for text in lines:
        if text is not lines[0] and text.strip() and len(text) - len(text.lstrip(" ")) <= dash:
            break  # the next task at the same level, or the end of the enclosing block
        if "ansible_check_mode" in text:
            return True
    return False


def private_prefix(marker: str) -> str:
    """The name prefix of the private dirs of the run with ``marker``."""
    return f"intagent-run-{marker[:16]}-"


def marked_processes(marker: str) -> list[int]:
    """PIDs of processes whose environment carries the run marker ``marker`` (this process excluded)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if needle in fh.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def stop_marked(marker: str, grace: float = 3.0) -> list[int]:
    """Terminate (then kill) every process carrying ``marker``; return their PIDs. Also how a resumed run
    stops what a crashed controller left running (its marker is in the run directory)."""
    pids = marked_processes(marker)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in marked_processes(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    # Until they are gone: one still dying could write into (and so bring back) a private dir removed next.
    deadline = time.monotonic() + grace
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def _note_refusal(line: str, seen: dict[str, Any]) -> None:
    """Keep Ansible's error (its first lines) printed before any play: why it refused the playbook."""
    refusal: list[str] | None = seen.get("refusal")
    if refusal is None:
        if line.startswith(("[ERROR]: ", "ERROR! ")):
            seen["refusal"] = [line.split(" ", 1)[1]]
    elif len(refusal) < REFUSAL_LINES and line.strip():
        refusal.append(f"(at {line[8:].strip()})" if line.startswith("Origin: ") else line.strip())


def _later_label(seen: dict[str, Any]) -> str | None:
    """The label of the later play running now (None: the first play, or a play nobody labelled)."""
    index, labels = seen.get("play", 0), seen.get("labels", ())
    return labels[index - 1] if 0 < index <= len(labels) else None


def _label(event: dict[str, Any], seen: dict[str, Any], stage: str) -> str:
    """The stage an event belongs to: its later play's label, else the run's (the final stats are the run's)."""
    if event.get("event") == "playbook_on_stats":
        return stage
    return _later_label(seen) or stage


def _count(host: HostRun, name: str, data: dict[str, Any]) -> None:
    """Count one task result the way the final stats would (for a later play, which the stats do not split)."""
    result = data.get("res")
    result = result if isinstance(result, dict) else {}
    if name == "runner_on_ok":
        host.ok += 1
        host.changed += bool(result.get("changed"))
    elif name == "runner_on_failed":
        if data.get("ignore_errors"):
            host.ignored += 1
        else:
            host.failed += 1
    elif name == "runner_on_skipped":
        host.skipped += 1


def _failure_message(result: dict[str, Any]) -> str:
    msg = result.get("msg") or result.get("stderr") or result.get("module_stderr") or "failed"
    return str(msg).strip().splitlines()[0][:500] if str(msg).strip() else "failed"


def _slim(event: dict[str, Any]) -> dict[str, Any]:
    """The part of an event worth keeping in a run directory."""
    data = event.get("event_data") or {}
    keep = {k: data[k] for k in ("host", "task", "task_action", "play", "role", "res", "duration",
                                 "ok", "changed", "failures", "dark", "skipped") if k in data}
    return {"event": event.get("event"), "counter": event.get("counter"), "created": event.get("created"),
            "stdout": event.get("stdout", ""), "event_data": keep}
