"""Rule IA119 result-override: failed_when and changed_when cannot hide a failure or a change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from ...schema import GeneratedTask
from ..data import VERIFY_MODULES
from ..jinja import parse_jinja
from ..registry import PlanContext, task_rule
from ..tasks import is_false, is_true, kind


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """failed_when and changed_when only in forms that cannot hide a failure or a change: failed_when is
    ``<register> is failed`` optionally ``or`` more, or ``and not (ansible_check_mode and ...)`` (a check
    mode allowance), or false on a read-only task that registers a result for the evidence; changed_when
    on a module that changes the host is ``<register> is changed`` (optionally ``or`` more), false only on
    read-only modules (and commands, IA102)."""
    failed, changed = task.failed_when, task.changed_when
    read_only = (kind(task) in VERIFY_MODULES and kind(task) != "command") or kind(task) in ("stat", "getent")
    if failed is not None and not is_true(failed):
        if is_false(failed):
            if not (read_only and task.register):
                yield "failed_when: false hides failures; only read-only tasks that register a result may use it"
        elif not _keeps(task.failed_when, task.register, "failed"):
            yield f"failed_when {failed!r} can hide a failure; write '{task.register or 'result'} is failed or ...'"
    if (changed is not None and kind(task) != "command" and not read_only
            and (not isinstance(changed, str) or not _keeps(changed, task.register, "changed"))):
        yield f"changed_when {changed!r} can hide a change; write '{task.register or 'result'} is changed or ...'"


RULE = task_rule("IA119", "result-override", check)


def _keeps(text: Any, register: str | None, test: str) -> bool:
    """Is ``text`` an expression that is true whenever ``register`` is failed (or changed)?"""
    if not isinstance(text, str) or not register:
        return False
    ast = parse_jinja(text, True)
    if isinstance(ast, str) or len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return False
    output = ast.body[0]
    return len(output.nodes) == 1 and _implied(output.nodes[0], register, test)


def _implied(node: nodes.Node, register: str, test: str) -> bool:
    if isinstance(node, nodes.Test) and node.name == test and isinstance(node.node, nodes.Name):
        return node.node.name == register
    if isinstance(node, nodes.Getattr) and node.attr == test and isinstance(node.node, nodes.Name):
        return node.node.name == register
    if isinstance(node, nodes.Or):
        return _implied(node.left, register, test) or _implied(node.right, register, test)
    if isinstance(node, nodes.And) and test == "failed":  # ... and not (ansible_check_mode and ...)
        return _implied(node.left, register, test) and _check_mode_only(node.right)
    return False


def _check_mode_only(node: nodes.Node) -> bool:
    if not isinstance(node, nodes.Not) or not isinstance(node.node, nodes.And):
        return False
    left = node.node.left
    return isinstance(left, nodes.Name) and left.name == "ansible_check_mode"
