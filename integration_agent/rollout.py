"""Rolling batches: which hosts change together, and when a failing batch stops the rollout.

Batch sizes follow Ansible's ``serial`` keyword, so a rollout planned here splits a fleet exactly as
the AWX entry playbooks (``serial: "{{ intagent_batches }}"``) split it:

* a size is a host count (``1``) or a percentage of *all* targets (``"25%"``, rounded down, at least 1);
* sizes are used in order and the last one repeats until every host has a batch;
* hosts keep the inventory's order, so the first batch (the canary) is predictable.

``max_fail`` is Ansible's ``max_fail_percentage``: a batch stops the rollout when its failed hosts
*exceed* that percentage of the batch. Given batches and no ``max_fail``, any failure stops (0); without
batches the run is one batch that never stops anything (today's behaviour: partial success allowed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Batch = int | str  # a host count, or "N%" of all targets

_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_COUNT = re.compile(r"^\s*(\d+)\s*$")
BATCH_HELP = "a number of hosts (1 or more) or a percentage of all targets from 1% to 100% (e.g. 25%)"
MAX_FAIL_HELP = "a percentage of the batch from 0 to 100 (e.g. 0, 20 or 20%)"


def parse_batch(value: Any) -> Batch:
    """``value`` as a batch size (``int`` host count or ``"N%"``); ValueError naming the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not {BATCH_HELP}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{value!r} is not {BATCH_HELP}")
        return value
    if (count := _COUNT.match(value)) is not None and int(count.group(1)) >= 1:
        return int(count.group(1))
    percent = _PERCENT.match(value)
    if percent is None or not 1 <= int(percent.group(1)) <= 100:
        raise ValueError(f"{value!r} is not {BATCH_HELP}")
    return f"{int(percent.group(1))}%"


def parse_max_fail(value: Any) -> float:
    """``value`` (``20``, ``20.5``, ``"20%"``) as a percentage from 0 to 100; ValueError naming it otherwise."""
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removesuffix("%"))
        except ValueError:
            number = None
    if number is None or not 0 <= number <= 100 or number != number:  # NaN is not a percentage
        raise ValueError(f"{value!r} is not {MAX_FAIL_HELP}")
    return number


def batch_sizes(batches: Sequence[Batch], total: int) -> list[int]:
    """The size of each batch for ``total`` hosts (Ansible ``serial`` semantics); one batch when none given."""
    if not batches:
        return [total] if total else []
    sizes: list[int] = []
    left, item = total, 0
    while left > 0:
        size = _size(batches[item], total)
        sizes.append(min(size, left))
        left -= sizes[-1]
        item = min(item + 1, len(batches) - 1)  # the last size repeats until the hosts run out
    return sizes


def _size(batch: Batch, total: int) -> int:
    if isinstance(batch, str):
        # Ansible's pct_to_int: int(pct / 100 * hosts) or 1.
        return int(int(batch.rstrip("%")) / 100.0 * total) or 1
    return batch


def exceeds(failed: int, size: int, max_fail: float | None) -> bool:
    """Whether ``failed`` hosts of a batch of ``size`` are more than ``max_fail`` percent (None: never)."""
    return max_fail is not None and size > 0 and failed * 100.0 > max_fail * size


@dataclass(frozen=True)
class Rollout:
    """How a run asks to be rolled out: batch sizes and the failure limit (both validated)."""

    batches: tuple[Batch, ...] = ()
    max_fail: float | None = None

    @classmethod
    def of(cls, batches: Sequence[Any] = (), max_fail: Any = None) -> Rollout:
        """A validated rollout from raw values (flags, settings, API); ValueError names a bad one."""
        if isinstance(batches, (str, int)):
            raise ValueError(f"batches: {batches!r} is not a list of batch sizes")
        try:
            sizes = tuple(parse_batch(b) for b in batches)
        except ValueError as exc:
            raise ValueError(f"batches: {exc}") from None
        try:
            limit = None if max_fail is None else parse_max_fail(max_fail)
        except ValueError as exc:
            raise ValueError(f"max_fail: {exc}") from None
        return cls(sizes, limit)

    @property
    def batched(self) -> bool:
        return bool(self.batches)

    def plan(self, targets: Sequence[str]) -> RolloutPlan:
        """The batches of ``targets`` in order, and the effective failure limit."""
        if not self.batches:
            return RolloutPlan((tuple(targets),) if targets else (), self.max_fail, batched=False, rollout=self)
        hosts, out = list(targets), []
        for size in batch_sizes(self.batches, len(hosts)):
            out.append(tuple(hosts[:size]))
            del hosts[:size]
        return RolloutPlan(tuple(out), 0.0 if self.max_fail is None else self.max_fail, batched=True, rollout=self)


@dataclass(frozen=True)
class RolloutPlan:
    """The hosts of each batch, in order, and the percentage of a batch allowed to fail (None: no limit).

    ``batched`` is False for a run that asked for no batches: one batch of every target, journaled and
    reported exactly as before batches existed. ``rollout`` is what was asked for (the sizes as given).
    """

    batches: tuple[tuple[str, ...], ...]
    max_fail: float | None = None
    batched: bool = True
    rollout: Rollout = Rollout()

    def stops(self, failed: int, size: int) -> bool:
        """Whether a batch with ``failed`` of ``size`` hosts failed stops the rollout."""
        return exceeds(failed, size, self.max_fail)

    def why_stopped(self, failed: int, size: int) -> str:
        """The reason a stopping batch gives, for the report and the journal."""
        return f"{failed} of {size} host(s) failed, more than max-fail {self.max_fail:g}%"

    def to_record(self) -> dict[str, Any]:
        """What ``request.json`` keeps, so that a resumed run uses the very same batches."""
        return {"batches": list(self.rollout.batches), "max_fail": self.rollout.max_fail,
                "plan": [list(batch) for batch in self.batches]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RolloutPlan:
        """The plan :meth:`to_record` kept (the hosts of each batch as they were planned)."""
        rollout = Rollout.of(record.get("batches") or (), record.get("max_fail"))
        planned = rollout.plan([])
        return cls(tuple(tuple(str(h) for h in batch) for batch in record.get("plan") or ()),
                   planned.max_fail, planned.batched, rollout)
