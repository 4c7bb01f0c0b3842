"""The integration's footprint: which paths a task writes or reads (judged by IA105, IA106, IA117, IA118),
which URLs it fetches from, and whether those lie under the manifest's owns.urls (IA107, IA108)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote, urlsplit

from jinja2 import nodes

from ..schema import GeneratedTask
from .data import JINJA_NAMES, LOOPBACK, PACKAGE_MODULES, REPOSITORY_FILES, WRITE_MODULES
from .jinja import is_parameter, jinja_spans, literal_shape, template_parts
from .registry import PlanContext
from .tasks import arg, as_list, is_false, is_true, kind


def normalize(path: str) -> str:
    return "/" + posixpath.normpath(path).lstrip("/")


def under(path: str, entry: str) -> bool:
    """Is the normalized ``path`` the entry itself or below it?"""
    entry = normalize(entry)
    return path == entry or path.startswith(entry.rstrip("/") + "/")


def parameter_name(ctx: PlanContext, node: Any) -> str:
    """The manifest's name of the parameter an expression reads (``collectd_interval | int`` -> interval)."""
    while isinstance(node, nodes.Filter):
        node = node.node
    return node.name[len(ctx.name) + 1:]


def written_paths(task: GeneratedTask) -> Iterator[tuple[Any, str]]:
    """(path, action) for every path a task creates, changes or deletes."""
    k, a, state = kind(task), task.args, task.args.get("state")
    if k == "file":
        actions: dict[Any, str] = {"absent": "delete", "directory": "mkdir"}  # state: whatever the plan says
        yield arg(task, "path", "dest", "name"), actions.get(state, "write")
        if state in ("link", "hard"):
            yield a.get("src"), "write"
    elif k in ("copy", "template", "get_url", "unarchive", "uri") and "dest" in a:
        yield a["dest"], "write"
    elif k in ("lineinfile", "blockinfile"):
        yield arg(task, "path", "dest", "destfile", "name"), "write"
    if k == "get_url" and "tmp_dest" in a:
        yield a["tmp_dest"], "write"
    if k == "apt_key" and "keyring" in a:
        yield a["keyring"], "write"
    if k == "apt_repository" and "filename" in a:
        yield f"/etc/apt/sources.list.d/{a['filename']}.list", "delete" if state == "absent" else "write"
    if k == "yum_repository":
        directory, name = a.get("reposdir", "/etc/yum.repos.d"), a.get("file", a.get("name"))
        yield f"{directory}/{name}.repo", "delete" if state == "absent" else "write"
    if k == "user":
        home = a.get("home") or f"/home/{a.get('name')}"
        if state == "absent" and is_true(a.get("remove")):
            yield home, "delete"
        elif state != "absent" and (a.get("home") or not is_false(a.get("create_home", True))):
            yield home, "write"


def read_paths(task: GeneratedTask) -> Iterator[Any]:
    """Every path on the host a task reads a file from (slurp, copy or unarchive with remote_src)."""
    k, a = kind(task), task.args
    if k == "slurp":
        yield arg(task, "src", "path")
    elif k in ("copy", "unarchive") and is_true(a.get("remote_src")):
        yield a.get("src")


def url_matches(literal: str, entry: str, complete: bool) -> bool:
    """Does a URL (or a templated URL's literal start) lie under an owns.urls entry? Bare hosts mean https."""
    wanted = urlsplit(entry if "://" in entry else f"https://{entry}/")
    try:
        got = urlsplit(literal)
        if got.scheme.lower() != wanted.scheme.lower() or got.hostname != wanted.hostname or got.port != wanted.port:
            return False
    except ValueError:
        return False
    if not complete and not got.path.startswith("/"):
        return False  # the host is not finished: the template could extend it
    path = normalize(unquote(got.path) or "/") + ("/" if got.path.endswith("/") else "")
    want = wanted.path or "/"
    return path.startswith(want) or (complete and (path.rstrip("/") + "/").startswith(want))


def url_problem(ctx: PlanContext, url: Any, *, loopback: bool = False) -> str | None:
    """Why a URL is not allowed, or None. Allowed: a literal start under one of owns.urls (so the host is
    fixed) or one of the user's URL parameters (a parameter with a pattern; its declared ``{placeholders}``
    may be filled with ``replace``), followed by literal text, parameters with patterns and facts.
    ``loopback`` lets loopback URLs through for IA121 to judge."""
    if not isinstance(url, str):
        return f"URL {url!r} is not a string"
    parts = template_parts(url)
    if parts is None:
        return f"URL {url} is not a plain template"
    owned = ", ".join(ctx.manifest.owns.urls) or "none"
    if isinstance(parts[0], str):
        authority = literal_shape(url).partition("://")[2].partition("/")[0]
        if loopback and LOOPBACK.match(parts[0]) and "@" not in authority:
            return None
        if not any(url_matches(parts[0], entry, len(parts) == 1) for entry in ctx.manifest.owns.urls):
            return f"URL {url} is not under the integration's URLs ({owned})"
    elif not url_parameter(ctx, parts[0]):
        return (f"URL {url} must start with a literal URL under {owned} or one of the integration's URL "
                "parameters (with its placeholders filled by replace)")
    for part in parts[1:]:
        if not isinstance(part, str) and not (checked_parameter(ctx, part) or fact_expression(part)):
            return f"URL {url} is built from values other than parameters with patterns and facts"
    return None


def checked_parameter(ctx: PlanContext, node: Any) -> bool:
    """One of the user's parameters whose value the manifest checks with a pattern."""
    return is_parameter(ctx, node) and ctx.manifest.parameters[parameter_name(ctx, node)].pattern is not None


def url_parameter(ctx: PlanContext, node: Any) -> bool:
    """A URL parameter, its declared placeholders filled with ``replace`` from checked parameters or facts
    (node_exporter's ``binary_url | replace('{version}', ...) | replace('{arch}', ...)``), maybe ``| dirname``."""
    while isinstance(node, nodes.Filter) and node.name in ("replace", "dirname"):
        if node.name == "replace":
            if len(node.args) != 2 or node.kwargs:
                return False
            placeholder, value = node.args
            if not isinstance(placeholder, nodes.Const):
                return False
            inner = node.node
            while isinstance(inner, nodes.Filter):
                inner = inner.node
            if not isinstance(inner, nodes.Name) or inner.name not in ctx.parameters:
                return False
            spec = ctx.manifest.parameters[inner.name[len(ctx.name) + 1:]]
            if placeholder.value.strip("{}") not in spec.placeholders or placeholder.value[:1] != "{":
                return False
            if not (checked_parameter(ctx, value) or fact_expression(value)):
                return False
        node = node.node
    return checked_parameter(ctx, node)


def fact_expression(node: Any) -> bool:
    """A fact of the host (ansible_facts[...], ansible_architecture, ...) with literal replace filters."""
    while isinstance(node, nodes.Filter) and node.name in ("replace", "lower", "default", "string"):
        if not all(isinstance(a, nodes.Const) for a in node.args) or node.kwargs:
            return False
        node = node.node
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            return False
        node = node.node
    return isinstance(node, nodes.Name) and node.name.startswith("ansible_") and node.name in JINJA_NAMES


def tokens(line: str) -> list[str]:
    """Whitespace-separated words of ``line`` with each ``{{ ... }}`` kept whole, in one linear pass."""
    words, word, pos = [], [], 0
    spans = jinja_spans(line)
    span = 0
    while pos < len(line):
        if span < len(spans) and pos == spans[span][0]:
            word.append(line[pos:spans[span][1]])
            pos = spans[span][1]
            span += 1
            continue
        if line[pos].isspace():
            if word:
                words.append("".join(word))
                word = []
        else:
            word.append(line[pos])
        pos += 1
    if word:
        words.append("".join(word))
    return words


def apt_line_uris(line: str) -> list[str]:
    """The URI of a one-line apt source (``deb [options] URI suite ...``); anything else as a whole."""
    words = tokens(line)
    if not words or words[0] not in ("deb", "deb-src"):
        return [line]
    i = 1
    if i < len(words) and words[i].startswith("["):
        while i < len(words) and not words[i].endswith("]"):
            i += 1
        i += 1
    return words[i:i + 1] or [""]


def repository_file_urls(text: str) -> Iterator[str]:
    """The URLs in the text of an apt or yum repository file."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("deb ", "deb-src ")):
            yield from apt_line_uris(line)
        elif match := re.match(r"(baseurl|mirrorlist|metalink|gpgkey|URIs)\s*[=:]\s*(.+)", line, re.IGNORECASE):
            yield from tokens(match.group(2))


def task_urls(task: GeneratedTask) -> Iterator[tuple[str, Any]]:
    """(argument, URL) for every URL a task fetches from or points a package manager at."""
    k, a = kind(task), task.args
    keys = {"get_url": ("url",), "uri": ("url",), "apt_key": ("url", "keyserver"),
            "yum_repository": ("baseurl", "mirrorlist", "metalink", "gpgkey")}.get(k, ())
    for key in keys:
        for value in as_list(a.get(key)) if k == "yum_repository" else [a[key]] if key in a else []:
            yield key, value
    if k == "get_url" and isinstance(a.get("checksum"), str) and "://" in a["checksum"]:
        yield "checksum", a["checksum"].partition(":")[2]
    if k == "apt_repository" and isinstance(a.get("repo"), str):
        yield from (("repo", uri) for uri in apt_line_uris(a["repo"]))
    for key, value in (("key", a.get("key")), ("src", a.get("src")), ("deb", a.get("deb"))):
        if k in ("rpm_key", "unarchive", "apt") and isinstance(value, str) and "://" in value:
            yield key, value
    if k in PACKAGE_MODULES:
        yield from (("name", n) for n in as_list(arg(task, "name", "pkg")) if isinstance(n, str) and "://" in n)
    dest = arg(task, "dest", "path", "destfile")
    if k in WRITE_MODULES and isinstance(dest, str) and any(fnmatchcase(normalize(literal_shape(dest)), p)
                                                             for p in REPOSITORY_FILES):
        for key in ("content", "line", "block"):
            if isinstance(a.get(key), str):
                yield from ((key, url) for url in repository_file_urls(a[key]))
