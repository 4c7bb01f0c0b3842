"""Mitogen's free strategy with intagent's changes (see intagent_mitogen_linear.py, which makes them)."""

from __future__ import annotations

from typing import Any

import ansible_mitogen.loaders
import ansible_mitogen.strategy

ansible_mitogen.loaders.strategy_loader.get("intagent_mitogen_linear", class_only=True)  # intagent's changes
Base: Any = ansible_mitogen.loaders.strategy_loader.get("free", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
