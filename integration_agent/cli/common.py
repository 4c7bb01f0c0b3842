"""State shared by the commands: the settings file option, the consoles, and whether anyone can answer.

On a terminal the consoles are rich's (``NO_COLOR`` turns colour off). Off a terminal (a pipe, a file, an
AWX or CI job log) they write plain text, whatever ``TERM``, ``COLUMNS``, ``FORCE_COLOR`` or
``TTY_COMPATIBLE`` say: no colour, no escape sequence, no control character but newline and tab, lines
never wrapped, tables drawn in ASCII at most ``LOG_WIDTH`` wide.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import typer
from rich.console import Console
from rich.text import Text

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
LOG_WIDTH = 200  # a log has no width: wide enough that tables rarely fold a cell


def strip_control(text: str) -> str:
    """``text`` without control characters, newline and tab excepted."""
    return CONTROL.sub("", text)


class _PlainStream(io.TextIOBase):
    """The current ``sys.stdout`` or ``sys.stderr`` (looked up at each write), control characters removed."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, text: str) -> int:
        getattr(sys, self._name).write(strip_control(text))
        return len(text)

    def flush(self) -> None:
        getattr(sys, self._name).flush()


def _console(name: str) -> Console:
    if getattr(sys, name).isatty():
        return Console(stderr=name == "stderr", highlight=False, emoji=False)
    # A text stream for rich (typeshed's io.TextIOBase is not an IO[str], though it is one at run time).
    return Console(file=cast(IO[str], _PlainStream(name)), force_terminal=False, force_interactive=False,
                   color_system=None, width=LOG_WIDTH, soft_wrap=True, highlight=False, emoji=False)


console = _console("stdout")
err_console = _console("stderr")


def interactive() -> bool:
    """Someone can answer a question: stdin and stdout are terminals (never so under AWX, CI or a pipe)."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout))


def progress(text: str, style: str = "") -> None:
    """One progress line on stderr: styled on a terminal, else plain after the UTC time."""
    if err_console.is_terminal:
        err_console.print(Text(text, style=style))
    else:
        err_console.print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {text}", markup=False)


@dataclass
class State:
    config: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any):
        from ..settings import load_settings

        return load_settings(self.config, overrides={**self.overrides, **overrides})


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, State) else State()
