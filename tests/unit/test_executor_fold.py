"""Per-host outcomes come from events and the final stats event, not from the return code."""

from integration_agent.executor import Executor, HostRun


def _fold(events):
    hosts: dict[str, HostRun] = {}
    seen = {"stats": False, "count": 0}
    for event in events:
        Executor.fold_event(event, hosts, seen)
    return hosts, seen["stats"]


def test_stats_event_gives_counts_and_unreachable_hosts():
    hosts, complete = _fold([
        {"event": "runner_on_failed", "event_data": {"host": "b", "task": "Install", "res": {"msg": "boom\nmore"}}},
        {"event": "runner_on_unreachable", "event_data": {"host": "c", "task": "Gather", "res": {"msg": "no route"}}},
        {"event": "playbook_on_stats", "event_data": {"ok": {"a": 2, "b": 1}, "changed": {"a": 1},
                                                       "failures": {"b": 1}, "dark": {"c": 1}}},
    ])
    assert complete
    assert hosts["a"].succeeded and hosts["a"].changed == 1
    assert not hosts["b"].succeeded and hosts["b"].failures == ["Install: boom"]
    assert hosts["c"].unreachable and not hosts["c"].succeeded


def test_ignored_failures_are_not_failures_and_missing_stats_means_incomplete():
    hosts, complete = _fold([
        {"event": "runner_on_failed", "event_data": {"host": "a", "task": "t", "ignore_errors": True, "res": {}}},
    ])
    assert not complete
    assert hosts["a"].failures == []
