"""What a plan may do: the module, program, keyword, path, URL and package lists the rules check against."""

from __future__ import annotations

import re

SECTIONS = ("install", "verify", "uninstall", "handlers")

NEVER_MODULES = frozenset({"shell", "raw", "script", "expect", "telnet", "psexec", "win_shell", "win_command"})
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
DELETABLE_SHARED_PATHS = (*SHARED_PATHS[:3], "/tmp/intagent-{name}*")  # its sources, keys and own temp files
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

# The allowlist of module arguments (IA116). Anything else is refused; the reasons below say why some
# well-known arguments are left out (they run code, follow links, fetch URLs or read the controller).
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
UNIT_MODULE = "intagent.systemd_unit"

# The Jinja a plan may use (IA104): names, filters, tests and methods known not to run code or read the
# controller. Everything else (lookup, query, pipe, file, url, env, template, password, vars, hostvars...) is refused.
JINJA_NAMES = frozenset({"item", "ansible_facts", "ansible_check_mode", "ansible_architecture",
                         "ansible_distribution", "ansible_distribution_release", "ansible_distribution_major_version",
                         "ansible_os_family", "ansible_hostname", "ansible_service_mgr", "inventory_hostname", "omit"})
JINJA_FILTERS = frozenset({
    "default", "d", "bool", "int", "float", "string", "lower", "upper", "trim", "replace", "join", "first", "last",
    "length", "count", "to_json", "to_nice_json", "to_yaml", "to_nice_yaml", "map", "select", "reject",
    "selectattr", "rejectattr", "list", "dict2items", "items2dict", "regex_replace", "regex_search", "combine",
    "basename", "dirname", "quote", "sort", "unique", "flatten", "difference", "union", "intersect", "abs",
    "round", "min", "max", "ternary", "mandatory", "dictsort", "split", "capitalize", "title", "indent", "b64encode"})
JINJA_TESTS = frozenset({
    "defined", "undefined", "none", "failed", "succeeded", "success", "changed", "skipped", "version", "in",
    "string", "number", "mapping", "sequence", "equalto", "eq", "ne", "lt", "gt", "le", "ge", "boolean", "true",
    "false", "truthy", "falsy", "match", "search", "integer", "iterable", "abs", "contains"})
JINJA_METHODS = frozenset({"startswith", "endswith", "split", "strip", "lower", "upper", "get", "keys", "values",
                           "items", "join", "rstrip", "lstrip"})
TEMP_DIRECTORIES = ("/tmp", "/var/tmp", "/dev/shm", "/run/user")
