"""The recovery agent's policy: why a host failed, and what to do about it.

A failure is one line of a host's report, ``"<stage>: <task>: <message>"`` (see :mod:`.lifecycle`).
:func:`classify` maps it to a :class:`FailureClass`, whose strategy the coordinator follows: retry a
transient failure (a package manager lock) with backoff (:func:`retry_delays`), roll back a persistent one,
stop and change nothing on an environmental cause (the repository unreachable), or mark the host unknown
(unreachable or interrupted: never rolled back). :func:`classify_host` names the cause of a host's outcome,
the ``cause`` of its report. :func:`rollbacks` reads the run of the uninstall entry point that rolls hosts
back. The improvement agent turns the same classes into knowledge (``improvement.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .status import HostStatus

if TYPE_CHECKING:  # only its type: the policy stays importable without the executor
    from .executor import PlaybookRun


@dataclass(frozen=True)
class FailureClass:
    """A kind of failure and what recovery should do about it."""

    id: str
    transient: bool  # worth retrying as is: the cause goes away by itself
    strategy: str  # "retry" | "rollback" | "unknown" (mark the host unknown) | "stop" (change nothing, report)
    description: str


# Tried in this order; the first class whose evidence matches wins. Classes recognised by their message come
# before verification_failed, which is recognised by its stage alone, so that a verify failure with a
# telling message (license key rejected, port taken, service down) keeps the more specific class.
CLASSES: tuple[FailureClass, ...] = (
    FailureClass("unreachable", False, "unknown",
                 "The host could not be reached; its state is unknown and it is never rolled back."),
    FailureClass("playbook_refused", False, "stop",
                 "Ansible refused the playbook before running any task (a YAML or syntax error, a role or plugin it "
                 "cannot find): nothing ran on the host, so nothing is rolled back. Ansible's error names the "
                 "file and line."),
    FailureClass("repository_unreachable", False, "stop",
                 "The package repository or download server could not be reached. Environmental and persistent: "
                 "fix the network, proxy or mirror; do not roll back a host that never changed, and do not ask "
                 "a model to rewrite the plan for it."),
    FailureClass("package_manager_lock", True, "retry",
                 "Another process held the package manager lock (unattended-upgrades, cloud-init); retry later."),
    FailureClass("checksum_mismatch", False, "rollback",
                 "A download did not match its expected checksum: wrong pinned checksum or tampered mirror."),
    FailureClass("service_failed_to_start", False, "rollback",
                 "The service was installed but systemd could not start it; see journalctl -u <service>."),
    FailureClass("license_rejected", False, "rollback",
                 "The vendor rejected the license key (invalid, wrong region or revoked)."),
    FailureClass("generation_gave_up", False, "stop",
                 "The model never produced a plan that passed the gates; nothing was run."),
    FailureClass("port_in_use", False, "rollback",
                 "The port the integration listens on was already taken by another process."),
    FailureClass("verification_failed", False, "rollback",
                 "The integration was applied but its verify entry point found it not working."),
    FailureClass("interrupted", False, "unknown",
                 "The run stopped before the host finished; its state is unknown until reconciled."),
    FailureClass("unknown", False, "rollback", "A failure intagent has no class for yet."),
)
BY_ID: dict[str, FailureClass] = {c.id: c for c in CLASSES}

# Evidence per class: case-insensitive regular expressions searched in "<task>: <message>".
PATTERNS: dict[str, tuple[str, ...]] = {
    "unreachable": (r"failed to connect to the host via ssh", r"data could not be sent to remote host"),
    "playbook_refused": (r"ansible refused the playbook before running it",),
    "repository_unreachable": (
        r"failed to fetch\b", r"could not connect to\b", r"temporary failure (?:resolving|in name resolution)",
        r"unable to connect\b", r"failed to update apt cache", r"some index files failed to download",
        r"could not resolve host", r"failed to download metadata for repo", r"cannot download repomd\.xml",
        r"(?:https?|ftp)://\S+.*connection refused", r"connection refused.*(?:https?|ftp)://",
        r"no package matching .* is available.*(?:fetch|cache|update|resolv)"),
    "package_manager_lock": (
        r"could not get lock\b", r"unable to acquire the dpkg frontend lock", r"is held by process",
        r"waiting for cache lock", r"waiting for process with pid \d+ to finish"),
    "checksum_mismatch": (r"checksum mismatch", r"checksum verification failed", r"sha256 checksum",
                          r"checksum for .+ did not match", r"hash sum mismatch"),
    "service_failed_to_start": (r"unable to (?:re)?start service", r"job for \S+ failed",
                                r"failed because the control process exited", r"start request repeated too quickly"),
    "license_rejected": (r"licen[cs]e[ _-]?key\b.{0,120}?\b(?:invalid|rejected|401|403)\b",
                         r"\b(?:invalid|rejected|401|403)\b.{0,120}?licen[cs]e[ _-]?key"),
    "generation_gave_up": (r"no valid plan for\b",),
    "port_in_use": (r"address already in use", r"\bport \d+\b.{0,40}?\b(?:taken|in use|occupied)\b"),
    "interrupted": (r"\(run interrupted\)", r"run was stopped before"),
}
# A stage that decides the class when no message evidence came first.
STAGE_CLASSES: dict[str, str] = {"verify": "verification_failed", "interrupted": "interrupted"}
# Stages where a class cannot apply: verify never fetches packages, so "connection refused" there is the
# integration's own endpoint, not a repository.
NOT_IN_STAGE: dict[str, frozenset[str]] = {"repository_unreachable": frozenset({"verify"})}
FAILED_STATUSES = frozenset({HostStatus.FAILED, HostStatus.ROLLED_BACK, HostStatus.UNREACHABLE, HostStatus.UNKNOWN})

_COMPILED = {cid: re.compile("|".join(f"(?:{p})" for p in ps), re.I | re.S) for cid, ps in PATTERNS.items()}


def classify(stage: str, message: str, *, unreachable: bool = False) -> FailureClass:
    """The class of one failure of ``stage`` (plan, apply, verify, ...); ``unreachable`` when Ansible said so."""
    stage = stage.strip().lower()
    for cls in CLASSES:
        if cls.id == "unreachable" and unreachable:
            return cls
        if stage in NOT_IN_STAGE.get(cls.id, ()):
            continue
        pattern = _COMPILED.get(cls.id)
        if STAGE_CLASSES.get(stage) == cls.id or (pattern is not None and pattern.search(message)):
            return cls
    return BY_ID["unknown"]


def split_failure(failure: str) -> tuple[str, str, str]:
    """``"apply: Install it: E: boom"`` -> ``("apply", "Install it", "E: boom")``; missing parts are ''."""
    stage, _, rest = failure.partition(": ")
    if not rest:
        return "", "", failure.strip()
    task, sep, message = rest.partition(": ")
    return (stage.strip(), task.strip(), message.strip()) if sep else (stage.strip(), "", rest.strip())


def report_field(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute of a report object, or a key of its JSON form (``report.json`` loaded as a dict)."""
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def classify_host(host_report: Any) -> FailureClass | None:
    """The class of a host's outcome (its first failure decides), or None when the host did not fail."""
    status, failures = report_field(host_report, "status", ""), list(report_field(host_report, "failures", None) or [])
    if status not in FAILED_STATUSES:
        return None
    if status == "unreachable":
        return BY_ID["unreachable"]
    if status == "unknown":
        return BY_ID["interrupted"]
    if not failures:
        return BY_ID["unknown"]
    stage, task, message = split_failure(str(failures[0]))
    return classify(stage, f"{task}: {message}" if task else message)


def retry_delays(cls: FailureClass, attempts: int = 3, base: float = 2.0) -> list[float]:
    """Seconds to wait before each retry: ``base * 2**n`` for a transient class, none otherwise."""
    if attempts < 0 or base <= 0:
        raise ValueError("attempts must be >= 0 and base > 0")
    return [base * 2 ** n for n in range(attempts)] if cls.transient else []


@dataclass(frozen=True)
class Rollback:
    """How rolling one host back (the uninstall entry point) went."""

    rolled_back: bool
    failures: tuple[str, ...] = ()  # why not, labelled "recover: ..."


def rollbacks(hosts: Iterable[str], result: PlaybookRun) -> dict[str, Rollback]:
    """The rollback of each of ``hosts`` from ``result``, the run of the uninstall entry point on them."""
    found = {}
    for host in hosts:
        outcome = result.hosts.get(host)
        if outcome is not None and outcome.succeeded:
            found[host] = Rollback(True)
        else:
            found[host] = Rollback(False, tuple(f"recover: {f}" for f in (outcome.failures if outcome else
                                                                           ["no result"])))
    return found
