"""Rule IA110 secret-handling: secret parameters (and values derived from them) are handled with no_log and
diff off, and never shown in names, URLs, command lines, messages, loops, the evidence fact or files
outside the footprint."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jinja2 import nodes

from ...schema import GeneratedTask
from ..data import WRITE_MODULES
from ..footprint import normalize
from ..jinja import is_templated, parse_jinja
from ..registry import PlanContext, plan_rule
from ..tasks import arg, kind, rendered_strings


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """A task that reads a secret parameter (or a value registered or set from one, or file content via
    slurp) has no_log: true and diff: false. A secret appears only in the content of copy, the line of
    lineinfile or the block of blockinfile, writing one of the manifest's secret_files (literal path) with
    a literal mode of 0600 or stricter (no group or other bits), or in a when condition; never in a task
    name, a URL, a command line, debug, messages, a loop, set_fact or the evidence fact."""
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


RULE = plan_rule("IA110", "secret-handling", check)


def location(where: str) -> str:
    """``args.KEY`` for anything inside an argument, else the task field (name, when, loop, ...)."""
    head, _, rest = where.partition(".")
    key = re.split(r"[.\[]", rest)[0]
    return f"args.{key}" if head == "args" else where.split("[")[0].split(".")[0]


def jinja_names(text: str, expression: bool = False) -> frozenset[str]:
    """The variable names a template (or a bare expression) reads."""
    if not expression and not is_templated(text):
        return frozenset()
    ast = parse_jinja(text, expression)
    return frozenset() if isinstance(ast, str) else frozenset(n.name for n in ast.find_all(nodes.Name))


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
    places = {SECRET_PLACES.get((k, w)) or SECRET_PLACES.get(("*", w)) for w in where}
    for place in sorted(p for p in places if p is not None):
        yield f"{label} must not appear in {place}"
    if k == "set_fact" and f"args.{ctx.name}_evidence" in where:
        yield f"{label} must not appear in {ctx.name}_evidence: intagent reports the evidence"
    if any("://" in text for _, text, _ in hits) or (k != "set_fact" and where & URL_ARGS):
        yield f"{label} must not appear in a URL"
    if not hits:
        return
    if where - SECRET_ALLOWED.get(k, set()) - {"when"}:
        for place in sorted(where - SECRET_ALLOWED.get(k, set()) - {"when"} - set(_shown(k, where))):
            yield f"{label} must not appear in {place} of {k}"
        return
    if k in WRITE_MODULES:
        yield from _secret_file(ctx, task, label)


SECRET_ALLOWED = {"copy": {"args.content"}, "lineinfile": {"args.line"}, "blockinfile": {"args.block"}}


def _shown(k: str, where: set[str]) -> list[str]:
    return [w for w in where if (k, w) in SECRET_PLACES or ("*", w) in SECRET_PLACES or w in URL_ARGS]


def _secret_file(ctx: PlanContext, task: GeneratedTask, label: str) -> Iterator[str]:
    dest, mode = arg(task, "dest", "path", "destfile", "name"), task.args.get("mode")
    if not (isinstance(dest, str) and not is_templated(dest) and normalize(dest) in
            {normalize(p) for p in ctx.manifest.secret_files}):
        secret_files = ", ".join(ctx.manifest.secret_files) or "none"
        yield f"writes {label} to {dest}, which is not one of the manifest's secret_files ({secret_files})"
    if not (isinstance(mode, str) and re.fullmatch(r"0?[0-7]{3}", mode) and int(mode, 8) & 0o077 == 0):
        yield f"writes {label} with mode {mode!r}: a secret file needs a literal mode of 0600 or stricter"
