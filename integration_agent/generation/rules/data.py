"""What a plan may do: the module, program, keyword, path, URL and package lists the rules check against."""

from __future__ import annotations

import re

SECTIONS = ("install", "verify", "uninstall", "handlers")

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
