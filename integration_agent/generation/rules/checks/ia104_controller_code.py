"""Rule IA104 controller-code: Jinja only from intagent's allowlist, nothing that runs on or reads from the
controller."""

from __future__ import annotations

import re
from collections.abc import Iterator

from jinja2 import nodes

from ...schema import GeneratedTask
from ..data import JINJA_NAMES
from ..jinja import is_templated, parse_jinja
from ..registry import PlanContext, task_rule
from ..tasks import is_true, kind, rendered_strings

# Jinja that runs on, or reads from, the controller (lookup plugins, other hosts' vars, sandbox escapes).
CONTROLLER_NAMES = frozenset({
    "lookup", "query", "q", "pipe", "env", "file", "template", "password", "hostvars", "vars", "self",
    "import", "eval", "exec", "getattr", "globals", "os", "subprocess", "builtins"})


CONTROLLER_FILTERS = frozenset({"vault", "unvault"})

CONTROLLER_ATTRS = frozenset({"system", "popen", "spawn", "exec", "eval", "import_module"})

DUNDER = re.compile(r"^__|__$")

# The Jinja a plan may use besides data.JINJA_NAMES: filters, tests and methods known not to run code or
# read the controller. Everything else is refused.
JINJA_FILTERS = frozenset({
    "default", "d", "bool", "int", "float", "string", "lower", "upper", "trim", "replace", "join", "first", "last",
    "length", "count", "to_json", "to_nice_json", "to_yaml", "to_nice_yaml", "map", "select", "reject",
    "selectattr", "rejectattr", "list", "dict2items", "items2dict", "regex_replace", "regex_search", "combine",
    "basename", "dirname", "quote", "sort", "unique", "flatten", "difference", "union", "intersect", "abs",
    "round", "min", "max", "ternary", "mandatory", "dictsort", "split", "capitalize", "title", "indent", "b64encode"})


JINJA_TESTS = frozenset({
    "defined", "undefined", "none", "failed", "succeeded", "success", "changed", "skipped", "version", "in",
    "string", "number", "mapping", "sequence", "equalto", "eq", "ne", "lt", "gt", "le", "ge", "boolean", "true",
    "false", "truthy", "falsy", "match", "search", "integer", "iterable", "abs", "contains"})


JINJA_METHODS = frozenset({"startswith", "endswith", "split", "strip", "lower", "upper", "get", "keys", "values",
                           "items", "join", "rstrip", "lstrip"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Jinja is an allowlist: the only variables are the user's parameters, values the plan registers or
    sets, facts (ansible_facts, ansible_check_mode, ...) and item; the only filters, tests and methods are
    pure ones (default, bool, replace, join, to_json, regex_replace, is failed, .startswith ...); no
    function calls, no {% %} statements, no private attributes. So lookup/query, pipe, file, url, env,
    template, password, vars and hostvars cannot appear. Checked in every string Ansible templates (name,
    args, when, loop, changed_when, assert's that, debug's var, ...); a string that does not parse as
    Jinja is refused too. copy, uri and unarchive must not read files from the controller (remote_src)."""
    for where, text, expression in rendered_strings(task):
        if not expression and not is_templated(text):
            continue
        ast = parse_jinja(text, expression)
        if isinstance(ast, str):
            yield f"{where}: not valid Jinja ({ast})"
            continue
        found = sorted(set(controller_code(ast)))
        if found:
            yield f"{where}: uses {', '.join(found)}, which runs on or reads from the controller"
        refused = sorted(set(allowlist_problems(ctx, ast)) - set(found))
        if refused:
            yield f"{where}: uses {', '.join(refused)}, which is not on intagent's Jinja allowlist"
    k, a = kind(task), task.args
    if k == "template":
        yield "template reads its src on the controller; use ansible.builtin.copy with content"
    elif (k in ("copy", "uri", "unarchive") and "src" in a and not is_true(a.get("remote_src"))
          and not (k == "unarchive" and isinstance(a["src"], str) and "://" in a["src"])):
        yield f"{k} src {a['src']!r} is read from the controller; use content, or remote_src: true"


RULE = task_rule("IA104", "controller-code", check)


def controller_code(ast: nodes.Template) -> Iterator[str]:
    """What in a template runs on or reads from the controller: statements, lookups, private attributes."""
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Stmt) and not isinstance(node, nodes.Output):
            yield "a {% %} statement"
        elif isinstance(node, nodes.Name) and (node.name in CONTROLLER_NAMES or node.name.startswith("__")):
            yield f"'{node.name}'"
        elif isinstance(node, nodes.Getattr) and (node.attr.startswith("_") or node.attr in CONTROLLER_ATTRS):
            yield f"attribute '.{node.attr}'"
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and DUNDER.search(node.value):
            yield f"'{node.value}'"
        elif isinstance(node, (nodes.Filter, nodes.Test)) and node.name.rpartition(".")[2] in CONTROLLER_FILTERS:
            yield f"filter '{node.name}'"


def allowlist_problems(ctx: PlanContext, ast: nodes.Template) -> Iterator[str]:
    """What in a template is not on the Jinja allowlist: names other than the user's parameters, values the
    plan registers or sets, facts and ``item``; filters, tests and methods off the lists; any statement."""
    allowed = ctx.parameters | ctx.plan_defined | JINJA_NAMES
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Stmt) and not isinstance(node, nodes.Output):
            yield "a {% %} statement"
        elif isinstance(node, nodes.Name) and node.name not in allowed:
            yield f"variable '{node.name}'"
        elif isinstance(node, nodes.Filter) and node.name.removeprefix("ansible.builtin.") not in JINJA_FILTERS:
            yield f"filter '{node.name}'"
        elif isinstance(node, nodes.Test) and node.name.removeprefix("ansible.builtin.") not in JINJA_TESTS:
            yield f"test '{node.name}'"
        elif isinstance(node, nodes.Call) and not (isinstance(node.node, nodes.Getattr)
                                                   and node.node.attr in JINJA_METHODS):
            yield "a function call"
        if isinstance(node, nodes.Filter) and node.name in _NAMING_FILTERS:
            index = _NAMING_FILTERS[node.name]
            named = node.args[index] if len(node.args) > index else None
            if isinstance(named, nodes.Const) and named.value not in JINJA_FILTERS | JINJA_TESTS:
                yield f"'{named.value}' named in {node.name}"
            elif named is not None and not isinstance(named, nodes.Const):
                yield f"a computed filter name in {node.name}"


_NAMING_FILTERS = {"map": 0, "select": 0, "reject": 0, "selectattr": 1, "rejectattr": 1}  # arg naming a filter/test
