"""Mitogen's linear strategy with intagent's changes (``intagent_mitogen_free`` loads this file for them).
Self-contained: a streaming job carries this folder to a worker that may have only Ansible and Mitogen.

1. No CPU pinning. Mitogen pins every Ansible process to one CPU. On a controller with fewer than four CPUs
   it keeps CPU 0 for its connection multiplexer and pins the top-level process and every worker to the
   same other CPU, so all of Ansible's own work (templating, conditions, results: one worker per host and
   task) shares one core. Measured on a two-core controller with 10 hosts: 20 ``debug`` tasks took 4.3 s
   pinned and 2.4 s unpinned (2.1 s without Mitogen); 20 ``stat`` tasks 8.2 s pinned and 6.3 s unpinned
   (20.8 s without Mitogen). Mitogen's base policy pins nothing: the operating system places the processes.
2. A ``local`` connection without a user runs as the controller's user, as Ansible's own local connection
   does. Mitogen otherwise sees no user there, so ``become`` to that same user (root, running as root)
   goes through sudo, which may not even be installed.
3. Play-level modes visible to templates, each template compiled once per run, and the tasks that never reach
   a host run without a worker, as in ``intagent_linear`` (``PlayModes``, ``CompileOnce`` and ``InlineTasks``,
   loaded from that file).
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy
import ansible_mitogen.transport_config

# Mitogen looks the policy up each time it places a process (the controller, its multiplexers, each worker).
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

_spec = ansible_mitogen.transport_config.PlayContextSpec
if not getattr(_spec.remote_user, "intagent", False):
    _remote_user = _spec.remote_user

    def remote_user(self: Any) -> Any:
        user = _remote_user(self)
        return getpass.getuser() if user is None and self.transport() == "local" else user

    remote_user.intagent = True  # type: ignore[attr-defined]
    _spec.remote_user = remote_user

Base: Any = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)
_linear: Any = sys.modules[ansible_mitogen.loaders.strategy_loader.get("intagent_linear", class_only=True).__module__]
PlayModes: Any = _linear.PlayModes
CompileOnce: Any = _linear.CompileOnce
InlineTasks: Any = _linear.InlineTasks


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, CompileOnce, InlineTasks, PlayModes, Base):
    pass
