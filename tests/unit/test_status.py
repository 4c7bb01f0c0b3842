"""Host and run statuses are defined once, and written as their plain words everywhere."""

from __future__ import annotations

import json

from integration_agent.journal import HostOutcome
from integration_agent.lifecycle import SUCCESS, HostReport
from integration_agent.status import OUT_OF_PLAY, UNSETTLED, HostStatus, RunStatus


def test_statuses_are_their_words_in_json_and_comparisons():
    report = HostReport("web1", status=HostStatus.ROLLED_BACK)
    assert json.loads(json.dumps({"status": report.status, "run": RunStatus.PARTIAL})) == {
        "status": "rolled_back", "run": "partial"}
    assert report.status == "rolled_back" and HostStatus("unknown") is HostStatus.UNKNOWN
    assert HostOutcome(report.status, 0, (), None).to_dict()["status"] == "rolled_back"


def test_the_groups_and_the_success_table_use_the_same_members():
    assert not OUT_OF_PLAY & UNSETTLED
    assert all(isinstance(s, HostStatus) for states in SUCCESS.values() for s in states)
    assert {s for states in SUCCESS.values() for s in states} <= set(HostStatus)
