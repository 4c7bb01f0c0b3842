"""A saved plan: ``intagent plan NAME --out FILE`` writes one, ``intagent install NAME --plan FILE`` applies
exactly it or refuses, the way a saved Terraform plan works.

The file binds the install to what was planned: the integration, the targets, the parameters (secrets are
never in it: they are given again, from the environment or a prompt), the fingerprint of the role and its
entry playbooks with those parameters, and what the plan said would change on each host. The install
refuses, before any playbook, when the role, a parameter or the targets changed; and refuses, before
apply, when its own dry run no longer shows what the saved plan showed (a host changed since).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IntegrationError, ValidationFailed

if TYPE_CHECKING:
    from .lifecycle import RunReport

FORMAT = 1


@dataclass(frozen=True)
class SavedPlan:
    """What ``plan --out`` recorded."""

    integration: str
    run_id: str
    fingerprint: str
    targets: list[str]
    parameters: dict[str, Any]  # role variables, secrets masked (they are given again at install)
    changes: dict[str, list[str]] = field(default_factory=dict)  # host -> tasks that would change
    limit: str | None = None
    format: int = FORMAT

    @classmethod
    def of(cls, report: RunReport, parameters: dict[str, Any], limit: str | None) -> SavedPlan:
        """The saved plan of a finished plan run (``report``)."""
        return cls(report.integration, report.run_id, report.fingerprint, sorted(report.hosts), parameters,
                   {h: planned_tasks(r.changes) for h, r in sorted(report.hosts.items())}, limit)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> SavedPlan:
        """Load ``path``; a missing, unreadable or foreign file is an error naming it (exit 5)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IntegrationError(f"saved plan {path}: cannot read it ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise IntegrationError(f"saved plan {path}: not a saved plan of this intagent (format {FORMAT})")
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise IntegrationError(f"saved plan {path}: {exc}") from None

    def check(self, integration: str, targets: list[str], fingerprint: str) -> None:
        """Refuse (ValidationFailed, exit 7) when the install would not apply what was planned."""
        if integration != self.integration:
            raise ValidationFailed(f"the saved plan is for {self.integration}, not {integration}")
        if sorted(targets) != sorted(self.targets):
            raise ValidationFailed(f"the saved plan targets {', '.join(self.targets)}; the inventory now gives "
                                   f"{', '.join(sorted(targets))}: nothing was run", hint="plan again")
        if fingerprint != self.fingerprint:
            raise ValidationFailed("the role, its entry playbooks or its parameters changed since the plan "
                                   f"{self.run_id}: nothing was run", hint="plan again")

    def drift(self, planned: dict[str, list[str]]) -> dict[str, tuple[list[str], list[str]]]:
        """Hosts whose new dry run differs from the saved one: host -> (saved, now)."""
        return {h: (self.changes.get(h, []), now) for h, now in planned.items() if now != self.changes.get(h, [])}


def planned_tasks(changes: list[dict[str, Any]]) -> list[str]:
    """The names of the tasks a plan says would change (its ``changes``), in order."""
    return [str(c.get("task", "")) for c in changes]
