"""Gate 2, the policy gate: intagent's own security rules for generated content, never delegated.

Two entry points, cheapest first:

* :func:`check_json_text` (and :func:`check_yaml_text` wherever YAML would be accepted) runs on the raw
  model answer *before* it is parsed: size, nesting depth (counted without recursion), syntax, aliases and
  duplicate keys (rules IA001-IA005, IA007, IA008; IA006 is the schema check in builder).
* :func:`check_plan` runs every rule in :data:`RULES` (IA1xx, one module each in ``rules/checks``) over every
  section of a schema-valid :class:`GeneratedPlan`, against the integration's manifest.

Both return findings as values (empty means the content passed); nothing here raises on bad content.
ansible-lint runs later and is not a security gate: it passes ``curl | bash``, sudoers edits,
``delegate_to`` and deletions anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from ..catalog import Manifest
from .rules.checks import RULES
from .rules.data import SECTIONS
from .rules.jinja import parse_jinja
from .rules.registry import Finding, GateDeadline, PlanContext, Rule
from .schema import GeneratedPlan

__all__ = ["Finding", "Rule", "RULES", "INPUT_RULES", "MAX_BYTES", "MAX_DEPTH", "check_plan", "check_json_text",
           "check_yaml_text", "describe_rules"]

MAX_BYTES = 262_144
MAX_DEPTH = 24

INPUT_RULES: list[Rule] = [
    Rule("IA001", "oversized", "The raw answer (JSON or YAML) is at most max_bytes (256 KiB) of UTF-8; larger "
         "input is refused before it is parsed."),
    Rule("IA002", "too-deeply-nested", "Brackets (JSON) or collections (YAML) nest at most max_depth (24) "
         "levels, counted by scanning, without recursion, so a 100,000-deep [[[[... cannot exhaust the stack."),
    Rule("IA003", "not-json", "The answer is one JSON object (no NaN or Infinity); the finding gives the "
         "position of the error, not the text."),
    Rule("IA004", "yaml-alias", "YAML has no anchors or aliases: a billion-laughs document is refused from its "
         "tokens, before anything is constructed."),
    Rule("IA005", "yaml-duplicate-key", "No YAML mapping has the same key twice (parsers silently keep one)."),
    Rule("IA007", "not-yaml", "The YAML scans and parses; the finding gives the position of the error."),
    Rule("IA008", "json-duplicate-key", "No JSON object has the same key twice (parsers silently keep the last, "
         "so what a reviewer reads may not be what runs)."),
    Rule("IA009", "gate-deadline", "The run has one deadline (llm.deadline) and every gate checks it while it "
         "works (the policy gate before each task of each rule, syntax check and ansible-lint as their time "
         "limit): a gate that would outlive it refuses the plan."),
]

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_JSON_SPECIAL = re.compile(r'[\[\]{}"]')
_JSON_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_SECTION_ORDER = {name: i for i, name in enumerate(("", *SECTIONS))}


def check_plan(plan: GeneratedPlan, manifest: Manifest, *, deadline: float | None = None) -> list[Finding]:
    """Every rule over every section (install, verify, uninstall, handlers); findings in plan order.
    ``deadline`` (a ``time.monotonic()`` value) is checked before every task of every rule: past it the
    plan is refused with IA009 instead of holding the run."""
    ctx = PlanContext(plan, manifest, deadline)
    findings: list[Finding] = []
    try:
        for rule in RULES:
            assert rule.check is not None
            try:
                findings.extend(rule.check(ctx))
            except GateDeadline as exc:
                return [Finding("IA009", str(exc))]
            except Exception as exc:  # a rule that cannot judge a plan refuses it (fail closed), naming itself
                findings.append(Finding(rule.id, f"the rule could not check this plan: {type(exc).__name__}: {exc}"))
    finally:
        parse_jinja.cache_clear()  # keep no model text alive between plans
    unique = dict.fromkeys(findings)  # same rule, task and message once, first occurrence order
    return sorted(unique, key=lambda f: (_SECTION_ORDER.get(f.section, 99), -1 if f.task is None else f.task,
                                         f.rule))


def check_json_text(text: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> list[Finding]:
    """Gate the raw JSON answer before ``json.loads``: size, depth, syntax and duplicate keys."""
    if oversized := _oversized(text, max_bytes):
        return [oversized]
    depth = _json_depth(text, max_depth)
    if depth > max_depth:
        return [Finding("IA002", f"nesting deeper than {max_depth} levels")]
    duplicates: list[str] = []
    try:
        value = json.loads(text, parse_constant=_reject_constant,
                           object_pairs_hook=lambda pairs: _note_duplicates(pairs, duplicates))
    except json.JSONDecodeError as exc:
        return [Finding("IA003", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                                 f"(character {exc.pos})")]
    except ValueError as exc:
        return [Finding("IA003", f"not valid JSON: {exc}")]
    except RecursionError:  # unreachable after the depth scan; kept so no input can crash the gate
        return [Finding("IA002", "nesting too deep to parse")]
    findings = [Finding("IA008", f"duplicate key {key!r}") for key in dict.fromkeys(duplicates)]
    if not isinstance(value, dict):
        findings.append(Finding("IA003", f"the answer must be a JSON object, not {type(value).__name__}"))
    return findings


def check_yaml_text(text: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> list[Finding]:
    """Gate YAML before it is loaded: size, anchors/aliases and depth from the token stream, then duplicate
    keys on the composed node tree (nothing is constructed)."""
    if oversized := _oversized(text, max_bytes):
        return [oversized]
    try:
        problem = _scan_yaml(text, max_depth)
        if problem:
            return [problem]
        documents = list(yaml.compose_all(text, Loader=_YAML_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        if "nesting depth" in reason:  # libyaml's own limit, met while it scans ahead of us
            return [Finding("IA002", f"nesting deeper than {max_depth} levels{where}")]
        return [Finding("IA007", f"not valid YAML: {reason}{where}")]
    return [Finding("IA005", f"duplicate key {key!r} at line {line}") for key, line in _yaml_duplicates(documents)]


def describe_rules() -> str:
    """A markdown table of every rule (input rules first), for docs/policy.md."""
    rows = ["| id | name | what it requires |", "|---|---|---|"]
    for rule in [*INPUT_RULES, *RULES]:
        rows.append(f"| {rule.id} | {rule.name} | {rule.doc.replace('|', '&#124;')} |")
    return "\n".join(rows) + "\n"


def _oversized(text: str, max_bytes: int) -> Finding | None:
    size = len(text) if len(text) > max_bytes else len(text.encode("utf-8", errors="surrogatepass"))
    return Finding("IA001", f"{size} bytes is more than the {max_bytes} allowed") if size > max_bytes else None


def _json_depth(text: str, max_depth: int) -> int:
    """Deepest bracket nesting outside strings, stopping early once past ``max_depth``."""
    depth = deepest = 0
    pos = 0
    while match := _JSON_SPECIAL.search(text, pos):
        char, pos = match.group(), match.end()
        if char == '"':
            end = _JSON_STRING_REST.match(text, pos)
            if end is None:
                break  # unterminated string: json.loads reports it
            pos = end.end()
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > max_depth:
                break
        else:
            depth -= 1
    return deepest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _note_duplicates(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return dict(pairs)


_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
            yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _scan_yaml(text: str, max_depth: int) -> Finding | None:
    depth = 0
    for token in yaml.scan(text, Loader=_YAML_LOADER):
        if isinstance(token, (yaml.AnchorToken, yaml.AliasToken)):
            what = "anchor" if isinstance(token, yaml.AnchorToken) else "alias"
            return Finding("IA004", f"YAML {what} &/*{token.value} at line {token.start_mark.line + 1}")
        if isinstance(token, _OPENING):
            depth += 1
            if depth > max_depth:
                return Finding("IA002", f"nesting deeper than {max_depth} levels at line {token.start_mark.line + 1}")
        elif isinstance(token, _CLOSING):
            depth -= 1
    return None


def _yaml_duplicates(documents: list[yaml.Node]) -> Iterator[tuple[Any, int]]:
    constructor = yaml.constructor.SafeConstructor()
    stack = list(documents)
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = constructor.construct_object(key_node)
                    if key in seen:
                        yield key, key_node.start_mark.line + 1
                    seen.add(key)
                stack.extend((key_node, value_node))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
