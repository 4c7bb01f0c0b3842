"""Rule IA102 command-not-declared: commands and validate programs are only the shapes the manifest declares,
with a justification and a statement of when they are done; no shells, downloaders or wrappers."""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator

from ...schema import GeneratedTask
from ..data import WRITE_MODULES
from ..jinja import is_parameter, is_templated, jinja_spans
from ..registry import PlanContext, task_rule
from ..tasks import as_list, is_true, kind

FORBIDDEN_PROGRAMS: dict[str, frozenset[str]] = {
    "a shell": frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish"}),
    "a download or network tool": frozenset({
        "curl", "wget", "fetch", "aria2c", "ftp", "tftp", "nc", "ncat", "netcat", "socat", "telnet", "ssh",
        "scp", "sftp", "rsync", "openssl"}),
    "an interpreter": frozenset({"python", "perl", "ruby", "php", "node", "nodejs", "lua", "awk", "gawk",
                                 "mawk", "tclsh", "pwsh"}),
    "a privilege or scheduling tool": frozenset({
        "sudo", "su", "doas", "pkexec", "runuser", "setpriv", "setcap", "chroot", "nsenter", "unshare",
        "systemd-run", "crontab", "at", "batch"}),
    "a wrapper that runs another program": frozenset({
        "env", "nice", "nohup", "timeout", "stdbuf", "ionice", "chrt", "taskset", "setsid", "time", "command",
        "exec", "eval", "xargs", "watch", "flock", "busybox", "strace", "script", "setarch", "linux32", "linux64",
        "rbash", "run-parts", "sg", "newgrp", "ld.so", "ld-linux-x86-64.so.2", "toybox", "expect", "gdb"}),
    "a file tool (use a module, so that the path checks apply)": frozenset({
        "rm", "cp", "mv", "dd", "tee", "ln", "install", "truncate", "chmod", "chown", "chgrp", "chattr", "sed",
        "find", "mkfifo", "shred", "tar", "useradd", "usermod", "userdel", "groupadd", "groupmod", "passwd",
        "chpasswd", "visudo", "mount", "umount", "gpasswd", "adduser", "addgroup", "deluser", "vipw"}),
    "a package or service tool (use the module, so that the footprint checks apply)": frozenset({
        "apt", "apt-get", "apt-key", "add-apt-repository", "dpkg", "dnf", "yum", "rpm", "pip", "pip3", "npm",
        "gem", "snap", "flatpak", "systemctl", "service", "update-rc.d", "chkconfig", "apt-helper",
        "/usr/lib/apt/apt-helper", "debconf-set-selections"}),
}

SAFE_DPKG_OPTIONS = frozenset({"force-confdef", "force-confold", "force-confnew", "force-confmiss"})


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
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


RULE = task_rule("IA102", "command-not-declared", check)


def command_problems(argv: list[str], label: str) -> Iterator[str]:
    """Why a program may not run whatever the manifest declares: templated, a shell, a wrapper, chmod +s..."""
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


def mask_expressions(text: str) -> str:
    """``text`` with each ``{{ ... }}`` written without spaces, so that shlex keeps it one word."""
    out, pos = [], 0
    for start, end in jinja_spans(text):
        out.append(text[pos:start])
        out.append(text[start:end].replace(" ", ""))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _shapes(ctx: PlanContext) -> str:
    return "; ".join(" ".join(shape) for shape in ctx.manifest.commands) or "the manifest declares none"


def _declared(ctx: PlanContext, argv: list[str], placeholder: str = "") -> list[str] | None:
    """The manifest's command shape ``argv`` matches word for word, or None."""
    for shape in ctx.manifest.commands:
        if len(shape) == len(argv) and (not placeholder or placeholder in shape) and all(
                _word_matches(ctx, want, got) for want, got in zip(shape, argv, strict=True)):
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
