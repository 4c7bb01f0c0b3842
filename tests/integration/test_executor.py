"""Real ansible-runner runs on the controller (connection local; nothing is installed) and loopback."""

import json
import os
import tempfile
from pathlib import Path

import pytest

from integration_agent.ansible_env import AnsibleOptions
from integration_agent.errors import ConfigError
from integration_agent.executor import Executor
from integration_agent.scratch import MEMORY_FS, Scratch
from integration_agent.secrets import MASK
from tests.conftest import local_and_closed_inventory


def _playbook(tmp_path: Path, body: str) -> Path:
    pb = tmp_path / "play.yml"
    pb.write_text(body)
    return pb


def test_ping_reports_each_host_from_events(tmp_path):
    pb = _playbook(tmp_path, "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n")
    events = tmp_path / "events.jsonl"
    result = Executor(timeout=5).run(pb, local_and_closed_inventory(tmp_path), events_file=events)
    assert result.completed
    assert result.hosts["here"].succeeded
    assert result.hosts["closed"].unreachable
    assert result.failed_hosts == ["closed"]
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds[-1] == "playbook_on_stats"


def test_secrets_never_reach_disk_or_events_even_when_the_task_fails(tmp_path):
    canary = "canary-" + os.urandom(8).hex()
    pb = _playbook(tmp_path, (
        "- hosts: here\n  gather_facts: false\n  tasks:\n"
        "    - name: Use the secret and fail\n"
        "      ansible.builtin.fail:\n        msg: 'bad key {{ license_key }}'\n"))
    events = tmp_path / "events.jsonl"
    seen = []
    before = set(Path("/dev/shm").glob("intagent-run-*"))  # other runs on this machine may own some
    result = Executor().run(pb, local_and_closed_inventory(tmp_path), limit="here", secrets={"license_key": canary},
                            events_file=events, on_event=seen.append)
    assert result.hosts["here"].failed == 1
    assert canary not in repr(result.hosts["here"].failures) and MASK in result.hosts["here"].failures[0]
    assert canary not in events.read_text()
    assert canary not in repr(seen)
    assert set(Path("/dev/shm").glob("intagent-run-*")) <= before, "the private data dir must be removed after the run"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert canary not in path.read_text(errors="ignore"), path


def test_check_mode_changes_nothing(tmp_path):
    target = tmp_path / "created-by-play"
    pb = _playbook(tmp_path, (
        "- hosts: here\n  gather_facts: false\n  tasks:\n"
        f"    - ansible.builtin.copy:\n        dest: {target}\n        content: hi\n"))
    result = Executor().run(pb, local_and_closed_inventory(tmp_path), limit="here", check=True, diff=True)
    assert result.hosts["here"].changed == 1
    assert not target.exists()
    Executor().run(pb, local_and_closed_inventory(tmp_path), limit="here")
    assert target.read_text() == "hi"


SCRATCH_PLAY = (
    "- hosts: here\n  gather_facts: false\n  tasks:\n"
    "    - name: intagent evidence\n      ansible.builtin.debug:\n"
    "        var: scratch_evidence\n      vars:\n"
    "        scratch_evidence: {local_tmp: \"{{ lookup('ansible.builtin.config', 'DEFAULT_LOCAL_TMP') }}\"}\n")


def _private_dir(tmp_path: Path, scratch: Scratch, **kwargs) -> Path:
    """The private dir that held Ansible's controller scratch during a run with ``scratch`` (gone after it)."""
    result = Executor(scratch=scratch).run(_playbook(tmp_path, SCRATCH_PLAY), local_and_closed_inventory(tmp_path),
                                           limit="here", **kwargs)
    local_tmp = Path(result.hosts["here"].evidence["local_tmp"])
    private = next(p for p in local_tmp.parents if p.name.startswith("intagent-run-"))
    assert not private.exists(), "removed after the run"
    return private


def test_ansible_scratch_lives_in_the_private_dir_in_memory(tmp_path):
    """Rendered templates and module payloads must not land in ~/.ansible/tmp on disk, nor in /tmp."""
    memory = tmp_path / "shm"  # stands in for /dev/shm
    memory.mkdir()
    assert _private_dir(tmp_path, Scratch(memory=memory), secrets={"license_key": "k"}).parent == memory
    if MEMORY_FS.is_dir():  # and the real one by default
        assert _private_dir(tmp_path, Scratch()).parent == MEMORY_FS


def test_without_dev_shm_secrets_go_only_to_the_accepted_folder(tmp_path):
    canary = "canary-" + os.urandom(8).hex()
    accepted, events = tmp_path / "accepted", tmp_path / "events.jsonl"
    accepted.mkdir()
    scratch = Scratch(secrets_dir=accepted, memory=tmp_path / "no-shm")
    private = _private_dir(tmp_path, scratch, secrets={"license_key": canary}, events_file=events)
    assert private.parent == accepted and not list(accepted.iterdir())  # used, then emptied
    assert canary not in events.read_text()
    # A run without any secret may use the system's temporary folder.
    assert _private_dir(tmp_path, Scratch(memory=tmp_path / "no-shm")).parent == Path(tempfile.gettempdir())


def test_without_dev_shm_or_an_accepted_folder_a_run_with_secrets_starts_nothing(tmp_path):
    events, before = tmp_path / "events.jsonl", set(Path(tempfile.gettempdir()).glob("intagent-run-*"))
    executor = Executor(scratch=Scratch(memory=tmp_path / "no-shm"))
    with pytest.raises(ConfigError, match="secrets_dir"):
        executor.run(_playbook(tmp_path, SCRATCH_PLAY), local_and_closed_inventory(tmp_path), limit="here",
                     secrets={"license_key": "k"}, events_file=events)
    assert not events.exists() and not executor.leftovers()  # no playbook started
    assert set(Path(tempfile.gettempdir()).glob("intagent-run-*")) <= before


RENDEZVOUS_PLAY = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Host one waits up to 3 s for host two, which runs after it when there is one fork
      ansible.builtin.shell: >-
        if [ {{ inventory_hostname }} = two ]; then touch {{ flag }}; exit 0; fi;
        for i in $(seq 30); do [ -e {{ flag }} ] && exit 0; sleep 0.1; done; exit 1
      changed_when: false
"""


@pytest.mark.parametrize("forks, met", [(1, False), (2, True)])
def test_forks_decide_how_many_hosts_run_a_task_at_once(tmp_path, forks, met):
    inv = tmp_path / "hosts.yml"
    inv.write_text(f"all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: "
                   f"'{{{{ ansible_playbook_python }}}}'\n    flag: {tmp_path / 'flag'}\n"
                   "  hosts:\n    one:\n    two:\n")
    play = tmp_path / "play.yml"
    play.write_text(RENDEZVOUS_PLAY)
    result = Executor(options=AnsibleOptions(forks=forks)).run(play, inv)
    assert result.hosts["two"].failed == 0
    assert (result.hosts["one"].failed == 0) is met, result.hosts["one"]


def test_a_later_play_is_kept_apart_as_the_stage_it_stands_for(tmp_path):
    """Apply and verify in one playbook: the second play's results, failures, evidence and event labels are
    verify's; the final stats, which count both plays, leave the first play's counts to apply."""
    inventory = tmp_path / "two.yml"
    inventory.write_text(
        "all:\n  hosts:\n" + "".join(
            f"    {name}:\n      ansible_connection: local\n"
            "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n" for name in ("here", "there"))
        + "    closed:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n      ansible_user: nobody\n")
    pb = _playbook(tmp_path, (
        "- name: Apply\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Change\n      ansible.builtin.command: 'true'\n      changed_when: true\n"
        "- name: Verify\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Probe\n      ansible.builtin.command: 'true'\n      changed_when: inventory_hostname == 'here'\n"
        "    - name: intagent evidence\n      ansible.builtin.debug:\n        var: probe_evidence\n"
        "      vars:\n        probe_evidence: {host: '{{ inventory_hostname }}'}\n"
        "    - name: Check it works\n      ansible.builtin.fail:\n        msg: not working\n"
        "      when: inventory_hostname == 'there'\n"))
    events, seen = tmp_path / "events.jsonl", []
    result = Executor(timeout=5).run(pb, inventory, events_file=events, stage="apply", later=("verify",),
                                     on_event=seen.append)
    assert result.completed and result.status == "failed"
    apply = result.hosts
    assert apply["here"].succeeded and apply["there"].succeeded  # there's failure was verify's
    assert (apply["here"].changed, apply["there"].changed) == (1, 1)  # verify's change on here is not apply's
    assert apply["here"].evidence is None and apply["closed"].unreachable
    verify = result.play("verify")
    assert verify is not None and result.play("uninstall") is None
    assert set(verify.hosts) == {"here", "there"}  # Ansible left the unreachable host out of the second play
    assert verify.hosts["here"].succeeded and verify.hosts["here"].changed == 1
    assert verify.hosts["here"].evidence == {"host": "here"}
    assert not verify.hosts["there"].succeeded and verify.hosts["there"].failures == ["Check it works: not working"]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    labels = {(line["event_data"].get("task"), line["stage"]) for line in lines
              if line["event"].startswith("runner_on_")}
    assert labels == {("Change", "apply"), ("Probe", "verify"), ("intagent evidence", "verify"),
                      ("Check it works", "verify")}
    assert [e["stage"] for e in seen if e["event"] == "playbook_on_stats"] == ["apply"]


@pytest.mark.parametrize("strategy, mitogen", [(None, True), ("free", True), (None, False), ("free", False)],
                         ids=["intagent_mitogen_linear", "intagent_mitogen_free", "intagent_linear", "intagent_free"])
def test_a_dry_run_play_and_the_plays_that_apply_share_one_playbook(tmp_path, monkeypatch, strategy, mitogen):
    """Under each of intagent's strategies, a play with ``check_mode: true`` changes nothing and its templates
    see ``ansible_check_mode`` true, so a task guarded by it is skipped (listed as unpredictable) rather than
    predicted in check mode; the next play applies with both modes off. Ansible's own strategy would give the
    first play ``ansible_check_mode`` false."""
    if strategy:
        monkeypatch.setenv("ANSIBLE_STRATEGY", strategy)
    else:
        monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    target = tmp_path / "target"
    tasks = (
        "  tasks:\n"
        f"    - name: Write\n      ansible.builtin.copy:\n        content: \"x\\n\"\n        dest: {target}\n"
        f"    - name: Only when applying\n      ansible.builtin.file:\n        path: {target}.applied\n"
        "        state: touch\n      when: not ansible_check_mode\n"
        "    - name: Modes\n      ansible.builtin.debug:\n"
        "        msg: 'check={{ ansible_check_mode }} diff={{ ansible_diff_mode }}'\n")
    pb = _playbook(tmp_path, "- name: Dry run\n  hosts: here\n  gather_facts: false\n  check_mode: true\n"
                             "  diff: true\n" + tasks + "- name: Apply\n  hosts: here\n  gather_facts: false\n" + tasks)
    inventory = tmp_path / "here.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    events = tmp_path / "events.jsonl"
    executor = Executor(timeout=5, mitogen=mitogen)
    assert executor.play_modes
    result = executor.run(pb, inventory, events_file=events, stage="plan", later=("apply",))
    assert result.completed and result.status == "successful"
    plan, applied = result.hosts["here"], result.play("apply")
    assert [c["task"] for c in plan.changes] == ["Write"] and plan.changes[0]["diff"]  # diff mode: its diff
    assert plan.unpredictable == ["Only when applying: skipped in check mode (its condition reads "
                                  "ansible_check_mode)"]
    assert applied is not None and [c["task"] for c in applied.hosts["here"].changes] == ["Write", "Only when applying"]
    assert target.read_text() == "x\n" and (tmp_path / "target.applied").exists()
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    modes = [(line["stage"], line["event_data"]["res"]["msg"]) for line in lines
             if line["event_data"].get("task") == "Modes" and line["event"] == "runner_on_ok"]
    assert modes == [("plan", "check=True diff=True"), ("apply", "check=False diff=False")]


def test_a_verify_plays_evidence_is_the_fact_its_set_fact_reports(tmp_path):
    """role.yml.j2 prints no evidence of its own: the ``<role>_evidence`` fact a verify entry point sets (before
    its assert, which may fail) is the host's evidence."""
    pb = _playbook(tmp_path, (
        "- hosts: here\n  gather_facts: false\n  tasks:\n"
        "    - name: Other facts are not evidence\n      ansible.builtin.set_fact:\n        probe_port: 9\n"
        "    - name: Record the evidence\n      ansible.builtin.set_fact:\n"
        "        probe_evidence: {active: false, port: '{{ probe_port }}'}\n"
        "    - name: Check it works\n      ansible.builtin.assert:\n        that: probe_evidence.active\n"))
    inventory = tmp_path / "here.yml"
    inventory.write_text("all:\n  hosts:\n    here:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: '{{ ansible_playbook_python }}'\n")
    result = Executor(timeout=5).run(pb, inventory)
    host = result.hosts["here"]
    assert not host.succeeded and host.evidence == {"active": False, "port": 9}


def test_a_playbook_ansible_refuses_is_named_with_its_error_not_as_an_interrupted_run(tmp_path):
    from integration_agent.executor import REFUSED, settle
    from integration_agent.recovery import classify
    from integration_agent.status import HostStatus

    pb = _playbook(tmp_path, "- name: intagent x: broken\n  hosts: all\n  tasks: []\n")
    result = Executor(timeout=5).run(pb, local_and_closed_inventory(tmp_path))
    assert not result.completed and result.hosts == {}
    assert result.refused is not None and "YAML parsing failed" in result.refused
    assert f"(at {pb}:1:" in result.refused, result.refused
    settled = settle(None, result, "plan")
    assert settled.status == HostStatus.FAILED and not settled.succeeded
    assert settled.failures[0].startswith(f"plan: {REFUSED}: YAML parsing failed"), settled.failures
    assert classify("plan", settled.failures[0].partition(": ")[2]).id == "playbook_refused"

    missing_role = _playbook(tmp_path, "- hosts: all\n  gather_facts: false\n  roles:\n    - no_such_role\n")
    assert "the role 'no_such_role' was not found" in (Executor(timeout=5).run(
        missing_role, local_and_closed_inventory(tmp_path)).refused or "")


def test_a_run_that_fails_after_its_first_play_started_is_not_a_refusal(tmp_path):
    pb = _playbook(tmp_path, "- hosts: here\n  gather_facts: false\n  tasks:\n"
                             "    - ansible.builtin.debug:\n        msg: '{{ undefined_variable }}'\n")
    result = Executor(timeout=5).run(pb, local_and_closed_inventory(tmp_path), limit="here")
    assert result.completed and result.refused is None and result.hosts["here"].failed == 1
