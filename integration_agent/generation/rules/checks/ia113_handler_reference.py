"""Rule IA113 handler-reference: every notify names a handler, and handlers only restart or reload."""

from __future__ import annotations

from collections.abc import Iterator

from ..data import SERVICE_MODULES
from ..registry import PlanContext, plan_rule
from ..tasks import is_true, kind


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """Every notify names a handler of the plan exactly, and handler names are unique; handlers only
    restart or reload a service, or reload systemd (daemon_reload)."""
    handlers = [h.name for h in ctx.plan.handlers]
    for section, index, task in ctx.tasks():
        for name in task.notify:
            if name not in handlers:
                yield section, index, f"notifies {name!r}, which is not a handler ({', '.join(handlers) or 'none'})"
    for index, task in enumerate(ctx.plan.handlers):
        a = task.args
        if handlers.count(task.name) > 1:
            yield "handlers", index, f"more than one handler is called {task.name!r}"
        state_ok = a.get("state") in ("restarted", "reloaded") or ("state" not in a and is_true(a.get("daemon_reload")))
        if kind(task) not in SERVICE_MODULES or not state_ok or {"enabled", "masked"} & a.keys():
            yield "handlers", index, "handlers may only restart or reload a service, or reload systemd"


RULE = plan_rule("IA113", "handler-reference", check)
