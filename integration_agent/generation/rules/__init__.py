"""The policy gate's plan rules: one module per rule id in ``checks``, listed in ``checks.RULES`` in id order.

A rule reads a :class:`GeneratedPlan` against the integration's :class:`Manifest` and yields findings
(values, never exceptions). The check function's docstring is the rule's documentation. The rules are
deliberately conservative: what intagent cannot prove to stay inside the integration's footprint is
refused, and the message tells the model what to write instead. ``policy`` is the public face.

The package: ``checks`` (the rules, ``iaNNN_<name>.py`` with pass/fail examples in ``iaNNN_<name>.yml``
beside each), ``registry`` (Finding, Rule, PlanContext, task_rule, plan_rule), and the helpers the rules
share: ``data`` (lists several rules check against), ``jinja`` and ``tasks`` (reading templates and tasks)
and ``footprint`` (the paths and URLs a task touches). Nothing is re-exported: import a name from the
module that defines it.
"""
