"""Rule IA112 uninstall-scope: package tasks install and remove only the integration's own packages."""

from __future__ import annotations

from collections.abc import Iterator

from ...schema import GeneratedTask
from ..data import PACKAGE_MODULES
from ..jinja import is_parameter, owned_name
from ..registry import PlanContext, task_rule
from ..tasks import arg, as_list, expand, is_false, kind

HELPER_PACKAGES = frozenset({"gnupg", "gpg", "ca-certificates", "apt-transport-https", "python3-apt"})

VERSION_SUFFIX = r"(?:(?:[=<>]=?|-(?=[\d\x00]))[A-Za-z0-9+.:~*_\x00-]*)?"  # apt name=1.2, dnf name-1.2, name>=1.2


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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


RULE = task_rule("IA112", "uninstall-scope", check)
