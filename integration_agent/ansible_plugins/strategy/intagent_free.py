"""Ansible's free strategy with play-level modes made visible to templates, each template compiled once per
run, and the tasks that never reach a host run without a worker (see intagent_linear.py)."""

from __future__ import annotations

import sys
from typing import Any

from ansible.plugins.loader import strategy_loader
from ansible.plugins.strategy.free import StrategyModule as FreeStrategy

_linear: Any = sys.modules[strategy_loader.get("intagent_linear", class_only=True).__module__]
PlayModes: Any = _linear.PlayModes
CompileOnce: Any = _linear.CompileOnce
InlineTasks: Any = _linear.InlineTasks


class StrategyModule(CompileOnce, InlineTasks, PlayModes, FreeStrategy):
    pass
