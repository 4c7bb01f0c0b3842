"""Rule IA117 executes-written-file: nothing the plan writes, and nothing in a temporary directory, is run by
the plan."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..data import WRITE_MODULES
from ..footprint import normalize, under, written_paths
from ..jinja import literal_shape
from ..registry import PlanContext, plan_rule
from ..tasks import expand, kind

TEMP_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm", "/run/user")


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """No file the plan writes (or unpacks, or any file below a directory it writes into) may be run by
    the plan: command argv[0] and validate programs must be files the plan does not create, and never in
    a temporary directory (/tmp, /var/tmp, /dev/shm). The only way to run what a plan installed is a unit
    from intagent's template (IA118), whose program the manifest names."""
    written = {normalize(literal_shape(value)) for _, _, task in ctx.tasks() for raw, action in written_paths(task)
               if action != "delete" for value in expand(task, raw) if isinstance(value, str)}
    for section, index, task in ctx.tasks():
        for program in _programs(task):
            path = normalize(literal_shape(program))
            if any(under(path, d) for d in TEMP_DIRECTORIES):
                yield section, index, f"runs {program} from a temporary directory"
            elif any(under(path, w) for w in written):
                yield section, index, f"runs {program}, which the plan itself writes"


RULE = plan_rule("IA117", "executes-written-file", check)


def _programs(task: GeneratedTask) -> Iterator[str]:
    argv = task.args.get("argv")
    if kind(task) == "command" and isinstance(argv, list) and argv and isinstance(argv[0], str):
        yield argv[0]
    validate = task.args.get("validate")
    if kind(task) in WRITE_MODULES and isinstance(validate, str) and validate.split():
        yield validate.split()[0]
