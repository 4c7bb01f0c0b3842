"""Ansible's linear strategy with play-level modes made visible to templates (``intagent_free`` and the Mitogen
variants take ``PlayModes`` from this file). Self-contained: a streaming job carries this folder to a worker
that may have only Ansible (and Mitogen).

A play's ``check_mode: true`` (or ``diff: true``) runs its tasks in that mode, but ``ansible_check_mode`` and
``ansible_diff_mode`` still say what the command line asked for: Ansible sets them from ``--check`` and
``--diff`` once per process, over every play variable. Roles read ``ansible_check_mode`` to predict what check
mode cannot (a package not installed yet has no service to query). With ``PlayModes`` the two variables follow
the play that runs, so a dry-run play and the plays that apply can share one playbook, as they would with
``--check`` in playbooks of their own.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy


class PlayModes:
    """Strategy mixin: while a play runs, ``ansible_check_mode`` and ``ansible_diff_mode`` are its own modes
    (a play that sets neither keeps the command line's, as Ansible does)."""

    _variable_manager: Any

    def run(self, iterator: Any, play_context: Any) -> Any:
        play = iterator._play
        manager = self._variable_manager
        options = manager._options_vars  # shared by every play of the process: replaced, never changed
        modes = {"ansible_check_mode": bool(play.check_mode), "ansible_diff_mode": bool(play.diff)}
        manager._options_vars = {**options, **modes}
        try:
            return super().run(iterator, play_context)  # type: ignore[misc]
        finally:
            manager._options_vars = options


class StrategyModule(PlayModes, LinearStrategy):
    pass
