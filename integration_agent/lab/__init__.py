"""Disposable test hosts on this machine: ``Lab(settings.lab).up(3)`` returns an inventory.

The names below are imported on first use, so that reading ``lab.layout`` (settings, ``--help``) stays cheap.
"""

from importlib import import_module
from typing import Any

__all__ = ["HostStatus", "Lab", "UpReport"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(".lab", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
