"""Rule IA110: secret parameters (and values derived from them) are handled with no_log and diff off, and never
shown in names, URLs, command lines, messages, loops, the evidence fact or files outside the footprint."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..schema import GeneratedTask
from .data import WRITE_MODULES
from .footprint import _under, normalize
from .jinja import is_templated, jinja_names
from .registry import PlanContext, plan_rule
from .tasks import arg, kind, rendered_strings


@plan_rule("IA110", "secret-handling")
def secret_handling(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """A task that reads a secret parameter (or a value registered or set from one, or file content via
    slurp) has no_log: true and diff: false. A secret never appears in a task name, a URL, a command line,
    debug, assert/fail messages, a uri body, a loop, the evidence fact, or a file outside owns.paths."""
    tainted = set(ctx.secrets)
    if not tainted:
        return
    for section, index, task in ctx.tasks():
        hits = [(location(where), text, names) for where, text, expression in rendered_strings(task)
                if (names := jinja_names(text, expression) & tainted)]
        if not hits and kind(task) != "slurp":
            continue
        for message in _secret_task(ctx, task, hits):
            yield section, index, message
        if task.register:
            tainted.add(task.register)
        if kind(task) == "set_fact":
            tainted.update(f"{where}"[5:] for where, _, _ in hits if where.startswith("args."))


def location(where: str) -> str:
    """``args.KEY`` for anything inside an argument, else the task field (name, when, loop, ...)."""
    head, _, rest = where.partition(".")
    key = re.split(r"[.\[]", rest)[0]
    return f"args.{key}" if head == "args" else where.split("[")[0].split(".")[0]


SECRET_PLACES = {  # (module or "*", location) -> where a secret would be shown
    ("*", "name"): "the task name (printed even under no_log)", ("*", "loop"): "loop items",
    ("command", "args.cmd"): "a command line", ("command", "args.argv"): "a command line",
    ("command", "args._raw_params"): "a command line", ("debug", "args.msg"): "debug output",
    ("debug", "args.var"): "debug output", ("assert", "args.fail_msg"): "a failure message",
    ("assert", "args.msg"): "a failure message", ("assert", "args.success_msg"): "a message",
    ("fail", "args.msg"): "a failure message", ("uri", "args.body"): "a request body",
}
URL_ARGS = frozenset({"args.url", "args.repo", "args.baseurl", "args.gpgkey", "args.mirrorlist", "args.key"})


def _secret_task(ctx: PlanContext, task: GeneratedTask, hits: list[tuple[str, str, frozenset[str]]]) -> Iterator[str]:
    k = kind(task)
    label = ", ".join(sorted(set().union(*(h[2] for h in hits)))) or "file content (slurp)"
    if task.no_log is not True:
        yield f"handles {label} without no_log: true"
    if task.diff is not False:
        yield f"handles {label} without diff: false"
    where = {w for w, _, _ in hits}
    for place in sorted({SECRET_PLACES.get((k, w)) or SECRET_PLACES.get(("*", w)) for w in where} - {None}):
        yield f"{label} must not appear in {place}"
    if k == "set_fact" and f"args.{ctx.name}_evidence" in where:
        yield f"{label} must not appear in {ctx.name}_evidence: intagent reports the evidence"
    if any("://" in text for _, text, _ in hits) or (k != "set_fact" and where & URL_ARGS):
        yield f"{label} must not appear in a URL"
    dest = arg(task, "dest", "path", "destfile", "name")
    if k in WRITE_MODULES and hits and not (isinstance(dest, str) and not is_templated(dest) and any(
            _under(normalize(dest), entry) for entry in ctx.manifest.owns.paths)):
        yield f"writes {label} to {dest}, which is not one of the integration's own paths"
