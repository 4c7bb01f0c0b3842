"""Rule IA100 wrong-integration: the plan is for the integration it was asked for."""

from __future__ import annotations

from collections.abc import Iterator

from ..registry import PlanContext, plan_rule


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """The plan names the integration it was asked for; a plan for another integration is judged against
    the wrong footprint and is refused."""
    if ctx.plan.integration != ctx.name:
        yield "", None, f"plan is for {ctx.plan.integration!r}, not {ctx.name!r}"


RULE = plan_rule("IA100", "wrong-integration", check)
