"""Run directories: every run has an id and a folder with its playbooks, redacted events and report."""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import secrets as _secrets
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .secrets import Redactor, mask_json_text, secret_values

if TYPE_CHECKING:
    from .journal import Journal

# The files of a run directory (RunDir), each named once here.
REQUEST = "request.json"  # what was asked: action, integration, inventory, targets, parameters (secrets masked)
REPORT = "report.json"  # how it ended, per host
EVENTS = "events.jsonl"  # Ansible's events, redacted and slimmed, labelled with their stage
JOURNAL = "journal.jsonl"  # the workflow journal: every hand-off between steps (see journal.py)
PLAYBOOKS = "playbooks"  # the entry playbooks the run rendered and ran
OWNER_LOCK = "owner.lock"  # flock-held by the process running the run
MARKER_FILE = "marker"  # the run marker its Ansible processes carry (see executor.MARKER_ENV)
RESERVE = "reserve"  # room the journal frees to record where a run stopped on a full disk
RESERVE_BYTES = 256 * 1024


class RunRequest(BaseModel):
    """What was asked of a run: its ``request.json``, written when the run starts and read by resume, the run
    history and promotion.

    One shape for every kind of run; a field is written only when the run set it (a ping has no integration,
    parameters or source; a generation has its platform; a rolling run its ``rollout``; ``install --plan``
    its ``saved_plan``), in the order of the fields below. Fields of records this version does not know are
    kept.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    action: str | None = None  # plan, install, verify, uninstall, ping, discover or generate
    integration: str | None = None
    platform: str | None = None  # generate: the platform the plan was generated for
    inventory: list[str] | str | None = None  # the inventory sources (resolved paths); generate: one, or None
    limit: str | None = None
    targets: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)  # secrets masked
    ansible: dict[str, Any] | None = None  # AnsibleOptions.recorded()
    created: str | None = None  # ISO time, UTC
    source: str | None = None  # where the integration comes from: "project" or its distribution
    generation: dict[str, Any] | None = None  # the generation report of a generated run
    rollout: dict[str, Any] | None = None  # RolloutPlan.to_record(): resume continues with these batches
    saved_plan: dict[str, Any] | None = None  # the saved plan the run applies: resume holds it to it too
    fingerprint: str | None = None  # of the content that ran: resume refuses content changed since
    parent: str | None = None  # the run this one worked for: a generation's gate (check mode, sandbox)

    @classmethod
    def new(cls, **fields: Any) -> RunRequest:
        """A request created now (``created`` set) with ``fields``."""
        return cls(**fields, created=datetime.now(UTC).isoformat())

    def record(self) -> dict[str, Any]:
        """The JSON object of ``request.json``: the fields that were set."""
        return self.model_dump(exclude_unset=True)

    @classmethod
    def read(cls, data: Any) -> RunRequest:
        """The request a ``request.json`` holds; an empty one for a file that is missing or not a request."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls.model_validate(data)
        except ValidationError:
            return cls()


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%S}-{_secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunDir:
    """The folder of one run. Its files are named by the module's constants: REQUEST, REPORT, EVENTS, JOURNAL,
    PLAYBOOKS, OWNER_LOCK, MARKER_FILE and RESERVE."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path, run_id: str | None = None) -> RunDir:
        path = runs_dir / (run_id or new_run_id())
        path.mkdir(parents=True, exist_ok=False, mode=0o700)
        (path / PLAYBOOKS).mkdir()
        run = cls(path)
        run.keep_reserve()
        return run

    @property
    def reserve(self) -> Path:
        """Room set aside on the runs folder's disk: when the disk fills up in the middle of a run, the journal
        and :meth:`write_json` free it to record where the run stopped, and the report."""
        return self.path / RESERVE

    def keep_reserve(self) -> None:
        """Set the reserve aside (again, on resume), written out so the room is really taken."""
        if self.reserve.exists():
            return
        with open(self.reserve, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())

    @contextmanager
    def owned(self) -> Iterator[None]:
        """Hold the run's owner lock while it runs. The kernel releases it when the process dies, even by
        SIGKILL, so a run whose journal says it is running and whose lock nobody holds has crashed."""
        with open(self.path / OWNER_LOCK, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def has_owner(self) -> bool:
        """Is a live process running this run (holding its owner lock)?"""
        try:
            fh = open(self.path / OWNER_LOCK, "a")  # noqa: SIM115 - the with below closes it; open alone may fail
        except OSError:
            return False
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False

    @classmethod
    def open(cls, runs_dir: Path, run_id: str) -> RunDir:
        path = runs_dir / run_id
        if not run_id or "/" in run_id or not (path / REQUEST).is_file():
            raise ConfigError(f"no run with id {run_id!r} in {runs_dir}")
        return cls(path)

    @property
    def events_file(self) -> Path:
        return self.path / EVENTS

    @property
    def journal_file(self) -> Path:
        return self.path / JOURNAL

    @property
    def playbooks_dir(self) -> Path:
        return self.path / PLAYBOOKS

    @property
    def marker_file(self) -> Path:
        return self.path / MARKER_FILE

    @property
    def journal(self) -> Journal:
        """The run's workflow journal (``journal.jsonl``), without redaction.

        A writer that holds secrets wraps the same file: ``Journal(run.journal.path, redact=...)``.
        """
        from .journal import Journal

        return Journal(self.journal_file, reserve=self.reserve)

    def playbook(self, name: str, text: str) -> Path:
        target = self.playbooks_dir / name
        target.write_text(text, encoding="utf-8")
        return target

    def write_json(self, name: str, data: Any) -> Path:
        """Write ``name`` whole (a temporary file, then a rename). On a full disk the run's reserve is freed
        once to make the room, as for the journal (:meth:`Journal.append`)."""
        target = self.path / name
        tmp = target.with_suffix(".tmp")
        text = json.dumps(data, indent=2, default=str)
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.reserve.exists():
                raise
            self.reserve.unlink()
            tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        return target

    def write_request(self, request: RunRequest) -> Path:
        return self.write_json(REQUEST, request.record())

    def request(self) -> RunRequest:
        """What was asked of the run (``request.json``)."""
        return RunRequest.read(self.read_json(REQUEST))

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None


def run_status(run: RunDir) -> str:
    """The status of a run: its report's; else ``interrupted`` when its journal says so, or when no live
    process owns it any more (the controller crashed mid-run); else ``running`` while its owner lives, and
    ``incomplete`` for a run that never got going."""
    report = run.read_json(REPORT)
    if isinstance(report, dict) and report.get("status"):
        return str(report["status"])
    from .journal import JournalError

    journal = run.journal
    if journal.exists():
        try:
            state = journal.state().status
        except JournalError:
            return "incomplete"
        if state == "interrupted" or (state in ("requested", "running") and not run.has_owner()):
            return "interrupted"
        if state in ("requested", "running"):
            return "running"
    return "incomplete"


def list_runs(runs_dir: Path, *, integration: str | None = None, status: str | None = None,
              host: str | None = None) -> list[RunDir]:
    """Every run, newest first; optionally only those of ``integration``, with ``status`` (see
    :func:`run_status`), or targeting ``host`` (in ``request.json`` targets)."""
    if not runs_dir.is_dir():
        return []
    runs = [RunDir(p) for p in runs_dir.iterdir() if (p / REQUEST).is_file()]
    selected = []
    for run in runs:
        if integration is not None or host is not None:
            request = run.request()
            if integration is not None and request.integration != integration:
                continue
            if host is not None and host not in request.targets:
                continue
        if status is not None and run_status(run) != status:
            continue
        selected.append(run)
    return sorted(selected, key=lambda r: r.id, reverse=True)


# -- bug-report bundle ------------------------------------------------------------------------------

EXPORTED = (REQUEST, REPORT, JOURNAL, EVENTS)
def _json_docs(name: str, text: str) -> list[Any]:
    docs: list[Any] = []
    lines = text.split("\n") if name.endswith(".jsonl") else [text]
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            continue
    return docs


def _scrub(name: str, text: str, redact: Redactor) -> str:
    text = redact.text(text)
    if name.endswith(".jsonl"):
        # split("\n"), not splitlines(): JSON text may hold U+2028 and friends unescaped.
        return "\n".join(mask_json_text(line, None) if line else line for line in text.split("\n"))
    if name.endswith(".json"):
        return mask_json_text(text, 2)
    return text


def _bundle_files(run: RunDir) -> list[str]:
    """Relative paths of the files that go into the bundle, sorted; regular files only (no symlinks)."""
    names = [n for n in EXPORTED if (run.path / n).is_file() and not (run.path / n).is_symlink()]
    playbooks = run.playbooks_dir
    if playbooks.is_dir() and not playbooks.is_symlink():
        for path in playbooks.rglob("*"):
            if path.is_file() and not path.is_symlink() and not any(p.is_symlink() for p in path.parents
                                                                      if playbooks in p.parents):
                names.append(path.relative_to(run.path).as_posix())
    return sorted(names)


def export(run: RunDir, out: Path, secrets: Iterable[str] = ()) -> Path:
    """Write a redacted ``.tar.gz`` of ``run`` for a bug report; return its path.

    Holds request.json, report.json, journal.jsonl, events.jsonl and playbooks/, each passed through
    ``Redactor(secrets)`` and, for JSON and JSONL files, with values of secret-looking keys masked
    (those values are also masked wherever else they appear). ``MANIFEST.txt`` lists the sha256 of
    every file as stored in the bundle (``sha256sum -c`` format). Members are sorted and their
    metadata fixed, so the same run exported twice gives the same bytes. ``out`` may be a directory.
    """
    out = Path(out)
    if out.is_dir():
        out = out / f"intagent-run-{run.id}.tar.gz"
    names = _bundle_files(run)
    texts = {n: (run.path / n).read_bytes().decode("utf-8", errors="replace") for n in names}
    found = set(secrets)
    for name, text in texts.items():
        if name.endswith((".json", ".jsonl")):
            for doc in _json_docs(name, text):
                found.update(secret_values(doc))
    redact = Redactor(found)
    contents = {n: _scrub(n, t, redact).encode("utf-8") for n, t in texts.items()}
    manifest = "".join(f"{hashlib.sha256(contents[n]).hexdigest()}  {n}\n" for n in names)
    members = [("MANIFEST.txt", manifest.encode("utf-8")), *((n, contents[n]) for n in names)]

    prefix = f"intagent-run-{run.id}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, data in members:
            parts = name.split("/")[:-1]
            for depth in range(len(parts) + 1):
                directory = "/".join([prefix, *parts[:depth]])
                if directory not in dirs:
                    dirs.add(directory)
                    tar.addfile(_tarinfo(directory, tarfile.DIRTYPE, 0o755))
            info = _tarinfo(f"{prefix}/{name}", tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
        gz.write(raw.getvalue())
    os.replace(tmp, out)
    return out


def _tarinfo(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
