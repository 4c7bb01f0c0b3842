"""Validated generations, cached by everything that decides their content."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "intagent" / "generations"


def cache_key(*, integration: str, manifest: dict[str, Any], knowledge: list[tuple[str, str]], platform: str,
              model: str, prompt_version: str, sandboxed: bool = False) -> str:
    """Hash of integration, manifest, knowledge (chunk id + text hash), platform, model, prompt version and
    whether the sandbox gate ran (a plan cached without it is never served to a run that asks for it)."""
    payload = json.dumps({"integration": integration, "manifest": manifest, "knowledge": sorted(knowledge),
                          "platform": platform, "model": model, "prompt": prompt_version,
                          **({"sandboxed": True} if sandboxed else {})},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class GenerationCache:
    """``<dir>/<key>/`` holds ``plan.json``, ``report.json`` and ``roles/<name>/``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_dir()

    def path(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str) -> Path | None:
        entry = self.path(key)
        return entry if (entry / "plan.json").is_file() and (entry / "report.json").is_file() else None

    def put(self, key: str, built: Path) -> Path:
        """Move a fully built entry into place (atomically: a half-written entry is never a hit)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        if target.exists():
            shutil.rmtree(built, ignore_errors=True)
            return target
        os.replace(built, target)
        return target
