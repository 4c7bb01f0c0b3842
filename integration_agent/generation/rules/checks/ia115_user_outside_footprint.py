"""Rule IA115 user-outside-footprint: only the integration's own users and groups are managed."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..jinja import owned_name
from ..registry import PlanContext, task_rule
from ..tasks import expand, kind


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """user and group tasks create, change or remove only the manifest's owns.users (or a name given by
    one of the user's parameters)."""
    if kind(task) not in ("user", "group"):
        return
    for value in expand(task, task.args.get("name")):
        if not owned_name(ctx, value, ctx.manifest.owns.users):
            owned = ", ".join(ctx.manifest.owns.users) or "none"
            yield f"manages {kind(task)} {value}, which is not in owns.users ({owned})"


RULE = task_rule("IA115", "user-outside-footprint", check)
