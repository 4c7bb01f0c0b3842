"""The exceptions intagent raises, and the exit code each one means.

Every error the tool reports on purpose derives from :class:`IntagentError`; the CLI is the only
place that turns one into a message and an exit code. Outcomes on hosts (a failed task, an
unreachable host) are values in a report, not exceptions.

    IntagentError                      exit 1   anything unexpected that we still name
    +-- ConfigError                    exit 3   settings file, environment or flags are invalid
    +-- InventoryError                 exit 4   inventory does not parse or matches no host
    +-- IntegrationError               exit 5   unknown integration, bad manifest or parameter
    +-- LabError                       exit 6   the lab cannot be built here (not root, missing tool)
    +-- ValidationFailed               exit 7   content failed a gate (``intagent audit``)
    +-- HostBusy                       exit 9   another run is changing one of the hosts
    +-- GenerationFailed               exit 8   the model never produced a valid plan
    +-- ExecutionFailed                exit 10  the run failed on some hosts (partial failure)
    |   +-- TotalFailure               exit 11  the run failed on every targeted host
    +-- VerificationFailed             exit 12  the integration was applied but does not work
    +-- RecoveryFailed                 exit 13  a rollback did not leave the host clean
    +-- MissingExtra                   exit 14  a feature needs an optional part that is not installed
    +-- Interrupted                    exit 130 the run was stopped (Ctrl-C, SIGTERM)

The outcome of a run on its hosts is a value, so the run's report carries the exit code of the class
that names it (``ExecutionFailed``, ``TotalFailure``, ``VerificationFailed``, ``RecoveryFailed``,
``Interrupted``) and the CLI exits with that code; the other classes are raised. Ctrl-C outside a run
(``KeyboardInterrupt``) exits with ``Interrupted``'s code too.

Exit code 2 is reserved for command-line usage errors, which typer reports itself.
"""

from __future__ import annotations

from typing import Any


class IntagentError(Exception):
    """Base of every error intagent reports deliberately."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(IntagentError):
    """Settings could not be loaded or validated."""

    exit_code = 3


class InventoryError(IntagentError):
    """The Ansible inventory is unusable for this run."""

    exit_code = 4


class IntegrationError(IntagentError):
    """An integration is unknown, malformed, or asked for with bad parameters."""

    exit_code = 5


class LabError(IntagentError):
    """The lab of test hosts cannot be created or managed on this machine."""

    exit_code = 6


class ValidationFailed(IntagentError):
    """Content failed one of the gates."""

    exit_code = 7


class GenerationFailed(IntagentError):
    """The generate-and-repair loop gave up."""

    exit_code = 8
    attempts: list[Any]  # every attempt, with its findings (set by the builder when it gives up)


class HostBusy(IntagentError):
    """Another intagent run holds the lock of a targeted host."""

    exit_code = 9


class ExecutionFailed(IntagentError):
    """A run failed on some of the targeted hosts."""

    exit_code = 10


class TotalFailure(ExecutionFailed):
    """A run failed on every targeted host."""

    exit_code = 11


class VerificationFailed(IntagentError):
    """The integration is in place but its verification failed."""

    exit_code = 12


class RecoveryFailed(IntagentError):
    """Rolling a host back did not succeed."""

    exit_code = 13


class MissingExtra(IntagentError):
    """A feature needs packages of an optional extra (``pip install 'intagent[EXTRA]'``) that are missing."""

    exit_code = 14

    def __init__(self, feature: str, missing: str, extra: str, *, hint: str | None = None) -> None:
        super().__init__(f"{feature} needs {missing}, which is not installed: pip install 'intagent[{extra}]'",
                         hint=hint)
        self.extra = extra


class Interrupted(IntagentError):
    """The run was interrupted by a signal."""

    exit_code = 130


EXIT_OK = 0
EXIT_USAGE = 2
