"""Filters of the infra_agent role.

``infra_agent_parse_config`` parses the existing /etc/newrelic-infra.yml without ever putting its text into
an error message. ansible-core prints the exception of a failing task even when the task has
``no_log: true``, and YAML syntax errors can quote the offending line - which may hold the license key.
"""

from __future__ import annotations

import yaml


def infra_agent_parse_config(text):
    """Return ``{'ok': bool, 'config': dict, 'error': str}``; ``error`` names a place, never content."""
    try:
        data = yaml.safe_load(str(text)) if text is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return {"ok": False, "config": {}, "error": f"not valid YAML{where}"}
    except yaml.YAMLError:
        return {"ok": False, "config": {}, "error": "not valid YAML"}
    if data is None:
        return {"ok": True, "config": {}, "error": ""}
    if not isinstance(data, dict):
        return {"ok": False, "config": {}, "error": f"the top level is a {type(data).__name__}, not a mapping"}
    return {"ok": True, "config": data, "error": ""}


class FilterModule:
    def filters(self):
        return {"infra_agent_parse_config": infra_agent_parse_config}
