"""Rule IA107 url-not-allowed: URLs only under the manifest's owns.urls or the user's URL parameters."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..footprint import task_urls, url_problem
from ..registry import PlanContext, task_rule
from ..tasks import expand, kind


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every URL a task downloads from or points a package manager at (get_url, uri, apt_repository,
    apt_key, yum_repository, rpm_key, remote unarchive, apt deb, package URLs, repository files written
    with copy) starts with a literal under one of the manifest's owns.urls (a bare host means https on
    that host), or with one of the user's URL parameters (a mirror; a parameter with a pattern, its declared
    {placeholders} filled with replace from checked parameters or facts); the rest is literal, checked
    parameters or facts. Loopback URLs of uri are judged by IA121."""
    if kind(task) == "uri" and "unix_socket" in task.args:
        yield "uri unix_socket talks to a local daemon's socket"
    for key, raw in task_urls(task):
        for value in expand(task, raw):
            problem = url_problem(ctx, value, loopback=kind(task) == "uri")
            if problem:
                yield f"{key}: {problem}"


RULE = task_rule("IA107", "url-not-allowed", check)
