"""The verifier agent: the verdict on each host from the run of the integration's verify entry point.

The role's ``verify.yml`` checks the integration works (service active, port listening, endpoint answers,
version) and reports what it found as ``<role>_evidence``; the executor collects it per host. The verifier
turns that run into a verdict per host: verified, or failed (then rolled back when an install asked for
it), unreachable, or unknown when the run was interrupted before it had a result for the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .executor import PlaybookRun, settle
from .status import HostStatus

STAGE = "verify"


@dataclass(frozen=True)
class Verdict:
    """The verifier's word on one host."""

    status: HostStatus  # verified, failed, unreachable or unknown
    evidence: dict[str, Any] | None = None  # what the verify entry point proved
    failures: tuple[str, ...] = ()  # why it is not verified, labelled "verify: ..."
    answered: bool = True  # False: the run has no result for the host (interrupted, or it skipped the host)

    @property
    def verified(self) -> bool:
        return self.status == HostStatus.VERIFIED


def verdicts(hosts: Iterable[str], result: PlaybookRun) -> dict[str, Verdict]:
    """The verdict on each of ``hosts`` from ``result``, the run of the verify entry point on them."""
    found = {}
    for host in hosts:
        outcome = result.hosts.get(host)
        settled = settle(outcome, result, STAGE)
        status = HostStatus.VERIFIED if settled.succeeded else settled.status or HostStatus.FAILED
        found[host] = Verdict(status, outcome.evidence if outcome is not None else None, settled.failures,
                              answered=outcome is not None)
    return found
