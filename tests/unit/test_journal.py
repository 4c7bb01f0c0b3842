"""The workflow journal: append-only, fsynced, redacted, tamper-evident, and the state folded from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_agent.journal import (
    HostOutcome,
    Journal,
    JournalError,
    Note,
    RunFinished,
    RunInterrupted,
    RunRequested,
    RunState,
    StepFinished,
    StepStarted,
    apply,
    fold,
    message_from_dict,
)
from integration_agent.runs import RunDir
from integration_agent.secrets import MASK, Redactor

CANARY = "canary-3f9c1d7e-do-not-leak"


def _install_run() -> list:
    return [
        RunRequested("install", "infra_agent", ("h1", "h2"), {"license_key": MASK, "region": "eu"}),
        StepStarted("plan", ("h1", "h2")),
        StepFinished("plan", {"h1": HostOutcome("planned", 3), "h2": HostOutcome("unchanged", 0)}),
        StepStarted("apply", ("h1", "h2")),
        StepFinished("apply", {"h1": HostOutcome("applied", 2),
                               "h2": HostOutcome("failed", 0, ("apply: boom",), None)}),
        StepStarted("verify", ("h1",)),
        StepFinished("verify", {"h1": HostOutcome("verified", 0, (), {"version": "1.2.3"})}),
        RunFinished("partial", 10),
    ]


def test_messages_round_trip_through_dicts():
    for message in [*_install_run(), RunInterrupted("apply", ("h1",)), RunInterrupted(None, ()), Note(None, "hi")]:
        data = message.to_dict()
        assert data["type"]
        assert message_from_dict(json.loads(json.dumps(data))) == message


def test_lines_as_earlier_versions_wrote_them_still_read():
    """Missing or null fields take their defaults, an empty reason is no reason, and the lines are written
    back field for field as before (a reason only when there is one)."""
    assert message_from_dict({"type": "run_requested", "action": "install"}) == RunRequested("install", "", ())
    outcome = {"status": "failed", "changed": None, "failures": None, "evidence": None}
    assert message_from_dict({"type": "step_finished", "step": "apply", "hosts": {"h1": outcome}}) == \
        StepFinished("apply", {"h1": HostOutcome("failed")})
    assert message_from_dict({"type": "run_interrupted", "step": None, "hosts": ["h1"], "reason": ""}) == \
        RunInterrupted(None, ("h1",))
    assert RunInterrupted(None, ("h1",)).to_dict() == {"type": "run_interrupted", "step": None, "hosts": ["h1"]}
    assert RunInterrupted("apply", (), reason="disk full").to_dict()["reason"] == "disk full"
    assert list(HostOutcome("ok").to_dict()) == ["status", "changed", "failures", "evidence"]
    with pytest.raises(JournalError):
        message_from_dict({"type": "run_finished", "status": "ok"})


def test_unknown_type_is_refused():
    with pytest.raises(JournalError):
        message_from_dict({"type": "launch_missiles"})


def test_append_is_on_disk_for_another_reader(tmp_path):
    writer = Journal(tmp_path / "journal.jsonl")
    reader = Journal(tmp_path / "journal.jsonl")
    assert reader.events() == []
    for n, message in enumerate(_install_run(), start=1):
        assert writer.append(message) == n
        # Visible to a second instance as soon as append returns: nothing buffered in the writer.
        events = reader.events()
        assert len(events) == n and events[-1]["seq"] == n and events[-1]["type"] == message.TYPE
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 9))
    first = reader.events()[0]
    assert first["at"].endswith("+00:00") and first["targets"] == ["h1", "h2"]
    assert [message_from_dict(e) for e in reader.events()] == _install_run()
    state = reader.state()
    assert state == RunState(status="finished", action="install", integration="infra_agent", targets=["h1", "h2"],
                             checkpoint="verify", current=None, hosts={"h1": "verified", "h2": "failed"},
                             exit_code=10, steps_done=["plan", "apply", "verify"])


def test_two_writers_keep_numbering(tmp_path):
    a, b = Journal(tmp_path / "j.jsonl"), Journal(tmp_path / "j.jsonl")
    assert a.append(Note(None, "one")) == 1
    assert b.append(Note(None, "two")) == 2
    assert a.append(Note(None, "three")) == 3
    assert [e["text"] for e in a.events()] == ["one", "two", "three"]


def test_torn_last_line_is_skipped_with_a_note_and_dropped_on_next_append(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for message in _install_run()[:3]:
        journal.append(message)
    with path.open("ab") as handle:
        handle.write(b'{"seq": 4, "at": "2024-01-01T00:00:00+00:00", "type": "step_sta')  # crash mid-write
    events = journal.events()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert journal.notes and "torn" in journal.notes[0]
    assert fold(events).checkpoint == "plan"
    # Resuming appends after the committed lines; the torn bytes are dropped and the drop is recorded.
    seq = journal.append(StepStarted("apply", ("h1",)))
    assert seq == 5
    events = journal.events()
    assert journal.notes == []
    assert [e["type"] for e in events][-2:] == ["note", "step_started"]
    assert "torn" in events[-2]["text"]
    assert fold(events).current == "apply"


def test_deleted_middle_line_is_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for message in _install_run():
        journal.append(message)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[4:]))
    with pytest.raises(JournalError, match="line 4"):
        journal.events()
    with pytest.raises(JournalError):
        journal.append(Note(None, "appending to a doctored journal is refused"))


def test_edited_middle_line_is_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for message in _install_run():
        journal.append(message)
    text = path.read_text()
    assert '"status":"failed"' in text
    path.write_text(text.replace('"status":"failed"', '"status":"applied"'))
    with pytest.raises(JournalError, match="edited"):
        journal.events()


def test_renumbered_lines_are_detected(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    for message in _install_run():
        journal.append(message)
    lines = path.read_text().splitlines()
    del lines[2]
    renumbered = []
    for n, line in enumerate(lines, start=1):
        event = json.loads(line)
        event["seq"] = n
        renumbered.append(json.dumps(event, separators=(",", ":")))
    path.write_text("\n".join(renumbered) + "\n")
    with pytest.raises(JournalError):
        journal.events()


def test_redaction_keeps_the_canary_off_disk(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path, redact=Redactor([CANARY]))
    journal.append(RunRequested("install", "infra_agent", ("h1",), {"note": f"key is {CANARY}"}))
    journal.append(StepFinished("apply", {"h1": HostOutcome("failed", 0, (f"apply: bad key {CANARY}",),
                                                            {"echo": CANARY})}))
    journal.append(Note("apply", f"retrying with {CANARY}"))
    raw = path.read_bytes()
    assert CANARY.encode() not in raw
    assert MASK in raw.decode()
    assert len(Journal(path).events()) == 3


def test_rundir_journal(tmp_path):
    run = RunDir.create(tmp_path, "20240101T000000-abcdef")
    assert run.journal.path == run.path / "journal.jsonl"
    run.journal.append(RunRequested("verify", "infra_agent", ("h1",), {}))
    assert run.journal.state().hosts == {"h1": "pending"}


def test_fold_rules_for_interrupt_and_resume():
    events = [e.to_dict() for e in [
        RunRequested("install", "x", ("a", "b", "c"), {}),
        StepStarted("plan", ("a", "b", "c")),
        StepFinished("plan", {"a": HostOutcome("planned"), "b": HostOutcome("planned"),
                              "c": HostOutcome("unreachable")}),
        StepStarted("apply", ("a", "b")),
        RunInterrupted("apply", ("a", "b")),
    ]]
    state = fold(events)
    assert state.status == "interrupted" and state.checkpoint == "plan" and state.current == "apply"
    assert state.hosts == {"a": "unknown", "b": "unknown", "c": "unreachable"}
    assert state.remaining(("plan", "apply", "verify", "recover")) == ["apply", "verify", "recover"]
    resumed = apply(state, StepStarted("apply", ("a", "b")))
    assert resumed.status == "running" and resumed.current == "apply"
    assert state.status == "interrupted"  # apply does not mutate its input
    assert fold([]) == RunState()


# -- property: replaying the file gives the state built while appending -----------------------------

HOSTS = ["web1", "web2", "db1", "cache"]
STEPS = ["plan", "apply", "verify", "recover"]
STATUSES = ["pending", "planned", "unchanged", "applied", "verified", "failed", "unreachable", "unknown",
            "rolled_back", "installed"]
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
host_lists = st.lists(st.sampled_from(HOSTS), unique=True, max_size=len(HOSTS)).map(tuple)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), text)
outcomes = st.builds(HostOutcome, status=st.sampled_from(STATUSES), changed=st.integers(0, 50),
                     failures=st.lists(text, max_size=3).map(tuple),
                     evidence=st.one_of(st.none(), st.dictionaries(st.sampled_from(["version", "pid", "ok"]),
                                                                   scalars, max_size=3)))
requested = st.builds(RunRequested, action=st.sampled_from(["plan", "install", "verify", "uninstall"]),
                      integration=st.sampled_from(["infra_agent", "collectd"]), targets=host_lists,
                      parameters=st.dictionaries(st.sampled_from(["region", "license_key", "port"]), scalars,
                                                 max_size=3))
later = st.one_of(
    st.builds(StepStarted, step=st.sampled_from(STEPS), hosts=host_lists),
    st.builds(StepFinished, step=st.sampled_from(STEPS),
              hosts=st.dictionaries(st.sampled_from(HOSTS), outcomes, max_size=len(HOSTS))),
    st.builds(RunInterrupted, step=st.one_of(st.none(), st.sampled_from(STEPS)), hosts=host_lists),
    st.builds(RunFinished, status=st.sampled_from(["ok", "partial", "failed", "interrupted"]),
              exit_code=st.sampled_from([0, 10, 11, 12, 13, 130])),
    st.builds(Note, step=st.one_of(st.none(), st.sampled_from(STEPS)), text=text),
)
sequences = st.tuples(requested, st.lists(later, max_size=25)).map(lambda t: [t[0], *t[1]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=sequences)
def test_replay_from_disk_equals_state_built_while_appending(tmp_path_factory, messages):
    path = Path(tmp_path_factory.mktemp("journal")) / "journal.jsonl"
    journal = Journal(path)
    state = RunState()
    for n, message in enumerate(messages, start=1):
        assert journal.append(message) == n
        state = apply(state, message)
    first, second = Journal(path).events(), Journal(path).events()
    assert first == second
    assert fold(first) == state
    assert fold(first) == fold(second) == fold(message_from_dict(e) for e in first)
    assert [message_from_dict(e) for e in first] == messages
    # Steps that finished, in order; the checkpoint is the last of them.
    finished = [m.step for m in messages if isinstance(m, StepFinished)]
    assert state.steps_done == finished
    assert state.checkpoint == (finished[-1] if finished else None)
