"""Rules IA100-IA104: the right integration, allowed modules, guarded commands, no forbidden task keywords
and no Jinja that runs on the controller."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator

from ..schema import MODULE_ALLOWLIST, GeneratedTask
from .data import (FORBIDDEN_KEYWORDS, FORBIDDEN_PROGRAMS, NEVER_MODULES, SAFE_DPKG_OPTIONS, SHELL_METACHARACTERS,
                   UNSAFE_TAR_OPTIONS, WRITE_MODULES)
from .jinja import controller_code, is_templated, parse_jinja
from .registry import PlanContext, plan_rule, task_rule
from .tasks import arg, as_list, is_true, kind, rendered_strings, walk


def command_problems(argv: list[str], label: str) -> Iterator[str]:
    program = argv[0] if argv else ""
    if not program or is_templated(program):
        yield f"{label}: the program must be written literally, not {program!r}"
        return
    base = posixpath.basename(program)
    stem = re.sub(r"[\d.]+$", "", base)
    for category, programs in FORBIDDEN_PROGRAMS.items():
        if base in programs or stem in programs:
            yield f"{label} runs {base}, {category}"
    if base == "chmod" and any(re.search(r"[ugoa]*[+=][rwxXt]*s|^[2467]\d{3}$", t) for t in argv[1:]):
        yield f"{label} sets a setuid/setgid bit"


def split_command(line: str) -> list[str] | None:
    """Shell-style words of a command line with Jinja expressions kept whole; None if quoting is broken."""
    try:
        return shlex.split(re.sub(r"\{\{.*?\}\}", lambda m: m.group().replace(" ", ""), line))
    except ValueError:
        return None


@plan_rule("IA100", "wrong-integration")
def wrong_integration(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """The plan names the integration it was asked for; a plan for another integration is judged against
    the wrong footprint and is refused."""
    if ctx.plan.integration != ctx.name:
        yield "", None, f"plan is for {ctx.plan.integration!r}, not {ctx.name!r}"


@task_rule("IA101", "module-not-allowed")
def module_not_allowed(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every task uses a fully qualified module from intagent's allowlist (``intagent schema generation``).
    shell, raw and script are never allowed: they run arbitrary shell code that no gate can judge."""
    module = task.module
    if module.rpartition(".")[2] in NEVER_MODULES:
        yield (f"{module} runs arbitrary shell code and is never allowed; use a module, or ansible.builtin.command"
               " with argv, a justification and creates/removes/changed_when")
    elif "." not in module:
        hint = f"; write ansible.builtin.{module}" if f"ansible.builtin.{module}" in MODULE_ALLOWLIST else ""
        yield f"module {module} is not fully qualified{hint}"
    elif module not in MODULE_ALLOWLIST:
        yield f"module {module} is not in the module allowlist"


@task_rule("IA102", "command-unguarded")
def command_unguarded(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """ansible.builtin.command needs a justification, says when it is done (creates, removes or
    changed_when other than true), passes argv (a list) or a cmd without shell syntax, and never runs a
    shell, downloader, interpreter, privilege tool, wrapper, or a tool that a module covers. The same
    program checks apply to the ``validate`` commands of file modules; unarchive's extra_opts must not
    run programs or write outside dest, and apt's dpkg_options are limited to the conffile choices."""
    k, a = kind(task), task.args
    if k == "command":
        yield from _command_task(task)
    if k in WRITE_MODULES and isinstance(a.get("validate"), str):
        words = split_command(a["validate"])
        if words is None or any(c in a["validate"] for c in SHELL_METACHARACTERS):
            yield f"validate command {a['validate']!r} is not a plain command"
        else:
            yield from command_problems(words, "validate")
    if k == "unarchive":
        for option in as_list(a.get("extra_opts")):
            if isinstance(option, str) and option.split("=")[0] in UNSAFE_TAR_OPTIONS:
                yield f"unarchive option {option} runs programs or writes outside dest"
    if k == "apt":
        for option in as_list(a.get("dpkg_options")):
            if option not in SAFE_DPKG_OPTIONS:
                yield f"dpkg option {option!r} is not one of {', '.join(sorted(SAFE_DPKG_OPTIONS))}"


def _command_task(task: GeneratedTask) -> Iterator[str]:
    a = task.args
    if not (task.justification or "").strip():
        yield "command needs a justification: why no module can do this"
    done = task.creates or task.removes or a.get("creates") or a.get("removes")
    if task.changed_when is None and not done:
        yield "command must say when it is done: creates, removes or changed_when"
    elif not done and is_true(task.changed_when):
        yield "command with changed_when: true reports a change on every run; use creates/removes or a condition"
    line = arg(task, "cmd", "_raw_params", "free_form")
    argv = a.get("argv")
    if (line is None) == (argv is None):
        yield "command needs exactly one of argv (a list) or cmd"
        return
    if argv is not None:
        if not isinstance(argv, list) or not argv or not all(isinstance(w, str) for w in argv):
            yield "argv must be a non-empty list of strings"
            return
        yield from command_problems(argv, "command")
        return
    if not isinstance(line, str):
        yield "cmd must be a string"
        return
    bare = re.sub(r"\{\{.*?\}\}", "", line, flags=re.DOTALL)
    found = [c for c in SHELL_METACHARACTERS if c in bare]
    if found:
        yield (f"command line {line[:80]!r} has shell syntax {' '.join(found)}; ansible.builtin.command runs no"
               " shell: use argv, or a module")
    shaped = re.sub(r"\{\{.*?\}\}", "X", line, flags=re.DOTALL)
    for segment in re.split(r"[|;&`<>]|\$\(", shaped) if found else [line]:
        words = split_command(segment)
        if words is None:
            yield f"command line {line[:80]!r} has unbalanced quotes"
        elif words or not found:
            yield from command_problems(words, "command")


@task_rule("IA103", "forbidden-keyword")
def forbidden_keyword(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Task keywords that change where or how a task runs (delegate_to, local_action, check_mode,
    ignore_errors, environment, become_user, vars, connection, run_once, ...) appear nowhere, not even as
    keys inside args; no_log is never false. set_fact and register set plain names only, never
    connection or interpreter variables (ansible_*) and never the user's parameters."""
    if task.no_log is False:
        yield "no_log: false is not allowed"
    for where, value in walk(task.args, "args"):
        if isinstance(value, dict):
            for key in value:
                if key in FORBIDDEN_KEYWORDS:
                    yield f"{where}.{key}: task keyword {key} is not allowed, not even inside args"
                elif key == "no_log" and not is_true(value[key]):
                    yield f"{where}.no_log: no_log must not be false"
    names = [(k, "set_fact") for k in task.args if isinstance(k, str)] if kind(task) == "set_fact" else []
    names += [(task.register, "register")] if task.register else []
    for name, how in names:
        if not name.isidentifier():  # set_fact templates its keys: a computed key could be anything
            yield f"{how} {name!r}: fact names must be plain identifiers"
        elif name.startswith("ansible_"):
            yield f"{how} {name}: connection and interpreter variables (ansible_*) must not be set"
        elif name in ctx.parameters:
            yield f"{how} {name}: overrides the user's parameter"


@task_rule("IA104", "controller-code")
def controller_code_rule(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """No Jinja that runs on or reads from the controller: lookup()/query()/q() and lookup plugin names,
    hostvars and vars, {% %} statements, dunder or private attributes, vault filters. Checked in every
    string Ansible templates (name, args, when, loop, changed_when, assert's that, debug's var, ...); a
    string that does not parse as Jinja is refused too. Plain variables and filters are fine. copy, uri
    and unarchive must not read files from the controller (remote_src), and template is refused because
    a generated plan has no template files."""
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
    k, a = kind(task), task.args
    if k == "template":
        yield "template reads its src on the controller; use ansible.builtin.copy with content"
    elif k in ("copy", "uri", "unarchive") and "src" in a and not is_true(a.get("remote_src")):
        if not (k == "unarchive" and isinstance(a["src"], str) and "://" in a["src"]):
            yield f"{k} src {a['src']!r} is read from the controller; use content, or remote_src: true"
