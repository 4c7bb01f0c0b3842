"""Rule IA121 loopback-call: calls to the host itself only in verify, only to the integration's own ports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from jinja2 import nodes

from ..data import LOOPBACK
from ..footprint import parameter_name
from ..jinja import is_parameter, is_templated, template_parts
from ..registry import PlanContext, plan_rule
from ..tasks import kind


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """Calls to the host itself (uri to 127.0.0.1, localhost, [::1]; wait_for) happen only in verify and
    only to the integration's own ports: a literal in owns.ports or a parameter the manifest marks as a
    port. Another local service's admin API is out of reach."""
    for section, index, task in ctx.tasks():
        k = kind(task)
        if k == "uri":
            url = task.args.get("url")
            if isinstance(url, str) and LOOPBACK.match(url):
                problem = _loopback_problem(ctx, url, section)
                if problem:
                    yield section, index, problem
        elif k == "wait_for" and "port" in task.args:
            host = task.args.get("host", "127.0.0.1")
            if host not in ("127.0.0.1", "localhost", "::1"):
                yield section, index, f"wait_for host {host!r}: only the host itself may be probed"
            elif section != "verify":
                yield section, index, "wait_for a port belongs in verify"
            elif not _own_port(ctx, task.args["port"]):
                yield section, index, f"wait_for port {task.args['port']!r} is not one of the integration's ports"


RULE = plan_rule("IA121", "loopback-call", check)


def _loopback_problem(ctx: PlanContext, url: str, section: str) -> str | None:
    if section != "verify":
        return f"calls {url} on the host itself outside verify"
    parts = template_parts(url)
    if parts is None:
        return f"URL {url} is not a plain template"
    shape = "".join(p if isinstance(p, str) else "\0" for p in parts)
    authority = shape.split("://", 1)[1].split("/", 1)[0]
    _host, _, port = authority.rpartition(":") if "]" not in authority.rpartition(":")[2] else (authority, "", "")
    if not port:
        return f"URL {url} names no port; say which of the integration's ports it calls"
    if port == "\0":
        expressions = [p for p in parts if not isinstance(p, str)]
        ok = bool(expressions) and shape.count("\0") == 1 and _own_port(ctx, expressions[0])
    else:
        ok = _own_port(ctx, port)
    if not ok or "@" in authority or urlsplit(url.replace("{{", "").replace("}}", "")).username:
        return f"URL {url} calls a port that is not one of the integration's ports ({_ports(ctx)})"
    return None


def _own_port(ctx: PlanContext, port: Any) -> bool:
    """A literal port in owns.ports, or exactly a parameter the manifest marks as a port."""
    if isinstance(port, str) and is_templated(port):
        parts = template_parts(port)
        port = parts[0] if parts and len(parts) == 1 else None
    if isinstance(port, nodes.Node):
        return is_parameter(ctx, port) and ctx.manifest.parameters[parameter_name(ctx, port)].port
    try:
        return int(port) in ctx.manifest.owns.ports
    except (TypeError, ValueError):
        return False


def _ports(ctx: PlanContext) -> str:
    named = [f"{{{{ {ctx.name}_{n} }}}}" for n, p in ctx.manifest.parameters.items() if p.port]
    return ", ".join([*map(str, ctx.manifest.owns.ports), *named]) or "none"
