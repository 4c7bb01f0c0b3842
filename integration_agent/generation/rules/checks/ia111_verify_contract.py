"""Rule IA111 verify-contract: verify sets the evidence fact, asserts after it, and only reads."""

from __future__ import annotations

from collections.abc import Iterator

from ..data import SERVICE_MODULES, VERIFY_MODULES
from ..registry import PlanContext, plan_rule
from ..tasks import is_false, kind


def check(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """verify sets ``<integration>_evidence`` (a dict) with set_fact before an ansible.builtin.assert,
    and only reads: stat, uri (GET/HEAD, no dest), wait_for, systemd_service/service without
    state/enabled/masked/daemon_reload, service_facts, package_facts, command with changed_when false,
    slurp, getent, assert, set_fact, debug, fail; it notifies no handler."""
    evidence = f"{ctx.name}_evidence"
    found = asserted = False
    for index, task in enumerate(ctx.plan.verify):
        k, a = kind(task), task.args
        if k == "set_fact" and evidence in a:
            found = True
            if not isinstance(a[evidence], dict):
                yield "verify", index, f"{evidence} must be a dict of named evidence"
        asserted = asserted or (found and k == "assert")
        if k not in VERIFY_MODULES:
            yield "verify", index, f"{task.module} may change the host; verify only reads"
        elif k in SERVICE_MODULES and {"state", "enabled", "masked", "daemon_reload", "daemon_reexec"} & a.keys():
            yield "verify", index, "verify must not start, stop, restart, enable or reload services"
        elif k == "uri" and (str(a.get("method", "GET")).upper() not in ("GET", "HEAD") or "dest" in a):
            yield "verify", index, "verify may only GET or HEAD, without dest"
        elif k == "command" and not is_false(task.changed_when):
            yield "verify", index, "a command in verify needs changed_when: false"
        if task.notify:
            yield "verify", index, "verify must not notify handlers"
    if not found:
        yield "verify", None, f"verify must set {evidence} with ansible.builtin.set_fact"
    elif not asserted:
        yield "verify", None, f"verify must assert after setting {evidence}"


RULE = plan_rule("IA111", "verify-contract", check)
