"""Mitogen's free strategy with intagent's changes (see intagent_mitogen_linear.py, which makes them)."""

from __future__ import annotations

import sys
from typing import Any

import ansible_mitogen.loaders
import ansible_mitogen.strategy

linear: Any = ansible_mitogen.loaders.strategy_loader.get("intagent_mitogen_linear", class_only=True)
PlayModes: Any = sys.modules[linear.__module__].PlayModes  # intagent's changes are made by loading that file
CompileOnce: Any = sys.modules[linear.__module__].CompileOnce
InlineTasks: Any = sys.modules[linear.__module__].InlineTasks
Base: Any = ansible_mitogen.loaders.strategy_loader.get("free", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, CompileOnce, InlineTasks, PlayModes, Base):
    pass
