"""The improvement agent: name why a host failed, and record each new cause as knowledge.

A failure is one line of a host's report, ``"<stage>: <task>: <message>"`` (see :mod:`.lifecycle`).
``recovery.classify`` maps it to a ``FailureClass`` (what the recovery agent does about it). :func:`learn` turns
the failures of a finished run into knowledge notes (``<learned_dir>/<integration>/``, the ``learned_dir``
setting: ``$XDG_DATA_HOME/intagent/learned`` by default, never the installed package), one per cause:
messages are normalised (hosts, IPs, numbers, temporary paths and run ids stripped) and hashed, so the same
cause seen on another host or in another run is not recorded twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IntegrationError
from .knowledge.documents import load_document, read_bounded
from .recovery import FailureClass, classify_host, report_field, split_failure
from .secrets import mask_secret_text

if TYPE_CHECKING:
    from .knowledge import KnowledgeBase



NOT_LEARNED = frozenset({"unreachable", "interrupted"})  # about the run or the network, not the integration

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



def _anonymise(text: str, hosts: Iterable[str]) -> str:
    """Host names and IP addresses replaced, so that a note names no machine of the fleet."""
    for host in sorted({h for h in hosts if len(h) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(host)}(?![\w-]|\.\w)", "<host>", text, flags=re.I)
    return _IPV6.sub("<ip>", _IPV4.sub("<ip>", text))


def normalise(text: str, hosts: Iterable[str] = ()) -> str:
    """The part of a failure message that stays the same across hosts and runs (for deduplication)."""
    text = _anonymise(mask_secret_text(text), hosts).lower()
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
    heading = f"{label} on {platform}: {task}" if task else f"{label} on {platform} during {stage}"
    title = mask_secret_text(heading)[:120]
    quoted = "\n".join(f"    {line}" for line in example.splitlines() or [""])
    where = f'in the {stage or "unknown"} stage' + (f', task "{task}"' if task else "")
    body = (f"# {title}\n\n"
            f"An `{report_field(report, 'action', 'install')}` of {report_field(report, 'integration')} "
            f"on {platform} failed "
            f"{where}.\n\n"
            f"class: {cls.id}\nstrategy: {cls.strategy}\ntransient: {'yes' if cls.transient else 'no'}\n"
            f"platform: {platform}\ndigest: {digest}\nfirst seen: run {report_field(report, 'run_id')}\n\n"
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
    integration = kb.catalog.get(str(report_field(report, "integration")))
    hosts: Mapping[str, Any] = report_field(report, "hosts", None) or {}
    known = _learned_digests(kb.learned_folder(integration.name))
    written: list[Path] = []
    for host in hosts.values():
        cls = classify_host(host)
        failures = list(report_field(host, "failures", None) or [])
        if cls is None or cls.id in NOT_LEARNED or not failures:
            continue
        stage, task, message = split_failure(str(failures[0]))
        if cls.id == "unknown" and _UNINFORMATIVE.match(message):
            continue
        digest = failure_digest(integration.name, cls, platform, normalise(f"{task}: {message}", hosts))
        if digest in known:
            continue
        example = _anonymise(mask_secret_text(message), hosts)[:1000]
        title, body = _note(report, cls, stage, _anonymise(task, hosts), example, platform, digest)
        written.append(kb.add_note(integration.name, title, body,
                                   source=f"intagent://runs/{report_field(report, 'run_id')}", applies_to=platform))
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
