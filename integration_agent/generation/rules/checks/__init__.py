"""The plan rules, one module each: ``iaNNN_<name>.py`` holds the rule's id and name (``RULE``), its check
function (whose docstring is the rule's documentation) and the helpers only it uses; ``iaNNN_<name>.yml``
beside it holds its pass and fail example plans. ``RULES`` below is the one list of rules the policy gate
runs, in id order: a new rule is a new module and a line here.
"""

from __future__ import annotations

from ..registry import Rule
from . import (
    ia100_wrong_integration,
    ia101_module_not_allowed,
    ia102_command_not_declared,
    ia103_forbidden_keyword,
    ia104_controller_code,
    ia105_path_outside_footprint,
    ia106_privileged_file,
    ia107_url_not_allowed,
    ia108_download_without_checksum,
    ia109_tls_verification_off,
    ia110_secret_handling,
    ia111_verify_contract,
    ia112_uninstall_scope,
    ia113_handler_reference,
    ia114_service_outside_footprint,
    ia115_user_outside_footprint,
    ia116_argument_not_allowed,
    ia117_executes_written_file,
    ia118_unit_not_from_template,
    ia119_result_override,
    ia121_loopback_call,
)

RULES: tuple[Rule, ...] = (
    ia100_wrong_integration.RULE,
    ia101_module_not_allowed.RULE,
    ia102_command_not_declared.RULE,
    ia103_forbidden_keyword.RULE,
    ia104_controller_code.RULE,
    ia105_path_outside_footprint.RULE,
    ia106_privileged_file.RULE,
    ia107_url_not_allowed.RULE,
    ia108_download_without_checksum.RULE,
    ia109_tls_verification_off.RULE,
    ia110_secret_handling.RULE,
    ia111_verify_contract.RULE,
    ia112_uninstall_scope.RULE,
    ia113_handler_reference.RULE,
    ia114_service_outside_footprint.RULE,
    ia115_user_outside_footprint.RULE,
    ia116_argument_not_allowed.RULE,
    ia117_executes_written_file.RULE,
    ia118_unit_not_from_template.RULE,
    ia119_result_override.RULE,
    ia121_loopback_call.RULE,
)
