"""Rule IA108 download-without-checksum: downloads are pinned by a checksum that can never be empty."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ...schema import GeneratedTask
from ..data import PACKAGE_MODULES
from ..footprint import parameter_name, task_urls, url_problem
from ..jinja import is_parameter, is_templated, literal_shape, template_parts
from ..registry import PlanContext, task_rule
from ..tasks import kind

STRONG_CHECKSUMS = frozenset({"sha256", "sha384", "sha512"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Downloads are pinned by a checksum: get_url's checksum is a literal ``sha256:<hex>`` (or sha384,
    sha512), ``sha256:<URL>`` with a URL allowed by IA107 (upstream's sha256sums.txt), or exactly a
    parameter that can never be empty (required, or a non-empty default and a pattern that refuses
    empty): a parameter defaulting to '' would switch the check off. unarchive, apt deb and package names
    never fetch URLs themselves: download with get_url and a checksum first, then use the local file."""
    k, a = kind(task), task.args
    if k == "get_url":
        checksum = a.get("checksum")
        if not checksum:
            yield "get_url needs a checksum"
        elif problem := checksum_problem(ctx, checksum):
            yield problem
        elif isinstance(checksum, str) and not is_templated(checksum.partition(":")[0]) and (
                checksum.partition(":")[0].lower() not in STRONG_CHECKSUMS):
            yield f"checksum algorithm {checksum.partition(':')[0]!r} is weak; use sha256, sha384 or sha512"
    if k in ("unarchive", "apt") or k in PACKAGE_MODULES:
        for key, value in task_urls(task):
            if key in ("src", "deb", "name"):
                yield f"{k} {key} {value} downloads without a checksum; fetch it with get_url and a checksum first"


RULE = task_rule("IA108", "download-without-checksum", check)


def checksum_problem(ctx: PlanContext, checksum: Any) -> str | None:
    """Why a get_url checksum may end up empty or unchecked, or None."""
    if not isinstance(checksum, str):
        return f"checksum {checksum!r} is not a string"
    parts = template_parts(checksum)
    if parts is not None and is_parameter(ctx, checksum):  # a parameter: one part, its expression
        spec = ctx.manifest.parameters[parameter_name(ctx, parts[0])]
        never_empty = spec.required or (spec.default not in (None, "") and spec.pattern is not None
                                        and not re.fullmatch(spec.pattern, ""))
        return None if never_empty else (f"checksum {checksum} is a parameter that may be empty (default "
                                         f"{spec.default!r}), which turns the check off")
    algorithm, _, value = checksum.partition(":")
    if is_templated(algorithm) or not value:
        return f"checksum {checksum!r} must be <algorithm>:<hex or URL>"
    if not is_templated(value):
        if "://" in value or re.fullmatch(r"[0-9a-fA-F]{64,128}", value):
            return None
        return f"checksum {checksum!r} is neither a hex digest nor a URL"
    value_parts = template_parts(value)
    if "://" in literal_shape(value) or (value_parts is not None and not isinstance(value_parts[0], str)):
        return None if url_problem(ctx, value) is None else f"checksum URL {value} is not allowed (IA107)"
    return f"checksum {checksum!r} is built with Jinja; write the digest literally"
