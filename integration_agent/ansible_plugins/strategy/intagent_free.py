"""Ansible's free strategy with play-level modes made visible to templates (see intagent_linear.py)."""

from __future__ import annotations

import sys
from typing import Any

from ansible.plugins.loader import strategy_loader
from ansible.plugins.strategy.free import StrategyModule as FreeStrategy

PlayModes: Any = sys.modules[strategy_loader.get("intagent_linear", class_only=True).__module__].PlayModes


class StrategyModule(PlayModes, FreeStrategy):
    pass
