"""Rule IA105 path-outside-footprint: every path a task writes, deletes or reads lies inside the integration's
footprint."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from ...schema import GeneratedTask
from ..data import SHARED_DIRECTORIES, SHARED_PATHS
from ..footprint import normalize, parameter_name, read_paths, under, written_paths
from ..jinja import is_parameter, is_templated, template_parts
from ..registry import PlanContext, task_rule
from ..tasks import expand, kind

DELETABLE_SHARED_PATHS = (*SHARED_PATHS[:3], "/tmp/intagent-{name}*")  # its sources, keys and own temp files


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every path a task writes, links or deletes lies inside the manifest's owns.paths, or matches the
    shared allowlist every package-based integration needs (its own apt/yum source and key files,
    /tmp/intagent-*, creating /etc/apt/keyrings). Deletions only within owns.paths and the source and
    key files; files copied or slurped from the host are read only from there too. Paths are literal and
    checked after normalisation, or start with a parameter the manifest confines with ``within``: no other
    Jinja (``{{ '.' ~ '.' }}``), and loop items are filled in before the check (``../x``)."""
    k, a = kind(task), task.args
    if k == "apt_repository" and "filename" not in a:
        yield "apt_repository needs filename (otherwise the source file is named after the URL)"
    if k == "apt_key" and "keyring" not in a:
        yield "apt_key without keyring trusts the key for every repository; write it to a keyring file"
    for raw, action in written_paths(task):
        for value in expand(task, raw):
            problem = path_problem(ctx, value, action)
            if problem:
                yield problem
    for raw in read_paths(task):
        for value in expand(task, raw):
            if problem := path_problem(ctx, value, "read"):
                yield f"{problem} (a file it reads)"


RULE = task_rule("IA105", "path-outside-footprint", check)


def path_problem(ctx: PlanContext, value: Any, action: str) -> str | None:
    """Why a path a task writes (``action`` write, delete, mkdir or read) is not allowed, or None.

    A path is literal, absolute and inside the footprint after normalisation, or starts with one of the
    user's parameters that the manifest confines with ``within`` (checked before any playbook runs) and
    continues with literal text that does not climb ('..'). No other Jinja: what a template renders to
    cannot be known here."""
    verb = {"delete": "deletes", "read": "reads"}.get(action, "writes")
    if not isinstance(value, str) or not value:
        return f"{verb} a path that is not a string: {value!r}"
    if "\0" in value or "\n" in value:
        return f"path {value!r} has a control character"
    if not is_templated(value):
        if not value.startswith("/"):
            return f"path {value} is not absolute"
        path = normalize(value)
        return None if path_allowed(ctx, path, action) else f"path {path} is outside the integration's footprint"
    parts = template_parts(value)
    if parts is None or isinstance(parts[0], str) or not is_parameter(ctx, parts[0]):
        return (f"path {value} is built with Jinja; write it literally, or start it with a parameter that the "
                "manifest confines (within)")
    spec = ctx.manifest.parameters[parameter_name(ctx, parts[0])]
    if not spec.within:
        return f"path {value} starts with a parameter the manifest does not confine with 'within'"
    rest = parts[1:]
    if any(not isinstance(p, str) for p in rest) and action != "read":
        return f"path {value} continues with Jinja after its parameter; write the rest literally"
    if any(isinstance(p, str) and ".." in p.split("/") for p in rest):
        return f"path {value} climbs out of its parameter with '..'"
    return None


def path_allowed(ctx: PlanContext, path: str, action: str) -> bool:
    """``action`` is write, delete or mkdir; ``path`` is normalized."""
    if any(under(path, entry) for entry in ctx.manifest.owns.paths):
        return True
    if action == "mkdir" and path in SHARED_DIRECTORIES:
        return True
    patterns = DELETABLE_SHARED_PATHS if action == "delete" else SHARED_PATHS
    return any(fnmatchcase(path, p.format(name=ctx.name)) for p in patterns)
