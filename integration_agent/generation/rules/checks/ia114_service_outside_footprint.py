"""Rule IA114 service-outside-footprint: only the integration's own services are started, stopped or enabled."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..data import SERVICE_MODULES
from ..jinja import owned_name
from ..registry import PlanContext, task_rule
from ..tasks import arg, expand, kind


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Tasks start, stop, enable, mask or restart only the manifest's owns.services (or a service named by
    one of the user's parameters); reading another service's status is fine."""
    a = task.args
    if kind(task) not in SERVICE_MODULES or not {"state", "enabled", "masked"} & a.keys():
        return
    for value in expand(task, arg(task, "name", "service", "unit")):
        if not owned_name(ctx, value, ctx.manifest.owns.services, r"(?:\.service)?"):
            yield f"manages service {value}, which is not in owns.services ({', '.join(ctx.manifest.owns.services)})"


RULE = task_rule("IA114", "service-outside-footprint", check)
