"""Findings, rules and the plan context, and the two ways a check function becomes a :class:`Rule`: one task at
a time (:func:`task_rule`) or over the whole plan (:func:`plan_rule`). ``checks`` lists the rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ...catalog import Manifest
from ..schema import GeneratedPlan, GeneratedTask
from .data import SECTIONS
from .tasks import kind


@dataclass(frozen=True)
class Finding:
    """One policy violation; ``task`` is the 0-based index in ``section``."""

    rule: str
    message: str
    section: str = ""
    task: int | None = None
    task_name: str = ""

    def __str__(self) -> str:
        where = self.section + (f"[{self.task}]" if self.task is not None else "")
        where += f' "{self.task_name}"' if self.task_name else ""
        return f"{self.rule} {where}: {self.message}" if where else f"{self.rule}: {self.message}"


class GateDeadline(Exception):
    """The run's deadline passed inside a gate; the gate refuses the plan (IA009)."""


@dataclass(frozen=True)
class Rule:
    """A rule id, its name and doc, and the check (None for the input rules ``policy`` runs on raw text)."""

    id: str
    name: str
    doc: str
    check: Callable[[PlanContext], Iterator[Finding]] | None = None


@dataclass(frozen=True)
class PlanContext:
    """A plan and the manifest it is judged against, with the derived sets every rule needs."""

    plan: GeneratedPlan
    manifest: Manifest
    deadline: float | None = None  # time.monotonic() value; passing it stops the gate (GateDeadline)

    @property
    def name(self) -> str:
        return self.manifest.name

    def tasks(self) -> Iterator[tuple[str, int, GeneratedTask]]:
        """Every task in section order; checks the run's deadline before each, so no rule outlives it."""
        for section in SECTIONS:
            for index, task in enumerate(getattr(self.plan, section)):
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise GateDeadline(f"the run's deadline passed while checking {section}[{index}]")
                yield section, index, task

    @cached_property
    def parameters(self) -> frozenset[str]:
        """Role variables of the user's parameters (their values come from the user, not the model)."""
        return frozenset(f"{self.name}_{p}" for p in self.manifest.parameters)

    @cached_property
    def secrets(self) -> frozenset[str]:
        return frozenset(f"{self.name}_{p}" for p, spec in self.manifest.parameters.items() if spec.secret)

    @cached_property
    def plan_defined(self) -> frozenset[str]:
        """Variables whose values the plan itself makes (register, set_fact): the model controls them."""
        names = {t.register for _, _, t in self.tasks() if t.register}
        names.update(k for _, _, t in self.tasks() if kind(t) == "set_fact" for k in t.args if isinstance(k, str))
        return frozenset(names)


TaskCheck = Callable[[PlanContext, GeneratedTask], Iterable[str]]
PlanCheck = Callable[[PlanContext], Iterable[tuple[str, int | None, str]]]


def _doc(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").split())


def task_rule(rule_id: str, name: str, fn: TaskCheck) -> Rule:
    """The rule of a check that yields messages for one task at a time; its docstring is the rule's doc."""
    def check(ctx: PlanContext) -> Iterator[Finding]:
        for section, index, task in ctx.tasks():
            for message in fn(ctx, task):
                yield Finding(rule_id, message, section, index, task.name)
    return Rule(rule_id, name, _doc(fn), check)


def plan_rule(rule_id: str, name: str, fn: PlanCheck) -> Rule:
    """The rule of a check over the whole plan that yields (section, task index or None, message); its
    docstring is the rule's doc."""
    def check(ctx: PlanContext) -> Iterator[Finding]:
        for section, index, message in fn(ctx):
            name_ = getattr(ctx.plan, section)[index].name if section and index is not None else ""
            yield Finding(rule_id, message, section, index, name_)
    return Rule(rule_id, name, _doc(fn), check)
