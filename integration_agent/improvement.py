"""The improvement agent: name why a host failed, and record each new cause as knowledge.

A failure is one line of a host's report, ``"<stage>: <task>: <message>"`` (see :mod:`.lifecycle`).
:func:`classify` maps it to a :class:`FailureClass`, which tells the recovery agent what to do (retry a
transient lock, roll back, stop on an environmental cause, or mark the host unknown). :func:`learn` turns
the failures of a finished run into knowledge notes (``<learned_dir>/<integration>/``, the ``learned_dir``
setting: ``$XDG_DATA_HOME/intagent/learned`` by default, never the installed package), one per cause:
messages are normalised (hosts, IPs, numbers, temporary paths and run ids stripped) and hashed, so the same
cause seen on another host or in another run is not recorded twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IntegrationError
from .knowledge.documents import load_document, read_bounded
from .secrets import mask_secret_text
from .status import HostStatus

if TYPE_CHECKING:
    from .knowledge import KnowledgeBase



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
NOT_LEARNED = frozenset({"unreachable", "interrupted"})  # about the run or the network, not the integration
FAILED_STATUSES = frozenset({HostStatus.FAILED, HostStatus.ROLLED_BACK, HostStatus.UNREACHABLE, HostStatus.UNKNOWN})

_COMPILED = {cid: re.compile("|".join(f"(?:{p})" for p in ps), re.I | re.S) for cid, ps in PATTERNS.items()}
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
# Two or more colons and either "::" or a hex letter, so that a time of day (10:20:30) is not taken for one.
_IPV6 = re.compile(r"(?i)(?<![\w:])(?=[0-9a-f:]*(?:::|[a-f]))(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])")
_VOLATILE = (  # applied in order, after lower-casing
    (re.compile(r"\b\d{8}t\d{6}-[0-9a-f]{6}\b"), "<run>"),
    (re.compile(r"(?:/tmp|/var/tmp|/dev/shm|[~\w/.-]*/\.ansible/tmp)/[^\s'\"):;,]*"), "<tmp>"),
    (_IPV4, "<ip>"),
    (_IPV6, "<ip>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
)
_DIGEST_LINE = re.compile(r"^digest: ([0-9a-f]{16})\s*$", re.M)
_FIELD_LINE = re.compile(r"^(class|strategy|digest): (\S+)\s*$", re.M)
_UNINFORMATIVE = re.compile(r"^\s*(?:failed|unreachable|no result for this host.*)?\s*$", re.I)


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


def _field(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute of a report object, or a key of its JSON form (``report.json`` loaded as a dict)."""
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def classify_host(host_report: Any) -> FailureClass | None:
    """The class of a host's outcome (its first failure decides), or None when the host did not fail."""
    status, failures = _field(host_report, "status", ""), list(_field(host_report, "failures", None) or [])
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


def scrub(text: str) -> str:
    """``text`` with anything that looks like a secret masked (key=value, --token X, URL passwords, ...)."""
    return mask_secret_text(text)


def _anonymise(text: str, hosts: Iterable[str]) -> str:
    """Host names and IP addresses replaced, so that a note names no machine of the fleet."""
    for host in sorted({h for h in hosts if len(h) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-]|\.\w)", "<host>", text, flags=re.I)
    return _IPV6.sub("<ip>", _IPV4.sub("<ip>", text))


def normalise(text: str, hosts: Iterable[str] = ()) -> str:
    """The part of a failure message that stays the same across hosts and runs (for deduplication)."""
    text = _anonymise(scrub(text), hosts).lower()
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text.strip(" .")


def failure_digest(integration: str, cls: FailureClass, platform: str, normalised: str) -> str:
    """16 hex digits naming one cause: integration, class, platform and normalised message."""
    return hashlib.sha256("\0".join((integration, cls.id, platform, normalised)).encode()).hexdigest()[:16]


def _learned_notes(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if p.is_file()) if folder.is_dir() else []


def _learned_digests(folder: Path) -> set[str]:
    digests: set[str] = set()
    for path in _learned_notes(folder):
        try:
            digests.update(_DIGEST_LINE.findall(read_bounded(path).decode("utf-8", "replace")))
        except IntegrationError:
            continue  # an unreadable note cannot tell us anything; the index reports it
    return digests


def _note(report: Any, cls: FailureClass, stage: str, task: str, example: str, platform: str,
          digest: str) -> tuple[str, str]:
    """Title and markdown body of the note recording one cause."""
    label = cls.id.replace("_", " ").capitalize()
    title = scrub(f"{label} on {platform}: {task}" if task else f"{label} on {platform} during {stage}")[:120]
    quoted = "\n".join(f"    {line}" for line in example.splitlines() or [""])
    where = f'in the {stage or "unknown"} stage' + (f', task "{task}"' if task else "")
    body = (f"# {title}\n\n"
            f"An `{_field(report, 'action', 'install')}` of {_field(report, 'integration')} on {platform} failed "
            f"{where}.\n\n"
            f"class: {cls.id}\nstrategy: {cls.strategy}\ntransient: {'yes' if cls.transient else 'no'}\n"
            f"platform: {platform}\ndigest: {digest}\nfirst seen: run {_field(report, 'run_id')}\n\n"
            f"## Message\n\n{quoted}\n\n## What it means\n\n{cls.description}\n")
    return title, body


def learn(report: Any, kb: KnowledgeBase, *, platform: str = "debian-12") -> list[Path]:
    """Record each new failure cause of a finished run as a learned note; return the notes written.

    ``report`` is a :class:`~.lifecycle.RunReport` or its JSON form. Unreachable and interrupted hosts,
    and unknown failures without a message, teach nothing about the integration and are skipped. A cause
    already recorded (same digest in the integration's learned folder, from this run or an earlier one) is
    not written again.
    Raises :class:`~.errors.IntegrationError` when the integration is unknown or a note cannot be written.
    """
    integration = kb.catalog.get(str(_field(report, "integration")))
    hosts: Mapping[str, Any] = _field(report, "hosts", None) or {}
    known = _learned_digests(kb.learned_folder(integration.name))
    written: list[Path] = []
    for host in hosts.values():
        cls = classify_host(host)
        failures = list(_field(host, "failures", None) or [])
        if cls is None or cls.id in NOT_LEARNED or not failures:
            continue
        stage, task, message = split_failure(str(failures[0]))
        if cls.id == "unknown" and _UNINFORMATIVE.match(message):
            continue
        digest = failure_digest(integration.name, cls, platform, normalise(f"{task}: {message}", hosts))
        if digest in known:
            continue
        example = _anonymise(scrub(message), hosts)[:1000]
        title, body = _note(report, cls, stage, _anonymise(task, hosts), example, platform, digest)
        written.append(kb.add_note(integration.name, title, body,
                                   source=f"intagent://runs/{_field(report, 'run_id')}", applies_to=platform))
        known.add(digest)
    return written


def known_failures(integration: str, kb: KnowledgeBase) -> list[dict[str, Any]]:
    """The learned notes of ``integration`` for display: id, title, class, strategy, platform, source, ...

    ``class`` is None for a learned note that :func:`learn` did not write. Invalid notes are left out
    (the knowledge index reports them).
    """
    target = kb.catalog.get(integration)
    out: list[dict[str, Any]] = []
    for path in _learned_notes(kb.learned_folder(target.name)):
        try:
            doc = load_document(path, target.name, f"learned/{path.stem}")
        except IntegrationError:
            continue
        fields = dict(_FIELD_LINE.findall(doc.body))
        out.append({"id": f"{target.name}/{doc.doc_id}", "title": doc.title, "class": fields.get("class"),
                    "strategy": fields.get("strategy"), "platform": doc.applies_to, "digest": fields.get("digest"),
                    "source": doc.source, "retrieved": doc.retrieved, "path": str(path)})
    return out
