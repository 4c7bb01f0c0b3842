"""Rule IA103 forbidden-keyword: no task keyword that changes where or how a task runs, not even inside args."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..registry import PlanContext, task_rule
from ..tasks import is_true, kind, walk

# Task keywords that change where or how a task runs; smuggled into args they must not survive.
FORBIDDEN_KEYWORDS = frozenset({
    "delegate_to", "delegate_facts", "local_action", "check_mode", "ignore_errors",
    "ignore_unreachable", "environment", "become", "become_user", "become_method", "become_flags", "become_exe",
    "vars", "connection", "run_once", "any_errors_fatal", "remote_user", "async", "poll", "throttle",
    "debugger", "module_defaults", "include_tasks", "import_tasks", "include_role", "import_role",
    "import_playbook", "include_vars"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Task keywords that change where or how a task runs (delegate_to, local_action, check_mode,
    ignore_errors, environment, become_user, vars, connection, run_once, ...) appear nowhere, not even as
    keys inside args; no_log is never false. set_fact and register set plain names only, never
    connection or interpreter variables (ansible_*) and never the user's parameters."""
    if task.no_log is False:
        yield "no_log: false is not allowed"
    for where, value in walk(task.args, "args"):
        if isinstance(value, dict):
            for key in value:
                if key in FORBIDDEN_KEYWORDS:
                    yield f"{where}.{key}: task keyword {key} is not allowed, not even inside args"
                elif key == "no_log" and not is_true(value[key]):
                    yield f"{where}.no_log: no_log must not be false"
    names = [(k, "set_fact") for k in task.args if isinstance(k, str)] if kind(task) == "set_fact" else []
    names += [(task.register, "register")] if task.register else []
    for name, how in names:
        if not name.isidentifier():  # set_fact templates its keys: a computed key could be anything
            yield f"{how} {name!r}: fact names must be plain identifiers"
        elif name.startswith("ansible_"):
            yield f"{how} {name}: connection and interpreter variables (ansible_*) must not be set"
        elif name in ctx.parameters:
            yield f"{how} {name}: overrides the user's parameter"


RULE = task_rule("IA103", "forbidden-keyword", check)
