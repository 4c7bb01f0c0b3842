"""The workflow journal: the append-only record of a run's hand-offs, and the state folded from it.

Every hand-off between the steps of a run is a frozen message. The coordinator appends it to
``journal.jsonl`` in the run directory *before* the next step starts: one JSON line per message,
flushed and fsynced, numbered from 1 and chained to the line before by a short hash.

The journal is the workflow tracker. The state of a run is never stored, only derived by folding the
events (:func:`fold`); the checkpoint is the last step that finished, and a resumed run appends to
the same journal, so its whole history stays in one place.

A crash can leave a torn last line (a write that never returned). Reading skips it with a note;
the next append drops it before writing. Anything else that breaks the numbering or the chain means
the file was edited, and the journal refuses to be read or extended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self, cast

from .errors import IntagentError
from .status import HostStatus

log = logging.getLogger(__name__)

# Fields the journal adds to every line; they are not part of a message.
ENVELOPE = ("seq", "at", "prev")


class JournalError(IntagentError):
    """The journal of a run was modified (a line removed, edited or reordered), cannot be read or written."""

    full = False  # the write failed because the disk is full


# -- messages ---------------------------------------------------------------------------------------

class Record:
    """A frozen dataclass written as a JSON object and read back, by one converter for every message.

    ``to_dict`` gives the fields in their order (``type`` first for a message; tuples as lists, nested
    records as objects); a field with ``metadata={"omit_empty": True}`` is left out while empty.
    ``from_dict`` reads them back by their types: a field missing or null (or empty, for an ``omit_empty``
    one) takes its default (None where it may be None), and values are converted to the field's type, so
    older lines still read.
    """

    def to_dict(self) -> dict[str, Any]:
        kind = getattr(type(self), "TYPE", None)
        body: dict[str, Any] = {"type": kind} if kind else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]  # every Record is a dataclass
            value = getattr(self, f.name)
            if not (f.metadata.get("omit_empty") and not value):
                body[f.name] = _plain(value)
        return body

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            raw = data.get(f.name)
            if f.metadata.get("omit_empty") and not raw:
                raw = None  # empty is as good as left out
            if raw is not None:
                values[f.name] = _typed(hints[f.name], raw)
            elif type(None) in typing.get_args(hints[f.name]):
                values[f.name] = f.default if f.default is not dataclasses.MISSING else None
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f.name)
        return cls(**values)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of ``cls`` (the module's annotations are strings), once per class."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _typed(hint: Any, raw: Any) -> Any:
    """``raw`` (not None) as a value of the type ``hint``: str, int, bool, a record, or a tuple, dict or
    optional of those."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return _typed(next(a for a in args if a is not type(None)), raw)
    if origin is tuple:
        return tuple(_typed(args[0], v) for v in raw)
    if origin is dict or hint is dict:
        if args and isinstance(args[1], type) and issubclass(args[1], Record):
            return {str(k): args[1].from_dict(v) for k, v in raw.items()}
        return dict(raw)
    if isinstance(hint, type) and issubclass(hint, Record):
        return hint.from_dict(raw)
    if hint in (str, int, bool):
        return hint(raw)
    return raw


@dataclass(frozen=True)
class HostOutcome(Record):
    """How one host came out of one step."""

    status: str
    changed: int = 0
    failures: tuple[str, ...] = ()
    evidence: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunRequested(Record):
    """A run was asked for. ``parameters`` are already redacted by the caller."""

    TYPE: ClassVar[str] = "run_requested"
    action: str
    integration: str = ""
    targets: tuple[str, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepStarted(Record):
    """A step of the run starts on ``hosts``."""

    TYPE: ClassVar[str] = "step_started"
    step: str
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepFinished(Record):
    """A step finished; the outcome of each host it ran on."""

    TYPE: ClassVar[str] = "step_finished"
    step: str
    hosts: dict[str, HostOutcome] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFinished(Record):
    """The run ended with this status and exit code."""

    TYPE: ClassVar[str] = "run_finished"
    status: str
    exit_code: int


@dataclass(frozen=True)
class RunInterrupted(Record):
    """The run stopped during ``step`` (None: between steps); where ``hosts`` stand is unknown."""

    TYPE: ClassVar[str] = "run_interrupted"
    step: str | None
    hosts: tuple[str, ...] = ()
    # Why, when it was not a signal (a full disk under the runs folder); written only then.
    reason: str | None = field(default=None, metadata={"omit_empty": True})


@dataclass(frozen=True)
class BatchStarted(Record):
    """Batch ``index`` (from 1) of a rolling run starts on ``hosts``."""

    TYPE: ClassVar[str] = "batch_started"
    index: int
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchFinished(Record):
    """Batch ``index`` ended: ``status`` ok, partial (failures within max-fail), failed (more failures than
    max-fail) or declined (its plan was not confirmed); ``failed`` are its hosts that did not end as asked.
    ``stopped``: the rollout ends here, for ``reason``; no later batch is touched."""

    TYPE: ClassVar[str] = "batch_finished"
    index: int
    hosts: tuple[str, ...] = ()
    status: str = "ok"
    failed: tuple[str, ...] = ()
    stopped: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Note(Record):
    """Free text worth keeping in the history (a decision, a skipped step, a resume)."""

    TYPE: ClassVar[str] = "note"
    step: str | None
    text: str = ""


Message = (RunRequested | StepStarted | StepFinished | RunFinished | RunInterrupted | BatchStarted | BatchFinished
           | Note)
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (RunRequested, StepStarted, StepFinished, RunFinished, RunInterrupted, BatchStarted,
                              BatchFinished, Note)}


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """The message a journal line (or ``to_dict()``) holds; envelope fields (seq, at) are ignored."""
    kind = data.get("type")
    if kind not in MESSAGE_TYPES:
        raise JournalError(f"unknown journal message type {kind!r}")
    try:
        return MESSAGE_TYPES[kind].from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JournalError(f"malformed {kind} message: {exc!r}") from exc


# -- the file ---------------------------------------------------------------------------------------

def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:16]


class Journal:
    """The append-only ``journal.jsonl`` of one run.

    ``path`` is the file itself. ``redact`` is applied to each message's dict before it is written
    (e.g. a :class:`~integration_agent.secrets.Redactor` built from the run's secrets).
    """

    def __init__(self, path: Path, redact: Callable[[Any], Any] | None = None, *, reserve: Path | None = None) -> None:
        self.path = Path(path)
        self.redact = redact
        self.reserve = reserve  # a file set aside on the same disk, freed when the disk is full (see _write)
        self.notes: list[str] = []  # what the last read noticed (a torn last line)

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, message: Message) -> int:
        """Write ``message`` as the next line, on disk (fsynced) before returning; its seq number."""
        if not hasattr(message, "to_dict") or getattr(message, "TYPE", None) not in MESSAGE_TYPES:
            raise TypeError(f"not a journal message: {message!r}")
        body = message.to_dict()
        if self.redact is not None:
            body = self.redact(body)
        body = {k: v for k, v in body.items() if k not in ("type", *ENVELOPE)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one writer at a time, even from two Journal objects
            with os.fdopen(os.dup(fd), "rb") as reader:
                reader.seek(0)
                data = reader.read()
            events, torn, last = self._parse(data)
            if torn:
                # A write that never returned (a crash): drop it, and say so in the history.
                os.ftruncate(fd, len(data) - len(torn))
                self.notes.append(f"dropped a torn last line ({len(torn)} bytes) left by an interrupted write")
                log.warning("%s: %s", self.path, self.notes[-1])
            seq = len(events) + 1
            lines = []
            if torn:
                note = Note(None, f"dropped a torn last line of {len(torn)} bytes (a write interrupted by a crash)")
                line = self._line(seq, last, {k: v for k, v in note.to_dict().items() if k != "type"}, Note.TYPE)
                lines.append(line)
                last, seq = line, seq + 1
            lines.append(self._line(seq, last, body, message.TYPE))
            self._write(fd, b"".join(line + b"\n" for line in lines), len(data) - len(torn))
        finally:
            os.close(fd)  # closing releases the lock
        if created:
            _fsync_dir(self.path.parent)
        return seq

    def _write(self, fd: int, text: bytes, size: int) -> None:
        """Append ``text`` whole and on disk, or not at all: a full disk leaves the journal as it was (the
        part written is cut off again) and says so, naming the journal. A journal with a reserve frees it
        the first time the disk is full and tries once more: the room to record where the run stopped."""
        try:
            self._write_once(fd, text, size)
        except JournalError as exc:
            if not exc.full or self.reserve is None or not self.reserve.exists():
                raise
            self.reserve.unlink()
            self._write_once(fd, text, size)

    def _write_once(self, fd: int, text: bytes, size: int) -> None:
        try:
            rest = memoryview(text)
            while rest:  # a write may take only part of the text (a nearly full disk): go on until all is
                rest = rest[os.write(fd, rest):]  # written or the disk says it is full
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            if exc.errno == errno.ENOSPC:
                error = JournalError(f"{self.path}: no space left on the device: this step of the run cannot be "
                                     "recorded, so the run stops here", hint="free space where runs_dir is, then "
                                     "resume the run (intagent resume RUN)")
                error.full = True
                raise error from None
            raise JournalError(f"{self.path}: cannot write the journal: {exc.strerror}") from None

    @staticmethod
    def _line(seq: int, prev: bytes | None, body: dict[str, Any], kind: str) -> bytes:
        record = {"seq": seq, "at": datetime.now(UTC).isoformat(), "prev": _digest(prev) if prev else None,
                  "type": kind, **body}
        return json.dumps(record, default=str, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first, as ``{"seq", "at", "type", ...message fields}``.

        A torn last line is skipped (see :attr:`notes`); a gap, an edit or a reordering raises
        :class:`JournalError`.
        """
        self.notes = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        events, torn, _ = self._parse(data)
        if torn:
            self.notes.append(f"skipped a torn last line ({len(torn)} bytes): a write interrupted by a crash")
            log.warning("%s: %s", self.path, self.notes[-1])
        return [{k: v for k, v in e.items() if k != "prev"} for e in events]

    def messages(self) -> list[Message]:
        return [message_from_dict(e) for e in self.events()]

    def state(self) -> RunState:
        return fold(self.events())

    def _parse(self, data: bytes) -> tuple[list[dict[str, Any]], bytes, bytes | None]:
        """(events, torn tail bytes, last complete raw line); raises when the file was tampered with."""
        # Only newline-terminated lines were written whole; whatever follows the last newline is torn.
        complete, newline, torn = data.rpartition(b"\n")
        events: list[dict[str, Any]] = []
        last: bytes | None = None
        for number, line in enumerate(complete.split(b"\n") if newline else [], start=1):
            where = f"{self.path}: line {number}"
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise JournalError(f"{where} is not JSON: the journal was modified or damaged") from exc
            if not isinstance(event, dict) or event.get("type") not in MESSAGE_TYPES:
                raise JournalError(f"{where} is not a journal event")
            if event.get("seq") != number:
                raise JournalError(f"{where} has seq {event.get('seq')!r}, expected {number}: "
                                   "lines were removed, added or reordered")
            if event.get("prev") != (_digest(last) if last is not None else None):
                raise JournalError(f"{where} does not follow the line before it: the journal was edited")
            events.append(event)
            last = line
        return events, torn, last


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- state ------------------------------------------------------------------------------------------

@dataclass
class RunState:
    """Where a run stands, derived from its journal only."""

    status: str = "requested"  # requested | running | interrupted | finished
    action: str | None = None
    integration: str | None = None
    targets: list[str] = field(default_factory=list)
    checkpoint: str | None = None  # the last step that finished
    current: str | None = None  # a step that started and has not finished
    hosts: dict[str, str] = field(default_factory=dict)  # last known status per host
    exit_code: int | None = None
    steps_done: list[str] = field(default_factory=list)
    # A rolling run: every batch started so far ({index, hosts, status}; status "running" until it
    # finishes), the batch that started and has not finished, and the steps finished inside it.
    batches: list[dict[str, Any]] = field(default_factory=list)
    batch: int | None = None
    batch_steps: list[str] = field(default_factory=list)

    def remaining(self, steps: Iterable[str]) -> list[str]:
        """The steps of ``steps`` (an action's table) not finished yet: where a resume starts."""
        return [s for s in steps if s not in self.steps_done]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def apply(state: RunState, event: Mapping[str, Any] | Message) -> RunState:
    """The state after ``event`` (a journal dict or a message); ``state`` is not changed."""
    data: Mapping[str, Any] = event if isinstance(event, Mapping) else event.to_dict()
    kind = data.get("type")
    if kind == RunRequested.TYPE:
        targets = [str(t) for t in data.get("targets") or ()]
        return RunState(status="requested", action=data.get("action"), integration=data.get("integration"),
                        targets=targets, hosts={t: HostStatus.PENDING for t in targets})
    new = dataclasses.replace(state, targets=list(state.targets), hosts=dict(state.hosts),
                              steps_done=list(state.steps_done), batches=[dict(b) for b in state.batches],
                              batch_steps=list(state.batch_steps))
    if kind == StepStarted.TYPE:
        new.status, new.current = "running", data.get("step")
    elif kind == StepFinished.TYPE:
        step = cast(str, data.get("step"))  # names, as intagent writes them (StepFinished.to_dict)
        for host, outcome in (data.get("hosts") or {}).items():
            new.hosts[host] = cast(str, outcome.get("status")) if isinstance(outcome, Mapping) else str(outcome)
        new.status, new.current, new.checkpoint = "running", None, step
        new.steps_done.append(step)
        if new.batch is not None:
            new.batch_steps.append(step)
    elif kind == BatchStarted.TYPE:
        new.batch, new.batch_steps = int(data["index"]), []
        new.batches = [b for b in new.batches if b["index"] != new.batch]
        new.batches.append({"index": new.batch, "hosts": list(data.get("hosts") or ()), "status": "running"})
    elif kind == BatchFinished.TYPE:
        for batch in new.batches:
            if batch["index"] == int(data["index"]):
                batch["status"] = str(data.get("status") or "ok")
        new.batch, new.batch_steps = None, []
    elif kind == RunInterrupted.TYPE:
        new.status = "interrupted"
        if data.get("step") is not None:
            new.current = data.get("step")
        for host in data.get("hosts") or ():
            new.hosts[host] = HostStatus.UNKNOWN
    elif kind == RunFinished.TYPE:
        new.status, new.exit_code, new.current = "finished", data.get("exit_code"), None
    elif kind == Note.TYPE:
        pass
    else:
        raise JournalError(f"unknown journal event type {kind!r}")
    return new


def fold(events: Iterable[Mapping[str, Any] | Message]) -> RunState:
    """The state of a run from its events alone (no I/O): ``reduce(apply, events, RunState())``."""
    return functools.reduce(apply, events, RunState())
