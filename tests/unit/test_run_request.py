"""request.json: one typed RunRequest for every kind of run, written and read back as it always was."""

from __future__ import annotations

import json

from integration_agent.runs import RunDir, RunRequest

# Each kind of run's request.json as earlier versions wrote it, key for key and in that order.
PING = {"action": "ping", "inventory": ["/srv/hosts.yml"], "limit": None, "targets": ["h1"],
        "ansible": {"user": None, "forks": None}, "created": "2026-11-25T02:17:49+00:00"}
INSTALL = {"action": "install", "integration": "node_exporter", "inventory": ["/srv/hosts.yml"], "limit": "h*",
           "targets": ["h1", "h2"], "parameters": {"license_key": "********", "port": 9100},
           "ansible": {"user": "ops"}, "created": "2026-11-25T02:17:49+00:00", "source": "project",
           "generation": None, "rollout": {"batches": [1, "100%"], "max_fail": 0.0, "plan": [["h1"], ["h2"]]},
           "saved_plan": {"integration": "node_exporter", "targets": ["h1", "h2"]}, "fingerprint": "abc123"}
GENERATE = {"action": "generate", "integration": "collectd", "platform": "debian-12", "inventory": None,
            "limit": None, "targets": [], "created": "2026-11-25T02:17:49+00:00"}


def test_every_kind_of_request_is_written_back_as_it_was(tmp_path):
    plain = {k: v for k, v in INSTALL.items() if k not in ("rollout", "saved_plan")}
    for record in (PING, INSTALL, plain, GENERATE):
        run = RunDir.create(tmp_path, f"run-{len(record)}-{record['action']}")
        (run.path / "request.json").write_text(json.dumps(record, indent=2))
        request = run.request()
        assert json.dumps(request.record()) == json.dumps(record)
        run.write_request(request)
        assert (run.path / "request.json").read_text() == json.dumps(record, indent=2)


def test_fields_a_run_read_them_by():
    request = RunRequest.read(INSTALL)
    assert (request.action, request.integration, request.targets) == ("install", "node_exporter", ["h1", "h2"])
    assert request.rollout is not None and request.rollout["plan"] == [["h1"], ["h2"]]
    assert RunRequest.read(GENERATE).inventory is None


def test_a_file_that_is_no_request_reads_as_an_empty_one():
    for data in (None, [1, 2], {"targets": "not a list"}):
        assert RunRequest.read(data) == RunRequest()
    assert RunRequest.read({"action": "install", "from_a_later_version": 1}).record() == {
        "action": "install", "from_a_later_version": 1}
