"""Rules IA116-IA119 and IA121: the module argument allowlist, nothing the plan writes is executed by it,
systemd units only from intagent's template, failed_when/changed_when that cannot hide a failure, and
loopback calls only to the integration's own ports, in verify."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from jinja2 import nodes

from ..schema import GeneratedTask
from .data import (FIXED_ARGUMENTS, LOOPBACK, MODULE_ARGUMENTS, REFUSED_ARGUMENTS, TEMP_DIRECTORIES, UNIT_DIRECTORIES,
                   UNIT_MODULE, VERIFY_MODULES, WRITE_MODULES)
from .footprint import _parameter_name, _under, checked_parameter, normalize, written_paths
from .jinja import is_parameter, is_templated, literal_shape, parse_jinja, template_parts
from .registry import PlanContext, plan_rule, task_rule
from .tasks import expand, is_false, is_true, kind


@task_rule("IA116", "argument-not-allowed")
def argument_not_allowed(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every module has an allowlist of arguments; anything else is refused, among them the ones that run
    code, follow links, fetch, send or read data elsewhere: validate (except a declared command), follow,
    environment, deb, unix_socket, body, headers, tmp_dest, keyserver, include, conf_file, enablerepo,
    password, generate_ssh_key, cmd (argv only), stdin, chdir, attributes, decrypt, validate_certs...
    Some arguments have fixed values: remote_src true, uri follow_redirects none and method GET/HEAD."""
    k = kind(task)
    allowed = MODULE_ARGUMENTS.get(k)
    if allowed is None:
        return  # IA101 refuses the module
    for key, value in task.args.items():
        if k == "set_fact":
            if key == "cacheable":
                yield f"set_fact {key}: {REFUSED_ARGUMENTS[key]}"
            continue
        if key not in allowed:
            why = REFUSED_ARGUMENTS.get(key, "is not on the list")
            yield f"{k} argument {key!r} {why}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        elif (k, key) in FIXED_ARGUMENTS and not _fixed(FIXED_ARGUMENTS[(k, key)], value):
            yield f"{k} argument {key!r} must be {FIXED_ARGUMENTS[(k, key)]!r}, not {value!r}"
    if k == "copy" and "src" in task.args and "remote_src" not in task.args:
        yield "copy src reads a file on the controller; use content, or src with remote_src: true"


def _fixed(want: Any, got: Any) -> bool:
    if isinstance(want, tuple):
        return isinstance(got, str) and got.upper() in want
    return is_true(got) if want is True else got == want


@plan_rule("IA117", "executes-written-file")
def executes_written_file(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """No file the plan writes (or unpacks, or any file below a directory it writes into) may be run by
    the plan: command argv[0] and validate programs must be files the plan does not create, and never in
    a temporary directory (/tmp, /var/tmp, /dev/shm). The only way to run what a plan installed is a unit
    from intagent's template (IA118), whose program the manifest names."""
    written = {normalize(literal_shape(value)) for _, _, task in ctx.tasks() for raw, action in written_paths(task)
               if action != "delete" for value in expand(task, raw) if isinstance(value, str)}
    for section, index, task in ctx.tasks():
        for program in _programs(task):
            path = normalize(literal_shape(program))
            if any(_under(path, d) for d in TEMP_DIRECTORIES):
                yield section, index, f"runs {program} from a temporary directory"
            elif any(_under(path, w) for w in written):
                yield section, index, f"runs {program}, which the plan itself writes"


def _programs(task: GeneratedTask) -> Iterator[str]:
    argv = task.args.get("argv")
    if kind(task) == "command" and isinstance(argv, list) and argv and isinstance(argv[0], str):
        yield argv[0]
    validate = task.args.get("validate")
    if kind(task) in WRITE_MODULES and isinstance(validate, str) and validate.split():
        yield validate.split()[0]


@task_rule("IA118", "unit-not-from-template")
def unit_not_from_template(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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
                    _under(normalize(literal_shape(value)), d) for d in UNIT_DIRECTORIES):
                yield f"writes {value}: systemd units come only from intagent.systemd_unit"


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


@task_rule("IA119", "result-override")
def result_override(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """failed_when and changed_when only in forms that cannot hide a failure or a change: failed_when is
    ``<register> is failed`` optionally ``or`` more, or ``and not (ansible_check_mode and ...)`` (a check
    mode allowance), or false on a read-only task that registers a result for the evidence; changed_when
    on a module that changes the host is ``<register> is changed`` (optionally ``or`` more), false only on
    read-only modules (and commands, IA102)."""
    failed, changed = task.failed_when, task.changed_when
    read_only = kind(task) in VERIFY_MODULES and kind(task) != "command" or kind(task) in ("stat", "getent")
    if failed is not None and not is_true(failed):
        if is_false(failed):
            if not (read_only and task.register):
                yield "failed_when: false hides failures; only read-only tasks that register a result may use it"
        elif not _keeps(task.failed_when, task.register, "failed"):
            yield f"failed_when {failed!r} can hide a failure; write '{task.register or 'result'} is failed or ...'"
    if changed is not None and kind(task) != "command" and not read_only:
        if not isinstance(changed, str) or not _keeps(changed, task.register, "changed"):
            yield f"changed_when {changed!r} can hide a change; write '{task.register or 'result'} is changed or ...'"


def _keeps(text: Any, register: str | None, test: str) -> bool:
    """Is ``text`` an expression that is true whenever ``register`` is failed (or changed)?"""
    if not isinstance(text, str) or not register:
        return False
    ast = parse_jinja(text, True)
    if isinstance(ast, str) or len(ast.body) != 1 or len(ast.body[0].nodes) != 1:
        return False
    return _implied(ast.body[0].nodes[0], register, test)


def _implied(node: nodes.Node, register: str, test: str) -> bool:
    if isinstance(node, nodes.Test) and node.name == test and isinstance(node.node, nodes.Name):
        return node.node.name == register
    if isinstance(node, nodes.Getattr) and node.attr == test and isinstance(node.node, nodes.Name):
        return node.node.name == register
    if isinstance(node, nodes.Or):
        return _implied(node.left, register, test) or _implied(node.right, register, test)
    if isinstance(node, nodes.And) and test == "failed":  # ... and not (ansible_check_mode and ...)
        return _implied(node.left, register, test) and _check_mode_only(node.right)
    return False


def _check_mode_only(node: nodes.Node) -> bool:
    if not isinstance(node, nodes.Not) or not isinstance(node.node, nodes.And):
        return False
    left = node.node.left
    return isinstance(left, nodes.Name) and left.name == "ansible_check_mode"


@plan_rule("IA121", "loopback-call")
def loopback_call(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
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


def _loopback_problem(ctx: PlanContext, url: str, section: str) -> str | None:
    if section != "verify":
        return f"calls {url} on the host itself outside verify"
    parts = template_parts(url)
    if parts is None:
        return f"URL {url} is not a plain template"
    shape = "".join(p if isinstance(p, str) else "\0" for p in parts)
    authority = shape.split("://", 1)[1].split("/", 1)[0]
    host, _, port = authority.rpartition(":") if "]" not in authority.rpartition(":")[2] else (authority, "", "")
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
        return is_parameter(ctx, port) and ctx.manifest.parameters[_parameter_name(ctx, port)].port
    try:
        return int(port) in ctx.manifest.owns.ports
    except (TypeError, ValueError):
        return False


def _ports(ctx: PlanContext) -> str:
    named = [f"{{{{ {ctx.name}_{n} }}}}" for n, p in ctx.manifest.parameters.items() if p.port]
    return ", ".join([*map(str, ctx.manifest.owns.ports), *named]) or "none"
