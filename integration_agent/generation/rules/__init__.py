"""The policy gate's plan rules: one small check per rule id, registered in ``RULES`` in id order.

A rule reads a :class:`GeneratedPlan` against the integration's :class:`Manifest` and yields findings
(values, never exceptions). The check function's docstring is the rule's documentation. The rules are
deliberately conservative: what intagent cannot prove to stay inside the integration's footprint is
refused, and the message tells the model what to write instead. ``policy`` is the public face.

The package: ``data`` (what a plan may do), ``jinja`` and ``tasks`` (reading templates and tasks),
``registry`` (Finding, Rule, PlanContext, RULES), ``footprint`` (paths and URLs), and the rules by theme,
imported in id order: ``commands`` (IA100-IA104), ``files`` (IA105-IA109), ``secrets`` (IA110) and
``contracts`` (IA111-IA115) and ``allowlist`` (IA116-IA119, IA121).
"""

from __future__ import annotations

# isort: skip_file
# Order matters: importing a rule module registers its rules, so they are imported in id order.
from .data import (SECTIONS, NEVER_MODULES, SHELL_METACHARACTERS, FORBIDDEN_PROGRAMS, UNSAFE_TAR_OPTIONS,
    SAFE_DPKG_OPTIONS, FORBIDDEN_KEYWORDS, CONTROLLER_NAMES, CONTROLLER_FILTERS, CONTROLLER_ATTRS, EXPRESSION_ARGS,
    DUNDER, SHARED_PATHS, DELETABLE_SHARED_PATHS, SHARED_DIRECTORIES, REPOSITORY_FILES, PRIVILEGED_PATHS,
    UNIT_DIRECTORIES, SECRET_FILES, PRIVILEGED_GROUPS, HELPER_PACKAGES, PACKAGE_MODULES, SERVICE_MODULES,
    WRITE_MODULES, VERSION_SUFFIX, STRONG_CHECKSUMS, VERIFY_MODULES, LOOPBACK, TRUSTED_SOURCE, UNSIGNED_REPO, TRUE,
    FALSE)
from .jinja import (_JINJA, is_templated, parse_jinja, jinja_names, template_parts, literal_shape, is_parameter,
    possible_values, _node_values, owned_name, controller_code)
from .tasks import kind, arg, is_true, is_false, as_list, walk, rendered_strings, expand, ITEM
from .registry import Finding, Rule, PlanContext, RULES, TaskCheck, PlanCheck, _doc, task_rule, plan_rule
from .footprint import (normalize, _under, path_allowed, prefix_allowed, path_problem, privileged_problem,
    written_paths, read_paths, url_matches, url_problem, tokens, checked_parameter, url_parameter, fact_expression, apt_line_uris, repository_file_urls,
    task_urls)
from .commands import (command_problems, split_command, wrong_integration, module_not_allowed, command_unguarded,
    _command_task, forbidden_keyword, controller_code_rule)
from .files import (setuid_mode, path_outside_footprint, privileged_file, url_not_allowed,
    download_without_checksum, tls_verification_off)
from .secrets import secret_handling, location, SECRET_PLACES, URL_ARGS, _secret_task
from .contracts import (verify_contract, uninstall_scope, handler_reference, service_outside_footprint,
    user_outside_footprint)
from .allowlist import (argument_not_allowed, executes_written_file, unit_not_from_template, result_override,
    loopback_call)

RULES.sort(key=lambda rule: rule.id)

__all__ = ["SECTIONS", "NEVER_MODULES", "SHELL_METACHARACTERS", "FORBIDDEN_PROGRAMS", "UNSAFE_TAR_OPTIONS",
           "SAFE_DPKG_OPTIONS", "FORBIDDEN_KEYWORDS", "CONTROLLER_NAMES", "CONTROLLER_FILTERS", "CONTROLLER_ATTRS",
           "EXPRESSION_ARGS", "DUNDER", "SHARED_PATHS", "DELETABLE_SHARED_PATHS", "SHARED_DIRECTORIES",
           "REPOSITORY_FILES", "PRIVILEGED_PATHS", "UNIT_DIRECTORIES", "SECRET_FILES", "PRIVILEGED_GROUPS",
           "HELPER_PACKAGES", "PACKAGE_MODULES", "SERVICE_MODULES", "WRITE_MODULES", "VERSION_SUFFIX",
           "STRONG_CHECKSUMS", "VERIFY_MODULES", "LOOPBACK", "TRUSTED_SOURCE", "UNSIGNED_REPO", "TRUE", "FALSE",
           "Finding", "Rule", "PlanContext", "RULES", "TaskCheck", "PlanCheck", "task_rule", "plan_rule", "kind",
           "arg", "is_true", "is_false", "as_list", "walk", "rendered_strings", "expand", "ITEM", "is_templated",
           "parse_jinja", "jinja_names", "template_parts", "literal_shape", "is_parameter", "possible_values",
           "owned_name", "controller_code", "normalize", "path_allowed", "prefix_allowed", "path_problem",
           "privileged_problem", "written_paths", "read_paths", "url_matches", "url_problem", "tokens", "checked_parameter", "url_parameter", "fact_expression",
           "apt_line_uris", "repository_file_urls", "task_urls", "command_problems", "split_command", "setuid_mode",
           "wrong_integration", "module_not_allowed", "command_unguarded", "forbidden_keyword",
           "controller_code_rule", "path_outside_footprint", "privileged_file", "url_not_allowed",
           "download_without_checksum", "tls_verification_off", "secret_handling", "location", "SECRET_PLACES",
           "URL_ARGS", "verify_contract", "uninstall_scope", "handler_reference", "service_outside_footprint",
           "user_outside_footprint", "argument_not_allowed", "executes_written_file", "unit_not_from_template",
           "result_override", "loopback_call"]
