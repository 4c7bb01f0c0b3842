"""In a real ansible-playbook run, intagent's strategies run controller-side tasks and tasks skipped by their
``when`` in the strategy's own process, forking a worker only for what reaches a host, and the run says
exactly what it says with Ansible's own ``linear``: every host's result, message, registered value, rescue,
failure and recap. A probe strategy records each worker forked and for which host and task."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.probe_playbook import run_probed

PROBE = '''
import os

from ansible.executor.process.worker import WorkerProcess
from ansible.plugins.loader import strategy_loader

StrategyModule = strategy_loader.get(os.environ["PROBE_BASE"], class_only=True)
_start = WorkerProcess.start


def _recorded(self):
    with open(os.environ["PROBE_FILE"], "a") as out:
        out.write(f"{self._host.name}|{self._task.get_name()}\\n")
    return _start(self)


WorkerProcess.start = _recorded
'''

PLAY = '''
- name: Tasks that stay on the controller, and tasks that reach the hosts
  hosts: all
  gather_facts: false
  vars:
    base: 3
  tasks:
    - name: Record a fact
      ansible.builtin.set_fact:
        evidence: "{{ base * 2 + (1 if inventory_hostname == 'h2' else 0) }}"
    - name: Record a secret
      ansible.builtin.set_fact:
        secret: hunter2
      no_log: true
    - name: Check it
      ansible.builtin.assert:
        that: evidence | int in [6, 7]
    - name: Skipped on every host
      ansible.builtin.fail:
        msg: never
      when: evidence | int > 100
    - name: Include a file
      ansible.builtin.include_tasks: included.yml
    - name: Reach h2 only
      ansible.builtin.command: echo reached {{ inventory_hostname }}
      register: reached
      changed_when: false
      when: evidence | int == 7
    - name: Show what each host registered
      ansible.builtin.debug:
        msg: >-
          {{ inventory_hostname }}: skipped={{ reached.skipped | default(false) }}
          out={{ reached.stdout | default('-') }}
    - name: Reach every host
      ansible.builtin.command: echo {{ evidence }}
      register: echoed
      changed_when: false
      when: evidence | int > 0
    - name: Loop with a condition per item
      ansible.builtin.debug:
        msg: "item {{ item }}"
      loop: [1, 2, 3]
      when: item != 2
    - name: A condition that calls a lookup
      ansible.builtin.debug:
        msg: never
      when: lookup('env', 'PROBE_BASE') == 'nothing'
    - name: Fail on h1, caught
      block:
        - name: Fail on h1
          ansible.builtin.assert:
            that: inventory_hostname != 'h1'
            fail_msg: "h1 fails"
      rescue:
        - name: Rescued
          ansible.builtin.debug:
            msg: "rescued {{ ansible_failed_result.msg }}"
    - name: Fail on h2 for good
      ansible.builtin.fail:
        msg: "h2 stops here"
      when: inventory_hostname == 'h2'
    - name: Only h1 gets here
      ansible.builtin.debug:
        var: echoed.stdout
'''

INCLUDED = '''
- name: Inside the include
  ansible.builtin.debug:
    msg: "included on {{ inventory_hostname }} with {{ evidence }}"
'''

# What needs a worker with intagent's strategies: a connection with a true condition, a loop, a lookup.
FORKED = Counter({"h2|Reach h2 only": 1, "h1|Reach every host": 1, "h2|Reach every host": 1,
                  "h1|Loop with a condition per item": 1, "h2|Loop with a condition per item": 1,
                  "h1|A condition that calls a lookup": 1, "h2|A condition that calls a lookup": 1})
RESULT = re.compile(r"^(ok|changed|skipping|fatal|included|failed|rescued|\[ERROR\]):", re.M)


def run(tmp_path: Path, base: str) -> tuple[str, Counter[str]]:
    folder = tmp_path / base
    folder.mkdir()
    done, records = run_probed(folder, base, PROBE, {"play.yml": PLAY, "included.yml": INCLUDED}, "-v")
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]  # h2 failed for good
    # What differs from run to run: the folder, and the command's times.
    stdout = re.sub(r'"(start|end|delta)": "[^"]*"', r'"\1": ""', done.stdout.replace(str(folder), "<play>"))
    return stdout, Counter(records.read_text().splitlines())


def per_host(entry: str) -> list[str]:
    """An include's entry names the hosts whose results arrived together (which varies): one per host."""
    include = re.fullmatch(r"included: (\S+) for (.+)", entry)
    return [f"included: {include[1]} for {h}" for h in include[2].split(", ")] if include else [entry]


def normalized(stdout: str) -> list[tuple[str, list[str]]]:
    """Each task's heading and its hosts' results, in host order (workers finish in any order)."""
    tasks = []
    for block in re.split(r"^(?=TASK \[|PLAY RECAP)", stdout, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        starts = [m.start() for m in RESULT.finditer(body)]
        entries = [body[a:b].strip() for a, b in zip(starts, [*starts[1:], len(body)][:len(starts)], strict=True)]
        results = sorted(one for entry in entries for one in per_host(entry))
        tasks.append((heading.split("*")[0].strip(), results or [body.strip()]))
    return tasks


def results(stdout: str) -> Counter[str]:
    """Every host's result and the recap, in any order (the free strategy reports each host as it goes)."""
    return Counter(r for _, found in normalized(stdout) for r in found if r)


@pytest.fixture(scope="module")
def ansible(tmp_path_factory) -> dict[str, tuple[str, Counter[str]]]:
    """The same run with Ansible's own strategies."""
    return {base: run(tmp_path_factory.mktemp(base), base) for base in ("linear", "free")}


@pytest.mark.parametrize("base", ["intagent_linear", "intagent_free", "intagent_mitogen_linear",
                                  "intagent_mitogen_free"])
def test_only_what_reaches_a_host_forks_and_the_run_says_what_ansible_says(tmp_path, ansible, base):
    stdout, forked = run(tmp_path, base)
    assert forked == FORKED
    if base.endswith("linear"):
        assert normalized(stdout) == normalized(ansible["linear"][0])
    else:  # the free strategy reports each host as it goes: the same results and recap, in another order
        assert results(stdout) == results(ansible["free"][0])
    assert "hunter2" not in stdout
    assert "the output has been hidden due to the fact that 'no_log: true'" in stdout
    assert '"msg": "rescued h1 fails"' in stdout and '"echoed.stdout": "6"' in stdout
    assert "h2: skipped=False out=reached h2" in stdout and "h1: skipped=True out=-" in stdout


@pytest.mark.parametrize("base", ["linear", "free"])
def test_ansible_forks_a_worker_per_host_and_task(ansible, base):
    """The probe sees every worker: with Ansible's own strategies, every task of every host is one."""
    forked = ansible[base][1]
    assert forked["h1|Record a fact"] == 1 and forked["h2|Skipped on every host"] == 1
    assert sum(forked.values()) > sum(FORKED.values()) + 20
