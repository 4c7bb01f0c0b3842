"""Reading tasks: module kinds, argument aliases, Ansible booleans, and every string or loop value a task holds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..schema import GeneratedTask
from .data import EXPRESSION_ARGS, FALSE, TRUE
from .jinja import is_templated


def kind(task: GeneratedTask) -> str:
    """Short module name for ansible.builtin/ansible.legacy/bare names, else the full name."""
    namespace, _, short = task.module.rpartition(".")
    return short if namespace in ("", "ansible.builtin", "ansible.legacy") else task.module


def arg(task: GeneratedTask, *names: str) -> Any:
    """The first of an argument's aliases that is set."""
    return next((task.args[n] for n in names if n in task.args), None)


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE) or (
        type(value) is int and value == 1)


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in FALSE) or (
        type(value) is int and value == 0)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) and not is_templated(value):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) if isinstance(value, list) else [value]


def walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every value nested in dicts and lists with its location (dict keys too), without recursion."""
    stack = [(where, value)]
    while stack:
        where, value = stack.pop()
        yield where, value
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                stack.append((f"{where}.{key}", item))
                stack.append((f"{where}.<key>", key))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def rendered_strings(task: GeneratedTask) -> Iterator[tuple[str, str, bool]]:
    """(where, text, is_bare_expression) for every string Ansible templates when it runs the task."""
    yield "name", task.name, False
    for field in ("when", "changed_when", "failed_when"):
        if isinstance(getattr(task, field), str):
            yield field, getattr(task, field), True
    for field in ("creates", "removes"):
        if getattr(task, field):
            yield field, getattr(task, field), False
    expression_args = EXPRESSION_ARGS.get(kind(task), ())
    for where, value in [*walk(task.notify, "notify"), *walk(task.loop, "loop"), *walk(task.args, "args")]:
        if isinstance(value, str):
            top = where.split(".")[1].split("[")[0] if where.startswith("args.") else ""
            yield where, value, top in expression_args and not where.endswith("<key>")


def expand(task: GeneratedTask, value: Any) -> list[Any]:
    """Every value a string takes over a literal loop list, ``{{ item }}`` / ``{{ item.key }}`` filled in
    wherever they occur (``/etc/x/{{ item }}`` with ``../y`` becomes ``/etc/x/../y``); else ``[value]``."""
    if not isinstance(value, str) or not isinstance(task.loop, list) or not ITEM.search(value):
        return [value]
    out = []
    for item in task.loop:
        def fill(match: re.Match[str], item: Any = item) -> str:
            key = match.group(1) or match.group(2)
            got = item.get(key) if key and isinstance(item, dict) else (None if key else item)
            return got if isinstance(got, str) else match.group()
        whole = ITEM.fullmatch(value)
        if whole and not (whole.group(1) or whole.group(2)) and not isinstance(item, str):
            out.append(item)
        else:
            out.append(ITEM.sub(fill, value))
    return out


ITEM = re.compile(r"\{\{\s*item(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])?\s*\}\}")
