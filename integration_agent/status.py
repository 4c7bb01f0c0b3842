"""The words a run uses for where a host stands and how a run (or a batch) ended, defined once.

They are ``StrEnum`` members: equal to their strings, and written as those strings in reports, the journal
and JSON output.
"""

from __future__ import annotations

from enum import StrEnum


class HostStatus(StrEnum):
    """Where one host stands in a run (``HostReport.status``)."""

    PENDING = "pending"  # in the run; nothing done to it yet
    PLANNED = "planned"  # the dry run says it would change
    APPLIED = "applied"  # apply went through; not verified yet
    VERIFIED = "verified"  # verify proved it works (becomes installed or unchanged when an install ends)
    INSTALLED = "installed"
    UNINSTALLED = "uninstalled"
    UNCHANGED = "unchanged"  # already as asked: nothing to change
    ROLLED_BACK = "rolled_back"  # failed, then uninstalled by recovery
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # never rolled back: intagent cannot know what it would undo
    UNKNOWN = "unknown"  # stopped part way (interrupted): reconciled on resume
    SKIPPED = "skipped"  # in a batch that never started


# Hosts no later step of the run touches.
OUT_OF_PLAY = frozenset({HostStatus.FAILED, HostStatus.UNREACHABLE, HostStatus.UNKNOWN})
# Hosts whose state no step has settled yet.
UNSETTLED = frozenset({HostStatus.PENDING, HostStatus.PLANNED, HostStatus.APPLIED})


class RunStatus(StrEnum):
    """How a run, or one batch of a rolling run, ended."""

    OK = "ok"
    PARTIAL = "partial"  # some hosts ended as asked, some did not
    FAILED = "failed"  # no host ended as asked
    ROLLBACK_FAILED = "rollback_failed"
    REFUSED = "refused"  # a saved plan no longer held
    INTERRUPTED = "interrupted"
    DECLINED = "declined"  # the operator said no at the question
