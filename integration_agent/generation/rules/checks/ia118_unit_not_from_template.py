"""Rule IA118 unit-not-from-template: systemd units come only from intagent's template, for units the manifest
declares."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from ...schema import GeneratedTask
from ..data import UNIT_DIRECTORIES
from ..footprint import checked_parameter, normalize, under, written_paths
from ..jinja import literal_shape, template_parts
from ..registry import PlanContext, task_rule
from ..tasks import expand, kind

UNIT_MODULE = "intagent.systemd_unit"


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """systemd units (and drop-ins) are never written by copy, lineinfile, blockinfile, get_url, unarchive
    or a link: a unit is installed only with intagent.systemd_unit, which renders intagent's own template
    for a unit the manifest declares in ``units`` (program, unprivileged user and argument shapes fixed
    there). Each argument is literal without whitespace, or uses only parameters with patterns, and
    matches one of the declared shapes. Deleting the integration's own unit (uninstall) is fine."""
    if kind(task) == UNIT_MODULE:
        yield from _unit_task(ctx, task)
        return
    for raw, action in written_paths(task):
        for value in expand(task, raw):
            if action != "delete" and isinstance(value, str) and any(
                    under(normalize(literal_shape(value)), d) for d in UNIT_DIRECTORIES):
                yield f"writes {value}: systemd units come only from intagent.systemd_unit"


RULE = task_rule("IA118", "unit-not-from-template", check)


def _unit_task(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    name, arguments = task.args.get("name"), task.args.get("arguments", [])
    unit = ctx.manifest.units.get(name) if isinstance(name, str) else None
    if unit is None:
        yield f"unit {name!r} is not one of the manifest's units ({', '.join(ctx.manifest.units) or 'none'})"
        return
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        yield "arguments must be a list of strings"
        return
    for argument in arguments:
        parts = template_parts(argument)
        if parts is None or any(isinstance(p, str) and (not p.isprintable() or " " in p) for p in parts):
            yield f"unit argument {argument!r} must be one word without spaces or control characters"
        elif any(not isinstance(p, str) and not checked_parameter(ctx, p) for p in parts):
            yield f"unit argument {argument!r} may only use parameters with patterns"
        elif not any(fnmatch.fnmatchcase(literal_shape(argument), shape) for shape in unit.arguments):
            yield f"unit argument {argument!r} matches none of {', '.join(unit.arguments) or 'no argument'}"
