"""Ansible's linear strategy with play-level modes made visible to templates, each template compiled once per
run, and the tasks that never reach a host run without a worker (``intagent_free`` and the Mitogen variants
take ``PlayModes``, ``CompileOnce`` and ``InlineTasks`` from this file).
Self-contained: a streaming job carries this folder to a worker that may have only Ansible (and Mitogen).

A play's ``check_mode: true`` (or ``diff: true``) runs its tasks in that mode, but ``ansible_check_mode`` and
``ansible_diff_mode`` still say what the command line asked for: Ansible sets them from ``--check`` and
``--diff`` once per process, over every play variable. Roles read ``ansible_check_mode`` to predict what check
mode cannot (a package not installed yet has no service to query). With ``PlayModes`` the two variables follow
the play that runs, so a dry-run play and the plays that apply can share one playbook, as they would with
``--check`` in playbooks of their own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from ansible.executor.task_executor import TaskExecutor
from ansible.plugins import loader as plugin_loader
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy


class PlayModes:
    """Strategy mixin: while a play runs, ``ansible_check_mode`` and ``ansible_diff_mode`` are its own modes
    (a play that sets neither keeps the command line's, as Ansible does)."""

    _variable_manager: Any

    def run(self, iterator: Any, play_context: Any) -> Any:
        play = iterator._play
        manager = self._variable_manager
        options = manager._options_vars  # shared by every play of the process: replaced, never changed
        modes = {"ansible_check_mode": bool(play.check_mode), "ansible_diff_mode": bool(play.diff)}
        manager._options_vars = {**options, **modes}
        try:
            return super().run(iterator, play_context)  # type: ignore[misc]
        finally:
            manager._options_vars = options


# Each template compiled once per run
#
# Ansible forks a worker for every host and task, and the worker compiles every template and conditional it
# evaluates (ansible-core 2.19 keeps no compiled templates), then exits with what it compiled. Jinja's
# compilation (lexing, parsing, generating Python, compiling that) is most of a controller-side task's CPU:
# 20 tasks of evidence-like set_fact and assert on 50 hosts took 36 CPU-seconds, 23 with this.
#
# ``CompileOnce`` compiles a task's templates in the strategy's own process before it forks the first worker
# for that task; every worker inherits the compiled code. What is cached is Jinja's code object (what
# Jinja's own bytecode cache keeps), keyed by the source and every setting compilation depends on, never a
# rendered value: compiling runs nothing of the template. Compiling ahead is only a warm-up: a template it
# misses, or one that fails to compile, is compiled by the worker as before and fails there as before.
# Where this ansible-core has none of the internals used here, nothing is changed (``COMPILE_CACHE``).

CACHE_LIMIT = 20_000  # compiled templates kept per process; beyond, the rest compile as Ansible does
TEMPLATE_FIELDS = ("name", "args", "vars", "loop", "environment", "delegate_to", "register", "notify")
CONDITION_FIELDS = ("when", "failed_when", "changed_when", "until")
ASSERT_ACTIONS = {"assert", "ansible.builtin.assert", "ansible.legacy.assert"}

_codes: dict[tuple[Any, ...], Any] = {}
_expression = threading.local()  # the key of the expression being compiled, for the Template node it becomes


def _settings(env: Any) -> tuple[Any, ...]:
    """What Jinja's compiled code depends on besides the source: the settings of its lexer, its optimizer and
    its code generator."""
    return (env.block_start_string, env.block_end_string, env.variable_start_string, env.variable_end_string,
            env.comment_start_string, env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
            env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline, env.optimized,
            env.finalize is not None, getattr(env.finalize, "jinja_pass_arg", None), env.is_async,
            repr(env.autoescape), tuple(sorted(env.extensions)),
            type(env).code_generator_class)


def _install() -> bool:
    """Wrap the compilation of Ansible's Jinja environment; False where this ansible-core lacks the internals."""
    try:
        from ansible._internal._templating import _jinja_bits
        from jinja2 import nodes
    except ImportError:
        return False
    env_class = getattr(_jinja_bits, "AnsibleEnvironment", None)
    context = getattr(_jinja_bits, "_TemplateCompileContext", None)
    if env_class is None or context is None or getattr(env_class.compile, "intagent", False):
        return env_class is not None and context is not None
    compile_code, compile_expression = env_class.compile, env_class.compile_expression

    def compile_once(self: Any, source: Any, name: Any = None, filename: Any = None, raw: bool = False,
                     defer_init: bool = False) -> Any:
        if self.overlayed or getattr(self, "_debuggable_template_source", False):
            return compile_code(self, source, name, filename, raw, defer_init)
        if isinstance(source, str):
            active = context.current(optional=True)
            key: tuple[Any, ...] | None = ("template", str(source), bool(active and active.escape_backslashes))
        elif isinstance(source, nodes.Template):
            key = getattr(_expression, "key", None)
        else:
            key = None
        if key is None:
            return compile_code(self, source, name, filename, raw, defer_init)
        key = (*key, name, filename, raw, defer_init, _settings(self))
        code = _codes.get(key)
        if code is None:
            code = compile_code(self, source, name, filename, raw, defer_init)
            if len(_codes) < CACHE_LIMIT:
                _codes[key] = code
        return code

    def compile_expression_once(self: Any, source: str, undefined_to_none: bool = True) -> Any:
        active = context.current(optional=True)
        _expression.key = ("expression", str(source), undefined_to_none, bool(active and active.escape_backslashes))
        try:
            return compile_expression(self, source, undefined_to_none)
        finally:
            _expression.key = None

    compile_once.intagent = True  # type: ignore[attr-defined]
    env_class.compile = compile_once
    env_class.compile_expression = compile_expression_once
    return True


COMPILE_CACHE = _install()


def _strings(value: Any) -> Iterator[str]:
    """Every string in ``value`` (nested in mappings and lists) that may be a template."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _conditions(task: Any) -> Iterator[str]:
    for field in CONDITION_FIELDS:
        value = getattr(task, field, None)
        yield from (c for c in (value if isinstance(value, list) else [value]) if isinstance(c, str))
    if task.action in ASSERT_ACTIONS and isinstance(task.args, dict):
        that = task.args.get("that")
        yield from (c for c in (that if isinstance(that, list) else [that]) if isinstance(c, str))


def compile_ahead(task: Any, loader: Any) -> int:
    """Compile the templates of ``task`` (its fields, its conditions, and the variables of its blocks, play and
    role) into this process's cache, rendering nothing; the number compiled. A template that does not compile is
    left to the worker, which reports it as Ansible does."""
    from ansible._internal._templating._engine import TemplateOptions
    from ansible.template import Templar

    engine = Templar(loader=loader)._engine
    templates = [s for field in TEMPLATE_FIELDS for s in _strings(getattr(task, field, None))]
    parent, play = task._parent, None
    while parent is not None:
        templates.extend(_strings(getattr(parent, "vars", None)))
        play = getattr(parent, "_play", None) or play
        parent = getattr(parent, "_parent", None)
    if play is not None:
        templates.extend(_strings(play.vars))
    role = task._role
    if role is not None:
        templates.extend(_strings(getattr(role, "_default_vars", None)))
        templates.extend(_strings(getattr(role, "_role_vars", None)))
    # Ansible evaluates a condition as an expression without escaping backslashes, as it compiles it here.
    expression = TemplateOptions(escape_backslashes=False, preserve_trailing_newlines=False)
    compiled = 0
    for source in templates:
        compiled += _ahead(engine._compile_template, source, TemplateOptions.DEFAULT)
    for condition in _conditions(task):
        condition = condition.strip()
        if "{{" in condition or "{%" in condition:
            compiled += _ahead(engine._compile_template, condition, TemplateOptions.DEFAULT)
        elif condition:
            compiled += _ahead(engine._compile_expression, condition, expression)
    return compiled


def _ahead(compile_with: Any, source: str, options: Any) -> int:
    try:
        compile_with(source, options)
    except Exception:  # the worker compiles it again and reports what is wrong
        return 0
    return 1


class CompileOnce:
    """Strategy mixin: before the first worker of a task is forked, compile the task's templates here, so that
    no worker compiles them again (see above)."""

    _loader: Any
    _compiled_tasks: set[str] | None = None

    def _queue_task(self, host: Any, task: Any, task_vars: Any, play_context: Any) -> Any:
        if self._compiled_tasks is None:
            self._compiled_tasks = set()
        if COMPILE_CACHE and task._uuid not in self._compiled_tasks:
            self._compiled_tasks.add(task._uuid)
            compile_ahead(task, self._loader)
        return super()._queue_task(host, task, task_vars, play_context)  # type: ignore[misc]


# Controller-side tasks run in the strategy's own process
#
# Forking a worker costs the controller about 20 ms of CPU per host and task, whatever the task does. For a
# task that never reaches the host that is most of its cost: an ``assert``, a ``set_fact``, an include, or any
# task whose ``when`` is false for that host (Ansible evaluates it in the worker). On 50 hosts each such task
# took 0.5-1.1 s; a dry run, apply and verify of node_exporter has eight of them.
#
# ``InlineTasks`` runs such a task for a host through Ansible's own ``TaskExecutor`` in the strategy's process,
# on a copy of the task (the executor changes the task it runs, as a worker changes its own copy), and sends the
# result through the same queue a worker would, so results, callbacks, events and stats are exactly a worker's.
# - Controller-side actions (``CONTROLLER_ACTIONS``) run there whole. None needs a connection (Ansible marks
#   the actions so, and an include returns before one), waits or prompts.
# - Any other task with a ``when`` is tried there: when its ``when`` is false the executor returns "skipped"
#   before anything else; when it is true the attempt stops right after the condition (``_NeedsWorker``), that
#   copy is dropped, and the task is forked as usual. After one such miss the task's other hosts are forked
#   without trying.
# - Never inline: loops (``when`` is per item), retries (``until`` sleeps between tries), ``delegate_to``, a
#   ``timeout`` (a SIGALRM in the strategy's process), ``async``, and a task whose conditions, arguments or
#   variables call a lookup (a condition's would run twice when it is true; a slow one, a URL say, would run
#   for one host after another instead of in every worker at once).

CONTROLLER_ACTIONS = frozenset({*ASSERT_ACTIONS, *(f"{prefix}{name}" for prefix in ("", "ansible.builtin.",
                                "ansible.legacy.") for name in ("set_fact", "fail", "debug", "include_tasks",
                                                                "include_role", "validate_argument_spec"))})
_LOOKUP_CALL = re.compile(r"\b(lookup|query|q)\s*\(")


try:  # what InlineTasks uses beyond Ansible's public modules; where this ansible-core lacks it, all is forked
    from ansible._internal._task import TaskContext
    from ansible.executor.task_result import _RawTaskResult
except ImportError:
    TaskContext = _RawTaskResult = None
INLINE_TASKS = TaskContext is not None


class _NeedsWorker(BaseException):
    """Raised through the executor (which catches Exception) when a task tried inline turns out to need a worker."""


def inline_kind(task: Any) -> str | None:
    """'whole' when ``task`` runs whole in the strategy's process, 'skip' when only a false ``when`` of it can,
    None when it always needs a worker."""
    if (task.loop or task.loop_with or task.until or task.delegate_to or task.timeout or task.async_val
            or any(_LOOKUP_CALL.search(c) for c in (*_conditions(task), *_strings(task.args), *_strings(task.vars)))):
        return None
    if task.action in CONTROLLER_ACTIONS:
        return "whole"
    return "skip" if task.when else None


class InlineTasks:
    """Strategy mixin: controller-side tasks, and tasks skipped by their ``when``, run in this process instead
    of a forked worker (see above)."""

    _final_q: Any
    _loader: Any
    _tqm: Any
    _variable_manager: Any
    _queued_task_cache: dict[tuple[str, str], dict[str, Any]]
    _pending_results: int
    _inline_misses: set[str] | None = None

    def _queue_task(self, host: Any, task: Any, task_vars: Any, play_context: Any) -> Any:
        if self._inline_misses is None:
            self._inline_misses = set()
        kind = inline_kind(task) if INLINE_TASKS and task._uuid not in self._inline_misses else None
        if kind is not None and self._run_inline(host, task, task_vars, play_context, whole=kind == "whole"):
            return None
        return super()._queue_task(host, task, task_vars, play_context)  # type: ignore[misc]

    def _run_inline(self, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any, whole: bool) -> bool:
        """Run ``task`` for ``host`` here and queue its result as a worker would; False (nothing sent, nothing
        changed) when it needs a worker after all."""
        copy = task.copy(exclude_tasks=True)
        if not whole:
            resolve = copy._resolve_conditional

            def only_false(conditional: Any, variables: Any, **kwargs: Any) -> bool:
                if resolve(conditional, variables, **kwargs):
                    raise _NeedsWorker()
                return False

            copy._resolve_conditional = only_false
        executor = TaskExecutor(host, copy, dict(task_vars), play_context, self._loader,
                                plugin_loader.get_plugin_loader_namespace(), self._final_q, self._variable_manager)
        try:
            with TaskContext(copy):
                result = executor.run()
        except _NeedsWorker:
            self._inline_misses.add(task._uuid)  # type: ignore[union-attr]
            return False
        self._tqm.send_callback("v2_runner_on_start", host, task)  # as the base class does for a worker
        self._queued_task_cache[(host.name, task._uuid)] = {"host": host, "task": task, "task_vars": task_vars,
                                                            "play_context": play_context}
        self._final_q.send_task_result(_RawTaskResult(host=host, task=copy, return_data=result,
                                                      task_fields=copy.dump_attrs()))
        self._pending_results += 1
        return True


class StrategyModule(CompileOnce, InlineTasks, PlayModes, LinearStrategy):
    pass
