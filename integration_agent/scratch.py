"""Where a job's private files go: a memory file system, or a folder the user accepted for secrets.

A job's private folder holds what must never reach a disk the user did not choose: the 0600 secret vars
file (secret parameters, the become password), the vault password file, ansible-runner's private data
dir (the job's command line and environment) and Ansible's controller scratch (module payloads, with
their arguments); a streaming worker unpacks the whole job, secrets included, into one too. The folder is

1. ``/dev/shm``, a memory file system, when it is a writable directory;
2. else the ``secrets_dir`` setting (``INTAGENT_SECRETS_DIR``), when the user named a folder;
3. else, for a job with a secret to write, nowhere: :class:`~integration_agent.errors.ConfigError`
   (exit 3) before any playbook starts, since the system's temporary folder is often on a disk. A job
   without a secret uses the system's temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

MEMORY_FS = Path("/dev/shm")
HINT = ("set secrets_dir (INTAGENT_SECRETS_DIR) to a folder you accept for secrets, ideally memory-backed "
        "or encrypted, or make /dev/shm a writable memory file system")


def writable_directory(path: Path) -> bool:
    """``path`` is a directory this process may create files in."""
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


@dataclass(frozen=True)
class Scratch:
    """Chooses the folder of each job's private files. ``memory`` stands for ``/dev/shm``: a test passes a
    missing folder to play a machine without one."""

    secrets_dir: Path | None = None
    memory: Path = MEMORY_FS

    @classmethod
    def for_settings(cls, settings: Settings) -> Scratch:
        return cls(secrets_dir=settings.secrets_dir)

    def folder(self, *, secrets: bool) -> Path | None:
        """The folder for a job's private dir (None: the system's temporary folder, for a job without a
        secret only); raise ConfigError when the job has a secret and no acceptable folder exists."""
        if writable_directory(self.memory):
            return self.memory
        if self.secrets_dir is not None:
            return self.secrets_dir
        if secrets:
            raise ConfigError(
                f"{self.memory} is missing or not writable and no folder is named for secrets: intagent will not "
                f"write this run's secrets to the system's temporary folder ({tempfile.gettempdir()}), which "
                "may be on a disk; nothing was run", hint=HINT)
        return None

    def leftovers(self, prefix: str) -> list[Path]:
        """Private dirs named ``prefix*`` in every folder a job may have used (a dead run's, say)."""
        folders = {self.memory, Path(tempfile.gettempdir()), *([self.secrets_dir] if self.secrets_dir else [])}
        return sorted(path for folder in folders if folder.is_dir() for path in folder.glob(f"{prefix}*"))

    def private_dir(self, prefix: str, *, secrets: bool) -> Path:
        """A new 0700 directory in :meth:`folder`, for a job that writes secrets (``secrets``) or not."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.folder(secrets=secrets)))
