"""The policy gate's plan rules: one small check per rule id, registered in ``RULES`` in id order.

A rule reads a :class:`GeneratedPlan` against the integration's :class:`Manifest` and yields findings
(values, never exceptions). The check function's docstring is the rule's documentation. The rules are
deliberately conservative: what intagent cannot prove to stay inside the integration's footprint is
refused, and the message tells the model what to write instead. ``policy`` is the public face.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
from jinja2 import nodes

from ..catalog import Manifest
from .schema import MODULE_ALLOWLIST, GeneratedPlan, GeneratedTask

SECTIONS = ("install", "verify", "uninstall", "handlers")

# --- data: what a plan may do -------------------------------------------------------------------------

NEVER_MODULES = frozenset({"shell", "raw", "script", "expect", "telnet", "psexec", "win_shell", "win_command"})
SHELL_METACHARACTERS = ("|", ";", "&", ">", "<", "`", "$(")
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
        "exec", "eval", "xargs", "watch", "flock", "busybox", "strace", "script"}),
    "a file tool (use a module, so that the path checks apply)": frozenset({
        "rm", "cp", "mv", "dd", "tee", "ln", "install", "truncate", "chmod", "chown", "chgrp", "chattr", "sed",
        "find", "mkfifo", "shred", "tar", "useradd", "usermod", "userdel", "groupadd", "groupmod", "passwd",
        "chpasswd", "visudo", "mount", "umount"}),
    "a package or service tool (use the module, so that the footprint checks apply)": frozenset({
        "apt", "apt-get", "apt-key", "add-apt-repository", "dpkg", "dnf", "yum", "rpm", "pip", "pip3", "npm",
        "gem", "snap", "flatpak", "systemctl", "service", "update-rc.d", "chkconfig"}),
}
UNSAFE_TAR_OPTIONS = ("--to-command", "--use-compress-program", "-I", "--checkpoint-action", "--info-script",
                      "--new-volume-script", "-F", "--rsh-command", "--rmt-command", "-P", "--absolute-names")
SAFE_DPKG_OPTIONS = frozenset({"force-confdef", "force-confold", "force-confnew", "force-confmiss"})

# Task keywords that change where or how a task runs; smuggled into args they must not survive.
FORBIDDEN_KEYWORDS = frozenset({
    "delegate_to", "delegate_facts", "local_action", "check_mode", "ignore_errors",
    "ignore_unreachable", "environment", "become", "become_user", "become_method", "become_flags", "become_exe",
    "vars", "connection", "run_once", "any_errors_fatal", "remote_user", "async", "poll", "throttle",
    "debugger", "module_defaults", "include_tasks", "import_tasks", "include_role", "import_role",
    "import_playbook", "include_vars"})

# Jinja that runs on, or reads from, the controller (lookup plugins, other hosts' vars, sandbox escapes).
CONTROLLER_NAMES = frozenset({
    "lookup", "query", "q", "pipe", "env", "file", "template", "password", "hostvars", "vars", "self",
    "import", "eval", "exec", "getattr", "globals", "os", "subprocess", "builtins"})
CONTROLLER_FILTERS = frozenset({"vault", "unvault"})
CONTROLLER_ATTRS = frozenset({"system", "popen", "spawn", "exec", "eval", "import_module"})
EXPRESSION_ARGS = {"assert": ("that",), "debug": ("var",)}  # module args Ansible evaluates without braces
DUNDER = re.compile(r"^__|__$")

# Every package-based integration needs these besides its own footprint; {name} is the integration.
SHARED_PATHS = ("/etc/apt/sources.list.d/{name}*", "/etc/apt/keyrings/{name}*", "/etc/yum.repos.d/{name}*",
                "/tmp/intagent-*")
DELETABLE_SHARED_PATHS = SHARED_PATHS[:3]  # deletions: repository sources and keys only
SHARED_DIRECTORIES = ("/etc/apt/keyrings",)  # may be created (state: directory), never deleted
REPOSITORY_FILES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/*", "/etc/yum.repos.d/*")
PRIVILEGED_PATHS = (
    "/etc/sudoers", "/etc/sudoers.d", "/etc/sudoers.d/*", "/root", "/root/*", "*/.ssh", "*/.ssh/*",
    "*/authorized_keys*", "/etc/passwd*", "/etc/shadow*", "/etc/group*", "/etc/gshadow*", "/etc/pam.d*",
    "/etc/security/*", "/etc/cron*", "/var/spool/cron*", "/etc/anacrontab", "/etc/profile", "/etc/profile.d*",
    "/etc/bash.bashrc", "/etc/environment", "/etc/ld.so.preload", "/etc/ld.so.conf*", "/etc/ssh/*",
    "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/apt/apt.conf.d*", "/etc/dpkg/dpkg.cfg.d*",
    "/etc/yum.conf", "/etc/dnf/*", "/etc/modprobe.d*", "/etc/modules-load.d*", "/etc/udev/rules.d*",
    "/etc/sysctl.conf", "/etc/sysctl.d*", "/etc/polkit-1*", "/etc/init.d*", "/etc/rc.local", "/etc/xdg/autostart*")
UNIT_DIRECTORIES = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/system")
SECRET_FILES = ("/etc/shadow*", "/etc/gshadow*", "/etc/sudoers*", "/root/*", "*/.ssh/*", "/etc/ssh/*key*",
                "/proc/*/environ")
PRIVILEGED_GROUPS = frozenset({"root", "sudo", "wheel", "adm", "admin", "docker", "lxd", "disk", "shadow", "kvm"})

HELPER_PACKAGES = frozenset({"gnupg", "gpg", "ca-certificates", "apt-transport-https", "python3-apt"})
PACKAGE_MODULES = frozenset({"apt", "dnf", "yum", "package"})
SERVICE_MODULES = frozenset({"systemd_service", "systemd", "service"})
WRITE_MODULES = frozenset({"copy", "template", "lineinfile", "blockinfile"})
VERSION_SUFFIX = r"(?:(?:[=<>]=?|-(?=[\d\x00]))[A-Za-z0-9+.:~*_\x00-]*)?"  # apt name=1.2, dnf name-1.2, name>=1.2
STRONG_CHECKSUMS = frozenset({"sha256", "sha384", "sha512"})
VERIFY_MODULES = frozenset({"stat", "uri", "wait_for", "systemd_service", "service", "service_facts",
                            "package_facts", "command", "slurp", "getent", "assert", "set_fact", "debug", "fail"})
LOOPBACK = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?", re.IGNORECASE)
TRUSTED_SOURCE = re.compile(
    r"\b(trusted|allow-insecure|allow-weak|allow-downgrade-to-insecure)\s*[=:]\s*(yes|true|1)\b", re.IGNORECASE)
UNSIGNED_REPO = re.compile(r"^\s*(gpgcheck|sslverify)\s*=\s*(0|no|false)\b", re.IGNORECASE | re.MULTILINE)
TRUE = frozenset({"yes", "true", "1", "on", "y"})
FALSE = frozenset({"no", "false", "0", "off", "n"})


# --- values -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One policy violation; ``task`` is the 0-based index in ``section``."""

    rule: str
    message: str
    section: str = ""
    task: int | None = None
    task_name: str = ""

    def __str__(self) -> str:
        where = self.section + (f"[{self.task}]" if self.task is not None else "")
        where += f' "{self.task_name}"' if self.task_name else ""
        return f"{self.rule} {where}: {self.message}" if where else f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Rule:
    """A rule id, its name and doc, and the check (None for the input rules ``policy`` runs on raw text)."""

    id: str
    name: str
    doc: str
    check: Callable[[PlanContext], Iterator[Finding]] | None = None


@dataclass(frozen=True)
class PlanContext:
    """A plan and the manifest it is judged against, with the derived sets every rule needs."""

    plan: GeneratedPlan
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    def tasks(self) -> Iterator[tuple[str, int, GeneratedTask]]:
        for section in SECTIONS:
            for index, task in enumerate(getattr(self.plan, section)):
                yield section, index, task

    @cached_property
    def parameters(self) -> frozenset[str]:
        """Role variables of the user's parameters (their values come from the user, not the model)."""
        return frozenset(f"{self.name}_{p}" for p in self.manifest.parameters)

    @cached_property
    def secrets(self) -> frozenset[str]:
        return frozenset(f"{self.name}_{p}" for p, spec in self.manifest.parameters.items() if spec.secret)

    @cached_property
    def plan_defined(self) -> frozenset[str]:
        """Variables whose values the plan itself makes (register, set_fact): the model controls them."""
        names = {t.register for _, _, t in self.tasks() if t.register}
        names.update(k for _, _, t in self.tasks() if kind(t) == "set_fact" for k in t.args if isinstance(k, str))
        return frozenset(names)


RULES: list[Rule] = []
TaskCheck = Callable[[PlanContext, GeneratedTask], Iterable[str]]
PlanCheck = Callable[[PlanContext], Iterable[tuple[str, int | None, str]]]


def _doc(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").split())


def task_rule(rule_id: str, name: str) -> Callable[[TaskCheck], TaskCheck]:
    """Register a check that yields messages for one task at a time."""
    def register(fn: TaskCheck) -> TaskCheck:
        def check(ctx: PlanContext) -> Iterator[Finding]:
            for section, index, task in ctx.tasks():
                for message in fn(ctx, task):
                    yield Finding(rule_id, message, section, index, task.name)
        RULES.append(Rule(rule_id, name, _doc(fn), check))
        return fn
    return register


def plan_rule(rule_id: str, name: str) -> Callable[[PlanCheck], PlanCheck]:
    """Register a check over the whole plan that yields (section, task index or None, message)."""
    def register(fn: PlanCheck) -> PlanCheck:
        def check(ctx: PlanContext) -> Iterator[Finding]:
            for section, index, message in fn(ctx):
                name_ = getattr(ctx.plan, section)[index].name if section and index is not None else ""
                yield Finding(rule_id, message, section, index, name_)
        RULES.append(Rule(rule_id, name, _doc(fn), check))
        return fn
    return register


# --- reading tasks ------------------------------------------------------------------------------------

def kind(task: GeneratedTask) -> str:
    """Short module name for ansible.builtin/ansible.legacy/bare names, else the full name."""
    namespace, _, short = task.module.rpartition(".")
    return short if namespace in ("", "ansible.builtin", "ansible.legacy") else task.module


def arg(task: GeneratedTask, *names: str) -> Any:
    """The first of an argument's aliases that is set."""
    return next((task.args[n] for n in names if n in task.args), None)


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in TRUE) or (
        type(value) is int and value == 1)


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in FALSE) or (
        type(value) is int and value == 0)


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) and not is_templated(value):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value) if isinstance(value, list) else [value]


def walk(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every value nested in dicts and lists with its location (dict keys too), without recursion."""
    stack = [(where, value)]
    while stack:
        where, value = stack.pop()
        yield where, value
        if isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                stack.append((f"{where}.{key}", item))
                stack.append((f"{where}.<key>", key))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def rendered_strings(task: GeneratedTask) -> Iterator[tuple[str, str, bool]]:
    """(where, text, is_bare_expression) for every string Ansible templates when it runs the task."""
    yield "name", task.name, False
    for field in ("when", "changed_when", "failed_when"):
        if isinstance(getattr(task, field), str):
            yield field, getattr(task, field), True
    for field in ("creates", "removes"):
        if getattr(task, field):
            yield field, getattr(task, field), False
    expression_args = EXPRESSION_ARGS.get(kind(task), ())
    for where, value in [*walk(task.notify, "notify"), *walk(task.loop, "loop"), *walk(task.args, "args")]:
        if isinstance(value, str):
            top = where.split(".")[1].split("[")[0] if where.startswith("args.") else ""
            yield where, value, top in expression_args and not where.endswith("<key>")


def expand(task: GeneratedTask, value: Any) -> list[Any]:
    """Values of ``{{ item }}`` / ``{{ item.key }}`` over a literal loop list; otherwise ``[value]``."""
    match = ITEM.fullmatch(value) if isinstance(value, str) else None
    if not match or not isinstance(task.loop, list):
        return [value]
    key = match.group(1) or match.group(2)
    if not key:
        return list(task.loop)
    return [item.get(key) if isinstance(item, dict) else value for item in task.loop]


ITEM = re.compile(r"\{\{\s*item(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])?\s*\}\}")


# --- Jinja --------------------------------------------------------------------------------------------

_JINJA = jinja2.Environment()  # Ansible's delimiters; only ever used to parse, never to render


def is_templated(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@lru_cache(maxsize=512)  # check_plan clears it: answers are large and untrusted
def parse_jinja(text: str, expression: bool = False) -> nodes.Template | str:
    """The AST of a template, or of a bare expression (``when``); an error message if it does not parse."""
    source = "{{ " + text + " }}" if expression and not is_templated(text) else text
    try:
        return _JINJA.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"{exc.message} (line {exc.lineno})"
    except RecursionError:
        return "nested too deeply"


def jinja_names(text: str, expression: bool = False) -> frozenset[str]:
    if not expression and not is_templated(text):
        return frozenset()
    ast = parse_jinja(text, expression)
    return frozenset() if isinstance(ast, str) else frozenset(n.name for n in ast.find_all(nodes.Name))


def template_parts(text: str) -> list[str | nodes.Expr] | None:
    """Literal text and expressions in order (adjacent text merged); None if it has statements or is broken."""
    if not is_templated(text):
        return [text]
    ast = parse_jinja(text)
    if isinstance(ast, str) or not all(isinstance(stmt, nodes.Output) for stmt in ast.body):
        return None
    parts: list[str | nodes.Expr] = []
    for node in (n for stmt in ast.body for n in stmt.nodes):
        data = node.data if isinstance(node, nodes.TemplateData) else node
        if isinstance(data, str) and parts and isinstance(parts[-1], str):
            parts[-1] += data
        else:
            parts.append(data)
    return parts or [""]


def literal_shape(text: str) -> str:
    """The text with every expression replaced by ``X``: what the value looks like whatever it renders to."""
    parts = template_parts(text)
    return "".join(p if isinstance(p, str) else "X" for p in parts) if parts else text


def is_parameter(ctx: PlanContext, node: Any) -> bool:
    """An expression that is one of the user's (non-secret) parameters, with argument-free filters at most."""
    if isinstance(node, str):
        parts = template_parts(node)
        return bool(parts) and len(parts) == 1 and not isinstance(parts[0], str) and is_parameter(ctx, parts[0])
    while isinstance(node, nodes.Filter) and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs):
        node = node.node
    return isinstance(node, nodes.Name) and node.name in ctx.parameters and node.name not in ctx.secrets


def possible_values(ctx: PlanContext, text: str, parameter: str) -> set[str] | None:
    """Every string ``text`` can render to when it is built only from literals, the user's parameters
    (rendered as ``parameter``), ``x if c else y`` and concatenation; None when it uses anything else."""
    parts = template_parts(text)
    if parts is None:
        return None
    values = {""}
    for part in parts:
        options = {part} if isinstance(part, str) else _node_values(ctx, part, parameter)
        if options is None:
            return None
        values = {a + b for a in values for b in options}
        if len(values) > 64:
            return None
    return values


def _node_values(ctx: PlanContext, node: nodes.Node, parameter: str) -> set[str] | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return {str(node.value)}
    if is_parameter(ctx, node):
        return {parameter}
    if isinstance(node, nodes.CondExpr):  # the condition cannot change which values are possible
        branches = [node.expr1, node.expr2] if node.expr2 is not None else [node.expr1, nodes.Const("")]
    elif isinstance(node, (nodes.Concat, nodes.Add)):
        branches = None
    else:
        return None
    if branches is not None:
        options = [_node_values(ctx, b, parameter) for b in branches]
        return None if any(o is None for o in options) else set().union(*options)  # type: ignore[arg-type]
    values = {""}
    for child in node.nodes if isinstance(node, nodes.Concat) else [node.left, node.right]:
        options = _node_values(ctx, child, parameter)
        if options is None:
            return None
        values = {a + b for a in values for b in options}
    return values


def owned_name(ctx: PlanContext, value: Any, owned: Iterable[str], suffix: str = "") -> bool:
    """A literal or templated name that can only render to an owned name (optionally + ``suffix``
    pattern), or that is exactly one of the user's parameters."""
    if not isinstance(value, str):
        return False
    if is_parameter(ctx, value):
        return True
    values = possible_values(ctx, value, "\0")
    return bool(values) and all(any(re.fullmatch(re.escape(name) + suffix, v) for name in owned) for v in values)


def controller_code(ast: nodes.Template) -> Iterator[str]:
    for node in ast.find_all(nodes.Node):
        if isinstance(node, nodes.Stmt) and not isinstance(node, nodes.Output):
            yield "a {% %} statement"
        elif isinstance(node, nodes.Name) and (node.name in CONTROLLER_NAMES or node.name.startswith("__")):
            yield f"'{node.name}'"
        elif isinstance(node, nodes.Getattr) and (node.attr.startswith("_") or node.attr in CONTROLLER_ATTRS):
            yield f"attribute '.{node.attr}'"
        elif isinstance(node, nodes.Const) and isinstance(node.value, str) and DUNDER.search(node.value):
            yield f"'{node.value}'"
        elif isinstance(node, (nodes.Filter, nodes.Test)) and node.name.rpartition(".")[2] in CONTROLLER_FILTERS:
            yield f"filter '{node.name}'"


# --- paths and URLs -----------------------------------------------------------------------------------

def normalize(path: str) -> str:
    return "/" + posixpath.normpath(path).lstrip("/")


def _under(path: str, entry: str) -> bool:
    entry = normalize(entry)
    return path == entry or path.startswith(entry.rstrip("/") + "/")


def path_allowed(ctx: PlanContext, path: str, action: str) -> bool:
    """``action`` is write, delete or mkdir; ``path`` is normalized."""
    if any(_under(path, entry) for entry in ctx.manifest.owns.paths):
        return True
    if action == "mkdir" and path in SHARED_DIRECTORIES:
        return True
    patterns = DELETABLE_SHARED_PATHS if action == "delete" else SHARED_PATHS
    return any(fnmatchcase(path, p.format(name=ctx.name)) for p in patterns)


def prefix_allowed(ctx: PlanContext, prefix: str, action: str) -> bool:
    """A templated path's literal start pins it inside the footprint (the rest cannot climb: no '..')."""
    prefix = normalize(prefix) + ("/" if prefix.endswith("/") else "")
    if any(prefix.startswith(normalize(e).rstrip("/") + "/") for e in ctx.manifest.owns.paths):
        return True
    patterns = DELETABLE_SHARED_PATHS if action == "delete" else SHARED_PATHS
    return any(prefix.startswith(p.format(name=ctx.name).rstrip("*")) for p in patterns)


def path_problem(ctx: PlanContext, value: Any, action: str) -> str | None:
    verb = "deletes" if action == "delete" else "writes"
    if not isinstance(value, str) or not value:
        return f"{verb} a path that is not a string: {value!r}"
    if not is_templated(value):
        if not value.startswith("/"):
            return f"path {value} is not absolute"
        path = normalize(value)
        return None if path_allowed(ctx, path, action) else f"path {path} is outside the integration's footprint"
    if is_parameter(ctx, value):
        return None
    parts = template_parts(value)
    if parts is None:
        return f"path {value} is not a plain template"
    if ".." in value:
        return f"path {value} contains '..'"
    computed = sorted(jinja_names(value) & ctx.plan_defined)
    if computed:
        return f"path {value} is built from {', '.join(computed)}, which the plan itself sets; write it literally"
    prefix = parts[0] if isinstance(parts[0], str) else ""
    if not prefix.startswith("/") or not prefix_allowed(ctx, prefix, action):
        return f"path {value} may be outside the integration's footprint: its literal start {prefix!r} is not inside it"
    return None


def privileged_problem(ctx: PlanContext, value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith(("/", "{")):
        return None
    path = normalize(literal_shape(value))
    for directory in UNIT_DIRECTORIES:
        if _under(path, directory):
            unit = path[len(directory):].strip("/").split("/")[0]
            stem = re.split(r"[.@]", unit, maxsplit=1)[0]
            if stem not in ctx.manifest.owns.services:
                return f"{path}, a systemd unit of a service the integration does not own"
            return None
    hit = next((p for p in PRIVILEGED_PATHS if fnmatchcase(path, p)), None)
    return f"{path}, a privileged file ({hit})" if hit else None


def written_paths(task: GeneratedTask) -> Iterator[tuple[Any, str]]:
    """(path, action) for every path a task creates, changes or deletes."""
    k, a, state = kind(task), task.args, task.args.get("state")
    if k == "file":
        yield arg(task, "path", "dest", "name"), {"absent": "delete", "directory": "mkdir"}.get(state, "write")
        if state in ("link", "hard"):
            yield a.get("src"), "write"
    elif k in ("copy", "template", "get_url", "unarchive", "uri") and "dest" in a:
        yield a["dest"], "write"
    elif k in ("lineinfile", "blockinfile"):
        yield arg(task, "path", "dest", "destfile", "name"), "write"
    if k == "get_url" and "tmp_dest" in a:
        yield a["tmp_dest"], "write"
    if k == "apt_key" and "keyring" in a:
        yield a["keyring"], "write"
    if k == "apt_repository" and "filename" in a:
        yield f"/etc/apt/sources.list.d/{a['filename']}.list", "delete" if state == "absent" else "write"
    if k == "yum_repository":
        directory, name = a.get("reposdir", "/etc/yum.repos.d"), a.get("file", a.get("name"))
        yield f"{directory}/{name}.repo", "delete" if state == "absent" else "write"
    if k == "user":
        home = a.get("home") or f"/home/{a.get('name')}"
        if state == "absent" and is_true(a.get("remove")):
            yield home, "delete"
        elif state != "absent" and (a.get("home") or not is_false(a.get("create_home", True))):
            yield home, "write"


def read_paths(task: GeneratedTask) -> Iterator[Any]:
    k, a = kind(task), task.args
    if k == "slurp":
        yield arg(task, "src", "path")
    elif k in ("copy", "unarchive") and is_true(a.get("remote_src")):
        yield a.get("src")


def url_matches(literal: str, entry: str, complete: bool) -> bool:
    """Does a URL (or a templated URL's literal start) lie under an owns.urls entry? Bare hosts mean https."""
    wanted = urlsplit(entry if "://" in entry else f"https://{entry}/")
    try:
        got = urlsplit(literal)
        if got.scheme.lower() != wanted.scheme.lower() or got.hostname != wanted.hostname or got.port != wanted.port:
            return False
    except ValueError:
        return False
    if not complete and not got.path.startswith("/"):
        return False  # the host is not finished: the template could extend it
    path = normalize(unquote(got.path) or "/") + ("/" if got.path.endswith("/") else "")
    want = wanted.path or "/"
    return path.startswith(want) or (complete and (path.rstrip("/") + "/").startswith(want))


def url_problem(ctx: PlanContext, url: Any, *, loopback: bool = False) -> str | None:
    if not isinstance(url, str):
        return f"URL {url!r} is not a string"
    parts = template_parts(url)
    if parts is None:
        return f"URL {url} is not a plain template"
    owned = ", ".join(ctx.manifest.owns.urls) or "none"
    if not isinstance(parts[0], str):
        if is_parameter(ctx, parts[0]):
            return None
        return f"URL {url} must start with a literal URL or one of the integration's parameters"
    if ".." in url and len(parts) > 1 or jinja_names(url) & ctx.plan_defined:
        return f"URL {url} is built from values the plan computes"
    complete = len(parts) == 1
    if loopback and _is_loopback(ctx, parts):
        return None
    if any(url_matches(parts[0], entry, complete) for entry in ctx.manifest.owns.urls):
        return None
    return f"URL {url} is not under the integration's URLs ({owned})"


def _is_loopback(ctx: PlanContext, parts: list[Any]) -> bool:
    match = LOOPBACK.match(parts[0])
    if not match:
        return False
    rest = parts[0][match.end():]
    if rest.startswith("/") or (rest == "" and len(parts) == 1):
        return True
    if rest == ":" and len(parts) >= 2 and is_parameter(ctx, parts[1]):  # http://127.0.0.1:{{ port param }}
        return len(parts) == 2 or (isinstance(parts[2], str) and parts[2].startswith("/"))
    return False


TOKEN = re.compile(r"(?:\{\{.*?\}\}|[^\s{]|\{(?!\{))+")


def apt_line_uris(line: str) -> list[str]:
    """The URI of a one-line apt source (``deb [options] URI suite ...``); anything else as a whole."""
    tokens = TOKEN.findall(line)
    if not tokens or tokens[0] not in ("deb", "deb-src"):
        return [line]
    i = 1
    if i < len(tokens) and tokens[i].startswith("["):
        while i < len(tokens) and not tokens[i].endswith("]"):
            i += 1
        i += 1
    return tokens[i:i + 1] or [""]


def repository_file_urls(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("deb ", "deb-src ")):
            yield from apt_line_uris(line)
        elif match := re.match(r"(baseurl|mirrorlist|metalink|gpgkey|URIs)\s*[=:]\s*(.+)", line, re.IGNORECASE):
            yield from TOKEN.findall(match.group(2))


def task_urls(task: GeneratedTask) -> Iterator[tuple[str, Any]]:
    """(argument, URL) for every URL a task fetches from or points a package manager at."""
    k, a = kind(task), task.args
    keys = {"get_url": ("url",), "uri": ("url",), "apt_key": ("url", "keyserver"),
            "yum_repository": ("baseurl", "mirrorlist", "metalink", "gpgkey")}.get(k, ())
    for key in keys:
        for value in as_list(a.get(key)) if k == "yum_repository" else [a[key]] if key in a else []:
            yield key, value
    if k == "get_url" and isinstance(a.get("checksum"), str) and "://" in a["checksum"]:
        yield "checksum", a["checksum"].partition(":")[2]
    if k == "apt_repository" and isinstance(a.get("repo"), str):
        yield from (("repo", uri) for uri in apt_line_uris(a["repo"]))
    for key, value in (("key", a.get("key")), ("src", a.get("src")), ("deb", a.get("deb"))):
        if k in ("rpm_key", "unarchive", "apt") and isinstance(value, str) and "://" in value:
            yield key, value
    if k in PACKAGE_MODULES:
        yield from (("name", n) for n in as_list(arg(task, "name", "pkg")) if isinstance(n, str) and "://" in n)
    dest = arg(task, "dest", "path", "destfile")
    if k in WRITE_MODULES and isinstance(dest, str) and any(fnmatchcase(normalize(literal_shape(dest)), p)
                                                             for p in REPOSITORY_FILES):
        for key in ("content", "line", "block"):
            if isinstance(a.get(key), str):
                yield from ((key, url) for url in repository_file_urls(a[key]))


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
        return shlex.split(re.sub(r"\{\{.*?\}\}", lambda m: m.group().replace(" ", ""), line))
    except ValueError:
        return None


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


# --- the rules, in id order ---------------------------------------------------------------------------

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


@task_rule("IA102", "command-unguarded")
def command_unguarded(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """ansible.builtin.command needs a justification, says when it is done (creates, removes or
    changed_when other than true), passes argv (a list) or a cmd without shell syntax, and never runs a
    shell, downloader, interpreter, privilege tool, wrapper, or a tool that a module covers. The same
    program checks apply to the ``validate`` commands of file modules; unarchive's extra_opts must not
    run programs or write outside dest, and apt's dpkg_options are limited to the conffile choices."""
    k, a = kind(task), task.args
    if k == "command":
        yield from _command_task(task)
    if k in WRITE_MODULES and isinstance(a.get("validate"), str):
        words = split_command(a["validate"])
        if words is None or any(c in a["validate"] for c in SHELL_METACHARACTERS):
            yield f"validate command {a['validate']!r} is not a plain command"
        else:
            yield from command_problems(words, "validate")
    if k == "unarchive":
        for option in as_list(a.get("extra_opts")):
            if isinstance(option, str) and option.split("=")[0] in UNSAFE_TAR_OPTIONS:
                yield f"unarchive option {option} runs programs or writes outside dest"
    if k == "apt":
        for option in as_list(a.get("dpkg_options")):
            if option not in SAFE_DPKG_OPTIONS:
                yield f"dpkg option {option!r} is not one of {', '.join(sorted(SAFE_DPKG_OPTIONS))}"


def _command_task(task: GeneratedTask) -> Iterator[str]:
    a = task.args
    if not (task.justification or "").strip():
        yield "command needs a justification: why no module can do this"
    done = task.creates or task.removes or a.get("creates") or a.get("removes")
    if task.changed_when is None and not done:
        yield "command must say when it is done: creates, removes or changed_when"
    elif not done and is_true(task.changed_when):
        yield "command with changed_when: true reports a change on every run; use creates/removes or a condition"
    line = arg(task, "cmd", "_raw_params", "free_form")
    argv = a.get("argv")
    if (line is None) == (argv is None):
        yield "command needs exactly one of argv (a list) or cmd"
        return
    if argv is not None:
        if not isinstance(argv, list) or not argv or not all(isinstance(w, str) for w in argv):
            yield "argv must be a non-empty list of strings"
            return
        yield from command_problems(argv, "command")
        return
    if not isinstance(line, str):
        yield "cmd must be a string"
        return
    bare = re.sub(r"\{\{.*?\}\}", "", line, flags=re.DOTALL)
    found = [c for c in SHELL_METACHARACTERS if c in bare]
    if found:
        yield (f"command line {line[:80]!r} has shell syntax {' '.join(found)}; ansible.builtin.command runs no"
               " shell: use argv, or a module")
    shaped = re.sub(r"\{\{.*?\}\}", "X", line, flags=re.DOTALL)
    for segment in re.split(r"[|;&`<>]|\$\(", shaped) if found else [line]:
        words = split_command(segment)
        if words is None:
            yield f"command line {line[:80]!r} has unbalanced quotes"
        elif words or not found:
            yield from command_problems(words, "command")


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
    """No Jinja that runs on or reads from the controller: lookup()/query()/q() and lookup plugin names,
    hostvars and vars, {% %} statements, dunder or private attributes, vault filters. Checked in every
    string Ansible templates (name, args, when, loop, changed_when, assert's that, debug's var, ...); a
    string that does not parse as Jinja is refused too. Plain variables and filters are fine. copy, uri
    and unarchive must not read files from the controller (remote_src), and template is refused because
    a generated plan has no template files."""
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
    k, a = kind(task), task.args
    if k == "template":
        yield "template reads its src on the controller; use ansible.builtin.copy with content"
    elif k in ("copy", "uri", "unarchive") and "src" in a and not is_true(a.get("remote_src")):
        if not (k == "unarchive" and isinstance(a["src"], str) and "://" in a["src"]):
            yield f"{k} src {a['src']!r} is read from the controller; use content, or remote_src: true"


@task_rule("IA105", "path-outside-footprint")
def path_outside_footprint(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every path a task writes, links or deletes lies inside the manifest's owns.paths, or matches the
    shared allowlist every package-based integration needs (its own apt/yum source and key files,
    /tmp/intagent-*, creating /etc/apt/keyrings). Deletions only within owns.paths and the source and
    key files. A templated path is either exactly one of the user's parameters or has a literal start
    inside the footprint, no '..' and no value the plan computes itself."""
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
    with copy) lies under one of the manifest's owns.urls (a bare host means https on that host), or starts
    with one of the user's parameters (a mirror). uri may also query loopback (127.0.0.1, localhost, [::1])
    to verify local endpoints."""
    if kind(task) == "uri" and "unix_socket" in task.args:
        yield "uri unix_socket talks to a local daemon's socket"
    for key, raw in task_urls(task):
        for value in expand(task, raw):
            problem = url_problem(ctx, value, loopback=kind(task) == "uri")
            if problem:
                yield f"{key}: {problem}"


@task_rule("IA108", "download-without-checksum")
def download_without_checksum(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Downloads are pinned by a checksum: get_url has a sha256/384/512 checksum (or one of the user's
    parameters); unarchive, apt deb and package names never fetch URLs themselves: download with get_url
    and a checksum first, then use the local file."""
    k, a = kind(task), task.args
    if k == "get_url":
        checksum = a.get("checksum")
        if not checksum:
            yield "get_url needs a checksum"
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


@plan_rule("IA110", "secret-handling")
def secret_handling(ctx: PlanContext) -> Iterator[tuple[str, int | None, str]]:
    """A task that reads a secret parameter (or a value registered or set from one, or file content via
    slurp) has no_log: true and diff: false. A secret never appears in a task name, a URL, a command line,
    debug, assert/fail messages, a uri body, a loop, the evidence fact, or a file outside owns.paths."""
    tainted = set(ctx.secrets)
    if not tainted:
        return
    for section, index, task in ctx.tasks():
        hits = [(location(where), text, names) for where, text, expression in rendered_strings(task)
                if (names := jinja_names(text, expression) & tainted)]
        if not hits and kind(task) != "slurp":
            continue
        for message in _secret_task(ctx, task, hits):
            yield section, index, message
        if task.register:
            tainted.add(task.register)
        if kind(task) == "set_fact":
            tainted.update(f"{where}"[5:] for where, _, _ in hits if where.startswith("args."))


def location(where: str) -> str:
    """``args.KEY`` for anything inside an argument, else the task field (name, when, loop, ...)."""
    head, _, rest = where.partition(".")
    key = re.split(r"[.\[]", rest)[0]
    return f"args.{key}" if head == "args" else where.split("[")[0].split(".")[0]


SECRET_PLACES = {  # (module or "*", location) -> where a secret would be shown
    ("*", "name"): "the task name (printed even under no_log)", ("*", "loop"): "loop items",
    ("command", "args.cmd"): "a command line", ("command", "args.argv"): "a command line",
    ("command", "args._raw_params"): "a command line", ("debug", "args.msg"): "debug output",
    ("debug", "args.var"): "debug output", ("assert", "args.fail_msg"): "a failure message",
    ("assert", "args.msg"): "a failure message", ("assert", "args.success_msg"): "a message",
    ("fail", "args.msg"): "a failure message", ("uri", "args.body"): "a request body",
}
URL_ARGS = frozenset({"args.url", "args.repo", "args.baseurl", "args.gpgkey", "args.mirrorlist", "args.key"})


def _secret_task(ctx: PlanContext, task: GeneratedTask, hits: list[tuple[str, str, frozenset[str]]]) -> Iterator[str]:
    k = kind(task)
    label = ", ".join(sorted(set().union(*(h[2] for h in hits)))) or "file content (slurp)"
    if task.no_log is not True:
        yield f"handles {label} without no_log: true"
    if task.diff is not False:
        yield f"handles {label} without diff: false"
    where = {w for w, _, _ in hits}
    for place in sorted({SECRET_PLACES.get((k, w)) or SECRET_PLACES.get(("*", w)) for w in where} - {None}):
        yield f"{label} must not appear in {place}"
    if k == "set_fact" and f"args.{ctx.name}_evidence" in where:
        yield f"{label} must not appear in {ctx.name}_evidence: intagent reports the evidence"
    if any("://" in text for _, text, _ in hits) or (k != "set_fact" and where & URL_ARGS):
        yield f"{label} must not appear in a URL"
    dest = arg(task, "dest", "path", "destfile", "name")
    if k in WRITE_MODULES and hits and not (isinstance(dest, str) and not is_templated(dest) and any(
            _under(normalize(dest), entry) for entry in ctx.manifest.owns.paths)):
        yield f"writes {label} to {dest}, which is not one of the integration's own paths"


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
