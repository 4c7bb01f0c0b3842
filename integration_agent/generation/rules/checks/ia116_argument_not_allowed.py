"""Rule IA116 argument-not-allowed: every module's arguments come from its allowlist, some with fixed values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...schema import GeneratedTask
from ..registry import PlanContext, task_rule
from ..tasks import is_true, kind

# The allowlist of module arguments. Anything else is refused; the reasons below say why some well-known
# arguments are left out (they run code, follow links, fetch URLs or read the controller).
_FILE_ATTRS = ("owner", "group", "mode")
MODULE_ARGUMENTS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "apt": ("name", "pkg", "package", "state", "update_cache", "cache_valid_time", "install_recommends", "purge",
            "autoremove", "default_release", "dpkg_options", "allow_downgrade", "lock_timeout"),
    "apt_key": ("url", "keyring", "id", "state"),
    "apt_repository": ("repo", "filename", "state", "update_cache", "mode", "codename"),
    "dnf": ("name", "state", "update_cache", "install_weak_deps", "autoremove", "allow_downgrade", "lock_timeout"),
    "yum_repository": ("name", "description", "baseurl", "gpgkey", "gpgcheck", "repo_gpgcheck", "enabled", "file",
                       "state"),
    "rpm_key": ("key", "state", "fingerprint"),
    "package": ("name", "state"),
    "package_facts": ("manager",),
    "service_facts": (),
    "systemd_service": ("name", "state", "enabled", "daemon_reload"),
    "service": ("name", "state", "enabled"),
    "copy": ("dest", "content", "src", "remote_src", "backup", "force", *_FILE_ATTRS, "validate"),
    "file": ("path", "dest", "name", "state", "src", "recurse", "force", *_FILE_ATTRS),
    "lineinfile": ("path", "dest", "line", "regexp", "search_string", "state", "create", "insertafter",
                   "insertbefore", "backrefs", "firstmatch", "backup", *_FILE_ATTRS, "validate"),
    "blockinfile": ("path", "dest", "block", "marker", "marker_begin", "marker_end", "state", "create",
                    "insertafter", "insertbefore", "backup", "append_newline", "prepend_newline", *_FILE_ATTRS,
                    "validate"),
    "stat": ("path", "get_checksum", "checksum_algorithm", "get_mime", "get_attributes"),
    "get_url": ("url", "dest", "checksum", "timeout", "force", "backup", *_FILE_ATTRS),
    "unarchive": ("src", "dest", "remote_src", "creates", "extra_opts", "include", "exclude", "keep_newer",
                  "list_files", *_FILE_ATTRS),
    "user": ("name", "state", "system", "shell", "home", "create_home", "comment", "group", "groups", "append",
             "remove", "uid"),
    "group": ("name", "state", "system", "gid"),
    "uri": ("url", "method", "status_code", "return_content", "timeout", "follow_redirects"),
    "wait_for": ("host", "port", "path", "timeout", "state", "delay", "connect_timeout", "sleep"),
    "assert": ("that", "fail_msg", "success_msg", "msg", "quiet"),
    "fail": ("msg",),
    "debug": ("msg", "var", "verbosity"),
    "getent": ("database", "key", "split", "fail_key"),
    "command": ("argv", "creates", "removes"),
    "slurp": ("src", "path"),
    "intagent.systemd_unit": ("name", "arguments"),
}.items()}

REFUSED_ARGUMENTS = {  # why an argument is not on the list (the message names it)
    "validate": "runs a program (allowed only as one of the manifest's commands with %s)",
    "follow": "follows symlinks to files outside the footprint", "local_follow": "follows controller symlinks",
    "environment": "changes the environment of the module's programs", "deb": "installs a .deb file's scripts",
    "unix_socket": "talks to a local daemon's socket", "body": "sends data", "src": "reads a file",
    "headers": "sends data (credentials)", "url_username": "sends credentials", "url_password": "sends credentials",
    "tmp_dest": "writes outside dest", "keyserver": "fetches from an arbitrary key server",
    "data": "trusts an inline key", "file": "reads a file", "reposdir": "writes repository files elsewhere",
    "include": "includes another configuration", "conf_file": "uses another package manager configuration",
    "installroot": "installs into another root", "disable_gpg_check": "installs unsigned packages",
    "enablerepo": "enables repositories the integration does not own", "use": "picks another service manager",
    "arguments": "passes arguments to an init script", "args": "passes arguments to an init script",
    "password": "sets a password", "generate_ssh_key": "creates SSH keys", "non_unique": "allows duplicate ids",
    "cmd": "is a command line (write argv, a list)", "_raw_params": "is a command line (write argv, a list)",
    "stdin": "feeds data to the program", "chdir": "runs the program elsewhere", "scope": "manages user units",
    "attributes": "sets file attributes (chattr)", "unsafe_writes": "writes files non-atomically",
    "decrypt": "decrypts vault files on the controller", "validate_certs": "turns certificate checks off",
    "client_cert": "reads key files", "client_key": "reads key files", "cacheable": "persists facts",
    "dest": "writes a file",
}

FIXED_ARGUMENTS = {("copy", "remote_src"): True, ("unarchive", "remote_src"): True,
                   ("uri", "follow_redirects"): "none", ("uri", "method"): ("GET", "HEAD")}


def check(ctx: PlanContext, task: GeneratedTask) -> Iterator[str]:
    """Every module has an allowlist of arguments; anything else is refused, among them the ones that run
    code, follow links, fetch, send or read data elsewhere: validate (except a declared command), follow,
    environment, deb, unix_socket, body, headers, tmp_dest, keyserver, include, conf_file, enablerepo,
    password, generate_ssh_key, cmd (argv only), stdin, chdir, attributes, decrypt, validate_certs...
    Some arguments have fixed values: remote_src true, uri follow_redirects none and method GET/HEAD."""
    k = kind(task)
    allowed = MODULE_ARGUMENTS.get(k)
    if allowed is None:
        return  # IA101 refuses the module
    for key, value in task.args.items():
        if k == "set_fact":
            if key == "cacheable":
                yield f"set_fact {key}: {REFUSED_ARGUMENTS[key]}"
            continue
        if key not in allowed:
            why = REFUSED_ARGUMENTS.get(key, "is not on the list")
            yield f"{k} argument {key!r} {why}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        elif (k, key) in FIXED_ARGUMENTS and not _fixed(FIXED_ARGUMENTS[(k, key)], value):
            yield f"{k} argument {key!r} must be {FIXED_ARGUMENTS[(k, key)]!r}, not {value!r}"
    if k == "copy" and "src" in task.args and "remote_src" not in task.args:
        yield "copy src reads a file on the controller; use content, or src with remote_src: true"


RULE = task_rule("IA116", "argument-not-allowed", check)


def _fixed(want: Any, got: Any) -> bool:
    if isinstance(want, tuple):
        return isinstance(got, str) and got.upper() in want
    return is_true(got) if want is True else got == want
