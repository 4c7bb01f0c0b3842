"""The runs folder's disk fills up in the middle of apply (check 15): the playbook is stopped because what it
does can no longer be recorded, the journal stays readable and says where and why the run stopped (the run's
reserve gives it the room), the host is `unknown`, and `resume`, once there is room again, reconciles it.

The disk is a small tmpfs; it is filled by the run's own event hook the moment apply's first event is
written, so the next event is the one that meets the full disk."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from integration_agent import api
from integration_agent.executor import marked_processes
from integration_agent.journal import Journal
from integration_agent.settings import load_settings
from tests.conftest import mounted_tmpfs, ssh

pytestmark = pytest.mark.lab


@pytest.fixture
def small_disk(tmp_path: Path):
    with mounted_tmpfs(tmp_path, "20m") as point:
        yield point


def fill_up(point: Path) -> None:
    """Write to ``point`` until the file system says it is full."""
    with open(point / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with open(point / "filler-tail", "wb", buffering=0) as fh:  # the last few bytes too
        try:
            while True:
                fh.write(b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_disk_that_fills_up_mid_apply_stops_the_run_with_a_readable_record(lab, small_disk, isolated_env,
                                                                              monkeypatch, figure):
    lab.reset(["lab1"])
    monkeypatch.setenv("INTAGENT_RUNS_DIR", str(small_disk / "runs"))
    settings = load_settings()
    filled: list[str] = []
    tasks: dict[str, list[str]] = {"stopped": [], "resumed": []}  # tasks apply started, in each run

    reserved: list[bool] = []  # was the reserve set aside while the resumed run ran?

    def started(which: str):
        def record(stage: str, event: dict) -> None:
            if which == "resumed" and not reserved:
                reserved.append((run_dir / "reserve").exists())
            if stage == "apply" and event.get("event") == "playbook_on_task_start":
                tasks[which].append(event["event_data"].get("task", ""))
        return record

    def on_event(stage: str, event: dict) -> None:
        started("stopped")(stage, event)
        if stage == "apply" and not filled:
            filled.append(event.get("event", ""))
            fill_up(small_disk)

    report = api.run_action("install", "node_exporter", lab.inventory_path, limit="lab1", settings=settings,
                            on_event=on_event)
    assert filled, "apply never started"
    host = report.hosts["lab1"]
    figure("15 disk full", "hosts left without a status (disk full mid-apply)", int(host.status != "unknown"))
    assert report.status == "interrupted" and report.exit_code == 130, report
    assert host.status == "unknown", host
    assert any("events.jsonl cannot be written (No space left on device)" in f for f in host.failures), host.failures

    run_dir = Path(report.run_dir)
    journal = Journal(run_dir / "journal.jsonl").events()  # readable, whole, in order
    assert [e["seq"] for e in journal] == list(range(1, len(journal) + 1))
    last = journal[-1]
    figure("15 disk full", "runs whose stop is not in the journal (disk full mid-apply)",
           int(last["type"] != "run_interrupted"))
    assert last["type"] == "run_interrupted" and last["step"] == "apply" and last["hosts"] == ["lab1"]
    assert "No space left on device" in last["reason"]
    assert not (run_dir / "reserve").exists(), "the reserve was used to record the stop"
    assert marked_processes((run_dir / "marker").read_text().strip()) == [], "Ansible left running"

    for name in ("filler", "filler-tail"):
        (small_disk / name).unlink()
    final = api.resume(report.run_id, settings=settings, on_event=started("resumed"))
    figure("15 disk full", "apply tasks started after the disk filled / in a whole apply",
           f"{len(tasks['stopped'])} / {len(tasks['resumed'])}")
    assert len(tasks["stopped"]) < len(tasks["resumed"]), tasks  # stopped, not run to its end
    assert final.status == "ok", final
    assert final.hosts["lab1"].status in ("installed", "unchanged"), final.hosts["lab1"]
    assert reserved == [True], "resume sets a new reserve aside"
    assert not (run_dir / "reserve").exists(), "a finished run gives its reserve back"
    assert ssh(lab, "lab1", "systemctl is-active prometheus-node-exporter").stdout.strip() == "active"

