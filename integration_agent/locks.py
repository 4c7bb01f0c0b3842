"""One run at a time per host: a lock file per host, naming the run and process that hold it.

Locks are taken all-or-nothing before anything runs. A lock whose process is gone is stale: it is
detected and released, so a crashed run never blocks a host for ever.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import HostBusy


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostLocks:
    """Lock files in ``directory`` (one per host name)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, host: str) -> Path:
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", host) + ".lock")

    def holder(self, host: str) -> dict | None:
        """Who holds ``host`` (run id, pid), or None; a stale lock is removed on the way."""
        path = self._path(host)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and isinstance(data.get("pid"), int) and _alive(data["pid"]):
            return data
        path.unlink(missing_ok=True)  # stale: its process is gone (or the file is unreadable)
        return None

    def _take(self, host: str, run_id: str) -> bool:
        record = json.dumps({"run_id": run_id, "pid": os.getpid(), "host": host,
                             "since": datetime.now(timezone.utc).isoformat()})
        try:
            fd = os.open(self._path(host), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(record)
        return True

    @contextmanager
    def hold(self, hosts: Iterable[str], run_id: str) -> Iterator[None]:
        """Hold every host for the duration of the block, or raise HostBusy naming the holder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        taken: list[str] = []
        try:
            for host in sorted(set(hosts)):
                if not self._take(host, run_id):
                    holder = self.holder(host)
                    if holder is None and self._take(host, run_id):
                        taken.append(host)
                        continue
                    who = f"run {holder['run_id']} (pid {holder['pid']})" if holder else "another run"
                    raise HostBusy(f"host {host} is being changed by {who}",
                                   hint="wait for it to finish, or check it with: intagent runs show "
                                        f"{holder['run_id'] if holder else 'RUN'}")
                taken.append(host)
            yield
        finally:
            for host in taken:
                self._release(host, run_id)

    def _release(self, host: str, run_id: str) -> None:
        path = self._path(host)
        try:
            if json.loads(path.read_text()).get("run_id") == run_id:
                path.unlink()
        except (OSError, ValueError):
            pass
