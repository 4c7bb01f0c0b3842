"""Run directories: every run has an id and a folder with its playbooks, redacted events and report."""

from __future__ import annotations

import json
import os
import secrets as _secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ConfigError


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{_secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunDir:
    """The folder of one run: ``request.json``, ``playbooks/``, ``events.jsonl``, ``report.json``."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, runs_dir: Path, run_id: str | None = None) -> RunDir:
        path = runs_dir / (run_id or new_run_id())
        path.mkdir(parents=True, exist_ok=False, mode=0o700)
        (path / "playbooks").mkdir()
        return cls(path)

    @classmethod
    def open(cls, runs_dir: Path, run_id: str) -> RunDir:
        path = runs_dir / run_id
        if not run_id or "/" in run_id or not (path / "request.json").is_file():
            raise ConfigError(f"no run with id {run_id!r} in {runs_dir}")
        return cls(path)

    @property
    def events_file(self) -> Path:
        return self.path / "events.jsonl"

    def playbook(self, name: str, text: str) -> Path:
        target = self.path / "playbooks" / name
        target.write_text(text, encoding="utf-8")
        return target

    def write_json(self, name: str, data: Any) -> Path:
        target = self.path / name
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        os.replace(tmp, target)
        return target

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None


def list_runs(runs_dir: Path) -> list[RunDir]:
    """Every run, newest first."""
    if not runs_dir.is_dir():
        return []
    runs = [RunDir(p) for p in runs_dir.iterdir() if (p / "request.json").is_file()]
    return sorted(runs, key=lambda r: r.id, reverse=True)
