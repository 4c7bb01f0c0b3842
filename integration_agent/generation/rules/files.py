"""Rules IA105-IA109: paths inside the footprint, no privileged files, URLs under owns.urls, downloads
pinned by a checksum, TLS and signature checks always on."""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from ..schema import GeneratedTask
from .data import PACKAGE_MODULES, PRIVILEGED_GROUPS, SECRET_FILES, STRONG_CHECKSUMS, TRUSTED_SOURCE, UNSIGNED_REPO
from .footprint import _parameter_name, normalize, path_problem, privileged_problem, read_paths, task_urls, url_problem, written_paths
from .jinja import is_parameter, is_templated, literal_shape, template_parts
from .registry import PlanContext, task_rule
from .tasks import as_list, expand, is_false, is_true, kind, walk


def setuid_mode(mode: Any) -> bool:
    if isinstance(mode, str):
        mode = mode.strip()
        if re.fullmatch(r"0?[0-7]{3,4}", mode):
            return bool(int(mode, 8) & 0o6000)
        return bool(re.search(r"[+=][rwxXt]*s", mode))
    if type(mode) is int:
        digits = str(mode)
        return bool(mode & 0o6000) or (set(digits) <= set("01234567") and bool(int(digits, 8) & 0o6000))
    return False


@task_rule("IA105", "path-outside-footprint")
def path_outside_footprint(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every path a task writes, links or deletes lies inside the manifest's owns.paths, or matches the
    shared allowlist every package-based integration needs (its own apt/yum source and key files,
    /tmp/intagent-*, creating /etc/apt/keyrings). Deletions only within owns.paths and the source and
    key files; files copied or slurped from the host are read only from there too. Paths are literal and
    checked after normalisation, or start with a parameter the manifest confines with ``within``: no other
    Jinja (``{{ '.' ~ '.' }}``), and loop items are filled in before the check (``../x``)."""
    k, a = kind(task), task.args
    if k == "apt_repository" and "filename" not in a:
        yield "apt_repository needs filename (otherwise the source file is named after the URL)"
    if k == "apt_key" and "keyring" not in a:
        yield "apt_key without keyring trusts the key for every repository; write it to a keyring file"
    for raw, action in written_paths(task):
        for value in expand(task, raw):
            problem = path_problem(ctx, value, action)
            if problem:
                yield problem
    for raw in read_paths(task):
        for value in expand(task, raw):
            if problem := path_problem(ctx, value, "read"):
                yield f"{problem} (a file it reads)"


@task_rule("IA106", "privileged-file")
def privileged_file(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Files that grant privileges or run code as root (sudoers, ssh keys, passwd/shadow/group, PAM, cron,
    profile scripts, ld.so.preload, apt.conf.d, systemd units of other services, ...) are never written
    or deleted, even when a manifest lists them; credential files are never read. No setuid/setgid
    modes, no uid 0, no membership of privileged groups."""
    for raw, _ in written_paths(task):
        for value in expand(task, raw):
            if problem := privileged_problem(ctx, value):
                yield f"writes {problem}"
    for raw in read_paths(task):
        for value in expand(task, raw):
            if isinstance(value, str) and any(fnmatchcase(normalize(literal_shape(value)), p) for p in SECRET_FILES):
                yield f"reads {value}, a credential file"
    k, a = kind(task), task.args
    if setuid_mode(a.get("mode")):
        yield f"mode {a['mode']} sets a setuid/setgid bit"
    if k == "getent" and a.get("database") in ("shadow", "gshadow"):
        yield f"getent reads the {a['database']} database"
    if k in ("user", "group"):
        if str(a.get("uid", a.get("gid", ""))).strip() == "0":
            yield "uid/gid 0 is root"
        groups = {g for g in as_list(a.get("groups")) + as_list(a.get("group")) if isinstance(g, str)}
        if groups & PRIVILEGED_GROUPS:
            yield f"membership of privileged group(s) {', '.join(sorted(groups & PRIVILEGED_GROUPS))}"


@task_rule("IA107", "url-not-allowed")
def url_not_allowed(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every URL a task downloads from or points a package manager at (get_url, uri, apt_repository,
    apt_key, yum_repository, rpm_key, remote unarchive, apt deb, package URLs, repository files written
    with copy) starts with a literal under one of the manifest's owns.urls (a bare host means https on
    that host), or with one of the user's URL parameters (a mirror; a parameter with a pattern, its declared
    {placeholders} filled with replace from checked parameters or facts); the rest is literal, checked
    parameters or facts. Loopback URLs of uri are judged by IA121."""
    if kind(task) == "uri" and "unix_socket" in task.args:
        yield "uri unix_socket talks to a local daemon's socket"
    for key, raw in task_urls(task):
        for value in expand(task, raw):
            problem = url_problem(ctx, value, loopback=kind(task) == "uri")
            if problem:
                yield f"{key}: {problem}"


@task_rule("IA108", "download-without-checksum")
def download_without_checksum(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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


@task_rule("IA109", "tls-verification-off")
def tls_verification_off(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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


def checksum_problem(ctx: PlanContext, checksum: Any) -> str | None:
    """Why a get_url checksum may end up empty or unchecked, or None."""
    if not isinstance(checksum, str):
        return f"checksum {checksum!r} is not a string"
    if is_parameter(ctx, checksum):
        spec = ctx.manifest.parameters[_parameter_name(ctx, template_parts(checksum)[0])]
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
    if "://" in literal_shape(value) or not isinstance(template_parts(value)[0], str):
        return None if url_problem(ctx, value) is None else f"checksum URL {value} is not allowed (IA107)"
    return f"checksum {checksum!r} is built with Jinja; write the digest literally"
