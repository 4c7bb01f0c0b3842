"""One run at a time per host: an ``fcntl.flock`` on a lock file per host, naming the run that holds it.

Locks are taken all-or-nothing before anything runs. The kernel holds the lock, not the file: when the
process holding it ends in any way (even SIGKILL) the lock is free again, so a crashed run never blocks a
host, and no run can delete a lock another run holds. The file only tells a second run who is in the way.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import HostBusy


class HostLocks:
    """Lock files in ``directory`` (one per host name)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, host: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", host) + ".lock")

    def holder(self, host: str) -> dict | None:
        """Who holds ``host`` (run id, pid; empty while the holder is still writing it), or None."""
        try:
            fd = os.open(self._path(host), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                data = _read_record(fd)
                return data if isinstance(data, dict) else {}
            return None  # a file nobody holds (its run ended): the host is free
        finally:
            os.close(fd)

    def _take(self, host: str, run_id: str) -> int | None:
        """The locked file descriptor for ``host``, or None when another process holds it."""
        path = self._path(host)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(fd).st_ino:
                break
            os.close(fd)  # its holder released and removed the file meanwhile: lock the file now there
        record = json.dumps({"run_id": run_id, "pid": os.getpid(), "host": host,
                             "since": datetime.now(UTC).isoformat()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        return fd

    @contextmanager
    def hold(self, hosts: Iterable[str], run_id: str) -> Iterator[None]:
        """Hold every host for the duration of the block, or raise HostBusy naming the holder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        taken: list[tuple[Path, int]] = []
        try:
            for host in sorted(set(hosts)):
                fd = self._take(host, run_id)
                if fd is None:
                    holder = self.holder(host) or {}
                    who = f"run {holder['run_id']} (pid {holder.get('pid')})" if holder.get("run_id") else "another run"
                    raise HostBusy(f"host {host} is being changed by {who}",
                                   hint="wait for it to finish, or check it with: intagent runs show "
                                        f"{holder.get('run_id') or 'RUN'}")
                taken.append((self._path(host), fd))
            yield
        finally:
            for path, fd in taken:
                # Removed while still locked: a run that opened the old file finds it is gone and retries.
                path.unlink(missing_ok=True)
                os.close(fd)


def _read_record(fd: int) -> object:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
