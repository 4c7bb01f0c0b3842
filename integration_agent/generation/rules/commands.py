"""Rules IA100-IA104: the right integration, allowed modules, guarded commands, no forbidden task keywords
and no Jinja that runs on the controller."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator

from ..schema import MODULE_ALLOWLIST, GeneratedTask
from .data import FORBIDDEN_KEYWORDS, FORBIDDEN_PROGRAMS, NEVER_MODULES, SAFE_DPKG_OPTIONS, WRITE_MODULES
from .jinja import allowlist_problems, controller_code, is_parameter, is_templated, mask_expressions, parse_jinja
from .registry import PlanContext, plan_rule, task_rule
from .tasks import as_list, is_true, kind, rendered_strings, walk


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
        return shlex.split(mask_expressions(line))
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


@task_rule("IA102", "command-not-declared")
def command_unguarded(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """ansible.builtin.command runs only an argv (a list) that is exactly one of the shapes the manifest
    declares in ``commands`` (literal words, or a parameter where the shape has one), with a justification
    and a statement of when it is done (creates, removes or changed_when other than true). A file module's
    ``validate`` must be a declared shape with ``%s``. Whatever a manifest declares, shells, downloaders,
    interpreters, privilege tools and wrappers (setarch, env, nice, timeout, xargs, find, busybox...) are
    refused, and unarchive's extra_opts are limited to --strip-components."""
    k, a = kind(task), task.args
    if k == "command":
        yield from _command_task(ctx, task)
    if k in WRITE_MODULES and "validate" in a:
        words = split_command(a["validate"]) if isinstance(a["validate"], str) else None
        if not words or _declared(ctx, words, "%s") is None:
            yield f"validate {a['validate']!r} is not one of the manifest's commands with %s ({_shapes(ctx)})"
        else:
            yield from command_problems(words, "validate")
    if k == "unarchive":
        for option in as_list(a.get("extra_opts")):
            if not (isinstance(option, str) and re.fullmatch(r"--strip-components=\d{1,2}", option)):
                yield f"unarchive option {option!r} is not allowed (only --strip-components=N)"
    if k == "apt":
        for option in as_list(a.get("dpkg_options")):
            if option not in SAFE_DPKG_OPTIONS:
                yield f"dpkg option {option!r} is not one of {', '.join(sorted(SAFE_DPKG_OPTIONS))}"


def _shapes(ctx: PlanContext) -> str:
    return "; ".join(" ".join(shape) for shape in ctx.manifest.commands) or "the manifest declares none"


def _declared(ctx: PlanContext, argv: list[str], placeholder: str = "") -> list[str] | None:
    """The manifest's command shape ``argv`` matches word for word, or None."""
    for shape in ctx.manifest.commands:
        if len(shape) == len(argv) and (not placeholder or placeholder in shape) and all(
                _word_matches(ctx, want, got) for want, got in zip(shape, argv)):
            return shape
    return None


def _word_matches(ctx: PlanContext, want: str, got: str) -> bool:
    if is_templated(want):
        return is_templated(got) and is_parameter(ctx, got) and mask_expressions(got) == mask_expressions(want)
    return want == got


def _command_task(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    a = task.args
    if not (task.justification or "").strip():
        yield "command needs a justification: why no module can do this"
    done = task.creates or task.removes or a.get("creates") or a.get("removes")
    if task.changed_when is None and not done:
        yield "command must say when it is done: creates, removes or changed_when"
    elif not done and is_true(task.changed_when):
        yield "command with changed_when: true reports a change on every run; use creates/removes or a condition"
    argv = a.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(w, str) for w in argv):
        yield "command needs argv, a non-empty list of strings (a command line is never accepted)"
        return
    if _declared(ctx, argv) is None:
        yield f"command {' '.join(argv)[:120]!r} is not one of the manifest's commands ({_shapes(ctx)})"
    yield from command_problems(argv, "command")


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
    elif k in ("copy", "uri", "unarchive") and "src" in a and not is_true(a.get("remote_src")):
        if not (k == "unarchive" and isinstance(a["src"], str) and "://" in a["src"]):
            yield f"{k} src {a['src']!r} is read from the controller; use content, or remote_src: true"
