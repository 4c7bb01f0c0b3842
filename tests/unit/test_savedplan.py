"""Saved plans without hosts: reading, the checks that refuse an install, and drift of a new dry run."""

from __future__ import annotations

import pytest

from integration_agent.errors import IntegrationError, ValidationFailed
from integration_agent.savedplan import SavedPlan

PLAN = SavedPlan("node_exporter", "20260101T000000-aaaaaa", "f" * 64, ["web1", "web2"],
                 {"node_exporter_version": ""}, {"web1": ["Install the package"], "web2": []})


def test_a_saved_plan_round_trips_and_a_foreign_file_is_refused(tmp_path):
    path = PLAN.write(tmp_path / "plan.json")
    assert SavedPlan.read(path) == PLAN
    (tmp_path / "other.json").write_text('{"format": 99}')
    with pytest.raises(IntegrationError, match="not a saved plan"):
        SavedPlan.read(tmp_path / "other.json")
    with pytest.raises(IntegrationError, match="cannot read it"):
        SavedPlan.read(tmp_path / "missing.json")


@pytest.mark.parametrize("integration, targets, fingerprint, message", [
    ("zabbix_agent", ["web1", "web2"], "f" * 64, "is for node_exporter"),
    ("node_exporter", ["web1"], "f" * 64, "the inventory now gives web1"),
    ("node_exporter", ["web2", "web1"], "0" * 64, "changed since the plan"),
])
def test_an_install_that_would_not_apply_the_plan_is_refused(integration, targets, fingerprint, message):
    with pytest.raises(ValidationFailed, match=message):
        PLAN.check(integration, targets, fingerprint)


def test_the_same_plan_passes_and_drift_names_the_hosts_that_changed():
    PLAN.check("node_exporter", ["web2", "web1"], "f" * 64)
    assert PLAN.drift({"web1": ["Install the package"], "web2": []}) == {}
    assert PLAN.drift({"web1": [], "web2": []}) == {"web1": (["Install the package"], [])}
