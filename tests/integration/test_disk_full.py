"""A full disk under the runs folder: a run that could not record what it does never starts, and a journal
that hits the full disk stays readable and says why (a small tmpfs stands for the full disk)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration_agent.journal import Journal, JournalError, Note, RunRequested
from tests.conftest import local_and_closed_inventory, mounted_tmpfs, run_cli


@pytest.fixture
def small_disk(tmp_path: Path):
    with mounted_tmpfs(tmp_path, "4m") as point:
        yield point


def fill(point: Path, leave: int) -> None:
    """Fill the file system at ``point`` until only about ``leave`` bytes are free."""
    stat = os.statvfs(point)
    size = max(0, stat.f_bavail * stat.f_frsize - leave)
    with open(point / "filler", "wb") as fh:
        fh.write(b"\0" * size)


def test_a_run_never_starts_without_room_for_its_record(small_disk, tmp_path, isolated_env, figure):
    runs = small_disk / "runs"
    proc = run_cli("verify", "node_exporter", "-i", str(local_and_closed_inventory(tmp_path)), "-l", "here",
                   env={**isolated_env, "INTAGENT_RUNS_DIR": str(runs)})
    figure("15 disk full", "runs started on a full runs folder", len(list(runs.iterdir())) if runs.exists() else 0)
    assert proc.returncode == 3, proc.stderr
    assert f"the runs folder {runs} has" in proc.stderr and "nothing was run" in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())


def test_a_journal_that_meets_a_full_disk_says_so_and_stays_readable(small_disk, figure):
    journal = Journal(small_disk / "run" / "journal.jsonl")
    journal.append(RunRequested("install", "node_exporter", ("web1",), {}))
    fill(small_disk, leave=2048)
    with pytest.raises(JournalError, match=r"no space left on the device.*cannot be recorded"):
        journal.append(Note(None, "x" * 64 * 1024))
    events = journal.events()  # readable: the part that did not fit was cut off again
    figure("15 disk full", "journal events lost or torn by the full disk", 1 - len(events))
    assert [e["type"] for e in events] == ["run_requested"]
    (small_disk / "filler").unlink()
    journal.append(Note(None, "room again"))
    assert [e["type"] for e in journal.events()] == ["run_requested", "note"]


def test_a_journal_with_a_reserve_frees_it_once_to_record_the_stop(small_disk):
    reserve = small_disk / "run" / "reserve"
    journal = Journal(small_disk / "run" / "journal.jsonl", reserve=reserve)
    journal.append(RunRequested("install", "node_exporter", ("web1",), {}))
    reserve.write_bytes(b"\0" * 64 * 1024)
    fill(small_disk, leave=0)
    journal.append(Note(None, "x" * 16 * 1024))  # does not fit: the reserve makes the room
    assert not reserve.exists()
    with pytest.raises(JournalError, match="no space left on the device"):
        journal.append(Note(None, "x" * 64 * 1024))  # the reserve is spent: refused, the journal whole
    assert [e["type"] for e in journal.events()] == ["run_requested", "note"]
