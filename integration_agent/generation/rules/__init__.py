"""The policy gate's plan rules: one small check per rule id, registered in ``RULES`` in id order.

A rule reads a :class:`GeneratedPlan` against the integration's :class:`Manifest` and yields findings
(values, never exceptions). The check function's docstring is the rule's documentation. The rules are
deliberately conservative: what intagent cannot prove to stay inside the integration's footprint is
refused, and the message tells the model what to write instead. ``policy`` is the public face.

The package: ``data`` (what a plan may do), ``jinja`` and ``tasks`` (reading templates and tasks),
``registry`` (Finding, Rule, PlanContext, RULES), ``footprint`` (paths and URLs), and the rules by theme,
imported in id order: ``commands`` (IA100-IA104), ``files`` (IA105-IA109), ``secrets`` (IA110) and
``contracts`` (IA111-IA115) and ``allowlist`` (IA116-IA119, IA121). Nothing is re-exported: import a name
from the module that defines it.
"""

from __future__ import annotations

# isort: skip_file
# Order matters: importing a rule module registers its rules, so they are imported in id order.
from . import commands, files, secrets, contracts, allowlist  # noqa: F401
from .registry import RULES

RULES.sort(key=lambda rule: rule.id)
