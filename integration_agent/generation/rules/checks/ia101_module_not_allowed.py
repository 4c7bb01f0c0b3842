"""Rule IA101 module-not-allowed: every task uses a fully qualified module from the allowlist, never a shell."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import MODULE_ALLOWLIST, GeneratedTask
from ..registry import PlanContext, task_rule

NEVER_MODULES = frozenset({"shell", "raw", "script", "expect", "telnet", "psexec", "win_shell", "win_command"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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


RULE = task_rule("IA101", "module-not-allowed", check)
