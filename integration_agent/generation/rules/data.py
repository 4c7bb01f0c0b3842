"""What a plan may do, as far as several rules and helpers share it: sections, module groups, shared paths,
loopback URLs, Ansible booleans and the Jinja names. A list only one rule reads lives in that rule's module
(``checks/iaNNN_*.py``): the module arguments in IA116, the forbidden programs in IA102, and so on."""

from __future__ import annotations

import re

SECTIONS = ("install", "verify", "uninstall", "handlers")
EXPRESSION_ARGS = {"assert": ("that",), "debug": ("var",)}  # module args Ansible evaluates without braces

# Every package-based integration needs these besides its own footprint; {name} is the integration.
SHARED_PATHS = ("/etc/apt/sources.list.d/{name}*", "/etc/apt/keyrings/{name}*", "/etc/yum.repos.d/{name}*",
                "/tmp/intagent-*")
SHARED_DIRECTORIES = ("/etc/apt/keyrings",)  # may be created (state: directory), never deleted
REPOSITORY_FILES = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/*", "/etc/yum.repos.d/*")
UNIT_DIRECTORIES = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/system")

PACKAGE_MODULES = frozenset({"apt", "dnf", "yum", "package"})
SERVICE_MODULES = frozenset({"systemd_service", "systemd", "service"})
WRITE_MODULES = frozenset({"copy", "template", "lineinfile", "blockinfile"})
VERIFY_MODULES = frozenset({"stat", "uri", "wait_for", "systemd_service", "service", "service_facts",
                            "package_facts", "command", "slurp", "getent", "assert", "set_fact", "debug", "fail"})
LOOPBACK = re.compile(r"https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?", re.IGNORECASE)
TRUE = frozenset({"yes", "true", "1", "on", "y"})
FALSE = frozenset({"no", "false", "0", "off", "n"})

# The names Jinja in a plan may read besides the user's parameters and what the plan sets (IA104, and the
# facts a URL may be built from). IA104 lists the filters, tests and methods; everything else (lookup,
# query, pipe, file, url, env, template, password, vars, hostvars...) is refused.
JINJA_NAMES = frozenset({"item", "ansible_facts", "ansible_check_mode", "ansible_architecture",
                         "ansible_distribution", "ansible_distribution_release", "ansible_distribution_major_version",
                         "ansible_os_family", "ansible_hostname", "ansible_service_mgr", "inventory_hostname", "omit"})
