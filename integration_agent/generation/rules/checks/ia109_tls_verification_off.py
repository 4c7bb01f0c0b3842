"""Rule IA109 tls-verification-off: TLS certificates and package signatures are always checked."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...schema import GeneratedTask
from ..registry import PlanContext, task_rule
from ..tasks import is_false, is_true, kind, walk

TRUSTED_SOURCE = re.compile(
    r"\b(trusted|allow-insecure|allow-weak|allow-downgrade-to-insecure)\s*[=:]\s*(yes|true|1)\b", re.IGNORECASE)


UNSIGNED_REPO = re.compile(r"^\s*(gpgcheck|sslverify)\s*=\s*(0|no|false)\b", re.IGNORECASE | re.MULTILINE)


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """TLS certificates and package signatures are always checked: no validate_certs/sslverify other than
    true, no apt allow_unauthenticated or force, no dnf disable_gpg_check, no yum gpgcheck false, no
    [trusted=yes] (or allow-insecure/allow-weak) apt source options and no gpgcheck=0 in repository text."""
    for where, value in walk(task.args, "args"):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("validate_certs", "sslverify") and not is_true(item):
                    yield f"{where}.{key}: {item!r} turns certificate checks off"
                elif key in ("allow_unauthenticated", "disable_gpg_check") and not is_false(item):
                    yield f"{where}.{key}: {item!r} installs unsigned packages"
                elif key == "gpgcheck" and not is_true(item):
                    yield f"{where}.gpgcheck: {item!r} installs unsigned packages"
                elif key == "force" and kind(task) == "apt" and not is_false(item):
                    yield f"{where}.force: implies allow_unauthenticated"
        elif isinstance(value, str) and (match := TRUSTED_SOURCE.search(value) or UNSIGNED_REPO.search(value)):
            yield f"{where}: {match.group()!r} turns signature checks off"


RULE = task_rule("IA109", "tls-verification-off", check)
