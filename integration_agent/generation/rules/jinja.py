"""Jinja read without rendering: parsing, the literal parts of a template, the values a template built from
the user's parameters can take, and where its ``{{ ... }}`` expressions are."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import nodes

if TYPE_CHECKING:
    from .registry import PlanContext


_JINJA = jinja2.Environment()  # Ansible's delimiters; only ever used to parse, never to render


def is_templated(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=512)  # check_plan clears it: answers are large and untrusted
def parse_jinja(text: str, expression: bool = False) -> nodes.Template | str:
    """The AST of a template, or of a bare expression (``when``); an error message if it does not parse."""
    source = "{{ " + text + " }}" if expression and not is_templated(text) else text
    try:
        return _JINJA.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"{exc.message} (line {exc.lineno})"
    except RecursionError:
        return "nested too deeply"


def template_parts(text: str) -> list[str | nodes.Expr] | None:
    """Literal text and expressions in order (adjacent text merged); None if it has statements or is broken."""
    if not is_templated(text):
        return [text]
    ast = parse_jinja(text)
    if isinstance(ast, str):
        return None
    outputs = [stmt for stmt in ast.body if isinstance(stmt, nodes.Output)]
    if len(outputs) != len(ast.body):
        return None
    parts: list[str | nodes.Expr] = []
    for node in (n for stmt in outputs for n in stmt.nodes):
        data = node.data if isinstance(node, nodes.TemplateData) else node
        if isinstance(data, str) and parts and isinstance(parts[-1], str):
            parts[-1] += data
        else:
            parts.append(data)
    return parts or [""]


def literal_shape(text: str) -> str:
    """The text with every expression replaced by ``X``: what the value looks like whatever it renders to."""
    parts = template_parts(text)
    return "".join(p if isinstance(p, str) else "X" for p in parts) if parts else text


def is_parameter(ctx: PlanContext, node: Any) -> bool:
    """An expression that is one of the user's (non-secret) parameters, with argument-free filters at most."""
    if isinstance(node, str):
        parts = template_parts(node)
        return parts is not None and len(parts) == 1 and not isinstance(parts[0], str) and is_parameter(ctx, parts[0])
    while isinstance(node, nodes.Filter) and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs):
        node = node.node
    return isinstance(node, nodes.Name) and node.name in ctx.parameters and node.name not in ctx.secrets


def possible_values(ctx: PlanContext, text: str, parameter: str) -> set[str] | None:
    """Every string ``text`` can render to when it is built only from literals, the user's parameters
    (rendered as ``parameter``), ``x if c else y`` and concatenation; None when it uses anything else."""
    parts = template_parts(text)
    if parts is None:
        return None
    values = {""}
    for part in parts:
        options = {part} if isinstance(part, str) else _node_values(ctx, part, parameter)
        if options is None:
            return None
        values = {a + b for a in values for b in options}
        if len(values) > 64:
            return None
    return values


def _node_values(ctx: PlanContext, node: nodes.Node, parameter: str) -> set[str] | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return {str(node.value)}
    if is_parameter(ctx, node):
        return {parameter}
    if isinstance(node, nodes.CondExpr):  # the condition cannot change which values are possible
        branches = [node.expr1, node.expr2] if node.expr2 is not None else [node.expr1, nodes.Const("")]
        each = [_node_values(ctx, b, parameter) for b in branches]
        known = [o for o in each if o is not None]
        return set[str]().union(*known) if len(known) == len(each) else None
    if isinstance(node, nodes.Concat):
        children = node.nodes
    elif isinstance(node, nodes.Add):
        children = [node.left, node.right]
    else:
        return None
    values = {""}
    for child in children:
        options = _node_values(ctx, child, parameter)
        if options is None:
            return None
        values = {a + b for a in values for b in options}
    return values


def owned_name(ctx: PlanContext, value: Any, owned: Iterable[str], suffix: str = "") -> bool:
    """A literal or templated name that can only render to an owned name (optionally + ``suffix``
    pattern), or that is exactly one of the user's parameters."""
    if not isinstance(value, str):
        return False
    if is_parameter(ctx, value):
        return True
    values = possible_values(ctx, value, "\0")
    return values is not None and bool(values) and all(
        any(re.fullmatch(re.escape(name) + suffix, v) for name in owned) for v in values)


def jinja_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every ``{{ ... }}`` in ``text``, found in one left-to-right pass (linear time: an
    unclosed ``{{`` ends the scan instead of being retried at every later brace)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := text.find("{{", pos)) >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            break
        spans.append((start, end + 2))
        pos = end + 2
    return spans
