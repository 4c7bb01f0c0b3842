"""The verifier agent: a verdict per host from the run of the verify entry point."""

from __future__ import annotations

from integration_agent.executor import HostRun, PlaybookRun
from integration_agent.status import HostStatus
from integration_agent.verifier import verdicts


def _run(*hosts: HostRun, completed: bool = True) -> PlaybookRun:
    return PlaybookRun("successful" if completed else "canceled", 0, {h.host: h for h in hosts}, completed)


def test_evidence_and_verdict_per_host():
    result = _run(HostRun("web1", ok=4, evidence={"service": "active", "version": "1.8.2"}),
                  HostRun("web2", failed=1, failures=["port 9100 not listening"], evidence={"service": "failed"}),
                  HostRun("web3", unreachable=True, failures=["ssh: no route"]))
    found = verdicts(["web1", "web2", "web3", "web4"], result)
    assert found["web1"].verified and found["web1"].evidence == {"service": "active", "version": "1.8.2"}
    assert (found["web2"].status, found["web2"].failures) == (HostStatus.FAILED, ("verify: port 9100 not listening",))
    assert found["web2"].evidence == {"service": "failed"}
    assert (found["web3"].status, found["web3"].failures) == (HostStatus.UNREACHABLE, ("verify: ssh: no route",))
    assert found["web4"].status == HostStatus.FAILED and not found["web4"].answered
    assert found["web4"].failures == ("verify: no result for this host (run skipped it)",)


def test_a_host_without_result_in_an_interrupted_run_is_unknown():
    found = verdicts(["web1"], _run(completed=False))
    assert found["web1"].status == HostStatus.UNKNOWN
    assert found["web1"].failures == ("verify: no result for this host (run interrupted)",)
