"""Mitogen's linear strategy without its CPU pinning. Self-contained: a streaming job carries this file to a
worker that may not have intagent, only Ansible and Mitogen.

Mitogen pins every Ansible process to one CPU. On a controller with fewer than four CPUs it keeps CPU 0 for
its connection multiplexer and pins the top-level process and every worker to the same other CPU, so all of
Ansible's own work (templating, conditions, results: one worker per host and task) shares one core. Measured
on a two-core controller with 10 hosts: 20 ``debug`` tasks took 4.3 s pinned and 2.4 s unpinned (2.1 s
without Mitogen); 20 ``stat`` tasks 8.2 s pinned and 6.3 s unpinned (20.8 s without Mitogen). Mitogen's
base policy pins nothing: the operating system's scheduler places the processes.
"""

from __future__ import annotations

from typing import Any

import ansible_mitogen.affinity
import ansible_mitogen.loaders
import ansible_mitogen.strategy

# Mitogen looks the policy up each time it places a process (the controller, its multiplexers, each worker).
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()


Base: Any = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    pass
