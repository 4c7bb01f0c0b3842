"""Reading the YAML files operators write (settings, manifests, ``-e @FILE``), with errors naming file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import IntagentError


def read_yaml(path: Path, error: type[IntagentError], what: str = "") -> Any:
    """The YAML document in ``path``; ``error`` naming the file (and line) when it cannot be read or parsed.

    ``what`` starts the message (the flag the file came from, for example).
    """
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{what}{path}: cannot read: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise error(f"{what}{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


def read_mapping(path: Path, error: type[IntagentError], of: str, what: str = "") -> dict[str, Any]:
    """Like ``read_yaml`` for a file that must hold a mapping (of ``of``); an empty file is an empty one."""
    data = read_yaml(path, error, what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{what}{path}: expected a mapping of {of}, got {type(data).__name__}")
    return data
