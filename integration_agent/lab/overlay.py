"""What changed on a lab host, read from outside it: its overlay root's upper layer against the base image.

Every file a host creates, changes or deletes lands in the upper layer of its overlay (a deletion as a
whiteout: a 0:0 character device). A snapshot records the upper layer; two snapshots and the base image
give the exact set of paths whose content, type, mode or owner differ, without trusting the host.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

# Signatures: ("f", mode, uid, gid, sha256) for files, ("d", mode, uid, gid), ("l", target), ("o", mode).
Signature = tuple
ABSENT: Signature = ()
OPAQUE_XATTR = "trusted.overlay.opaque"


def signature(path: Path) -> Signature:
    """What identifies ``path``'s state (ABSENT when it does not exist; a whiteout reads as ABSENT)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ABSENT
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return ("f", mode, st.st_uid, st.st_gid, digest.hexdigest())
    if stat.S_ISDIR(st.st_mode):
        return ("d", mode, st.st_uid, st.st_gid)
    if stat.S_ISLNK(st.st_mode):
        return ("l", os.readlink(path))
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return ABSENT  # overlayfs whiteout
    return ("o", stat.S_IFMT(st.st_mode), mode)


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


@dataclass(frozen=True)
class Snapshot:
    """The upper layer at one moment: every path in it (``/etc/x`` form) and its signature."""

    entries: dict[str, Signature]
    opaque: frozenset[str]

    @classmethod
    def take(cls, upper: Path, skip: tuple[str, ...] = ()) -> Snapshot:
        entries: dict[str, Signature] = {}
        opaque: set[str] = set()
        for directory, dirs, files in os.walk(upper):
            rel = "/" + os.path.relpath(directory, upper) if directory != str(upper) else ""
            dirs[:] = [d for d in dirs if not _skipped(f"{rel}/{d}", skip)]
            for name in [*dirs, *files]:
                path = f"{rel}/{name}"
                if _skipped(path, skip):
                    continue
                entries[path] = signature(Path(directory) / name)
                if name in dirs and _opaque(Path(directory) / name):
                    opaque.add(path)
        return cls(entries, frozenset(opaque))

    def state(self, path: str, lower: Path) -> Signature:
        """``path`` as the merged root showed it when the snapshot was taken."""
        if path in self.entries:
            return self.entries[path]
        parent = path.rsplit("/", 1)[0]
        while parent:
            if parent in self.entries:
                kind = self.entries[parent][:1]
                if kind != ("d",) or parent in self.opaque:
                    return ABSENT  # replaced, deleted or made opaque above: the base's copy is hidden
                break
            parent = parent.rsplit("/", 1)[0]
        return signature(lower / path.lstrip("/"))


@dataclass(frozen=True, order=True)
class Change:
    path: str
    kind: str  # created | changed | deleted

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


def diff(before: Snapshot, after: Snapshot, lower: Path) -> list[Change]:
    """Every path whose state differs between two snapshots of the same overlay (sorted by path)."""
    changes = []
    for path in sorted(set(before.entries) | set(after.entries)):
        old, new = before.state(path, lower), after.state(path, lower)
        if old == new:
            continue
        kind = "created" if old == ABSENT else "deleted" if new == ABSENT else "changed"
        changes.append(Change(path, kind))
    return changes


def _skipped(path: str, skip: tuple[str, ...]) -> bool:
    return any(path == s or path.startswith(s.rstrip("/") + "/") for s in skip)
