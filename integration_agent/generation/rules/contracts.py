"""Rules IA111-IA115: the verify contract, uninstall scope, handler references, and services and users
inside the footprint."""

from __future__ import annotations

from collections.abc import Iterator

from ..schema import GeneratedTask
from .data import HELPER_PACKAGES, PACKAGE_MODULES, SERVICE_MODULES, VERIFY_MODULES, VERSION_SUFFIX
from .jinja import is_parameter, owned_name
from .registry import PlanContext, plan_rule, task_rule
from .tasks import arg, as_list, expand, is_false, is_true, kind


@plan_rule("IA111", "verify-contract")
def verify_contract(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
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


@task_rule("IA112", "uninstall-scope")
def uninstall_scope(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Package tasks touch only owns.packages: removal never names another package, installation only
    adds owned packages and a few helpers (gnupg, gpg, ca-certificates, apt-transport-https, python3-apt);
    no autoremove and no system upgrade. A templated package name is one of the user's parameters or an
    owned name followed by a version (a parameter may stand for the version)."""
    k, a = kind(task), task.args
    if k not in PACKAGE_MODULES:
        return
    if not is_false(a.get("autoremove", False)) and not is_parameter(ctx, a.get("autoremove")):
        yield "autoremove removes packages the integration does not own"
    if a.get("upgrade") not in (None, False, "no") or a.get("name") == "*":
        yield "a system upgrade changes packages the integration does not own"
    removing = a.get("state") in ("absent", "removed")
    allowed = set(ctx.manifest.owns.packages) | (set() if removing else HELPER_PACKAGES)
    for raw in as_list(arg(task, "name", "pkg", "package")):
        for name in expand(task, raw):
            if isinstance(name, str) and "://" in name:
                continue  # IA107/IA108
            if not owned_name(ctx, name, allowed, VERSION_SUFFIX):
                verb = "removes" if removing else "installs"
                yield f"{verb} package {name}, which is not in owns.packages ({', '.join(ctx.manifest.owns.packages)})"


@plan_rule("IA113", "handler-reference")
def handler_reference(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """Every notify names a handler of the plan exactly, and handler names are unique; handlers only
    restart or reload a service, or reload systemd (daemon_reload)."""
    handlers = [h.name for h in ctx.plan.handlers]
    for section, index, task in ctx.tasks():
        for name in task.notify:
            if name not in handlers:
                yield section, index, f"notifies {name!r}, which is not a handler ({', '.join(handlers) or 'none'})"
    for index, task in enumerate(ctx.plan.handlers):
        a = task.args
        if handlers.count(task.name) > 1:
            yield "handlers", index, f"more than one handler is called {task.name!r}"
        state_ok = a.get("state") in ("restarted", "reloaded") or ("state" not in a and is_true(a.get("daemon_reload")))
        if kind(task) not in SERVICE_MODULES or not state_ok or {"enabled", "masked"} & a.keys():
            yield "handlers", index, "handlers may only restart or reload a service, or reload systemd"


@task_rule("IA114", "service-outside-footprint")
def service_outside_footprint(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Tasks start, stop, enable, mask or restart only the manifest's owns.services (or a service named by
    one of the user's parameters); reading another service's status is fine."""
    a = task.args
    if kind(task) not in SERVICE_MODULES or not {"state", "enabled", "masked"} & a.keys():
        return
    for value in expand(task, arg(task, "name", "service", "unit")):
        if not owned_name(ctx, value, ctx.manifest.owns.services, r"(?:\.service)?"):
            yield f"manages service {value}, which is not in owns.services ({', '.join(ctx.manifest.owns.services)})"


@task_rule("IA115", "user-outside-footprint")
def user_outside_footprint(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """user and group tasks create, change or remove only the manifest's owns.users (or a name given by
    one of the user's parameters)."""
    if kind(task) not in ("user", "group"):
        return
    for value in expand(task, task.args.get("name")):
        if not owned_name(ctx, value, ctx.manifest.owns.users):
            owned = ", ".join(ctx.manifest.owns.users) or "none"
            yield f"manages {kind(task)} {value}, which is not in owns.users ({owned})"
