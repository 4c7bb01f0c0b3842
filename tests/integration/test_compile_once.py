"""In a real ansible-playbook run with intagent's strategies, the workers Ansible forks per host and task
compile no template: the strategy's own process compiled each one before the first fork (and ran the
controller-side tasks itself). A probe strategy
records every Jinja compilation and the process it ran in; with Ansible's own strategy the workers compile."""

from __future__ import annotations

import pytest

from tests.fixtures.probe_playbook import run_probed

PROBE = '''
import os
import sys

from ansible._internal._templating import _jinja_bits
from ansible.plugins.loader import strategy_loader

StrategyModule = strategy_loader.get(os.environ["PROBE_BASE"], class_only=True)
_compile = _jinja_bits.AnsibleEnvironment._compile  # Jinja's last step, reached only by a compilation not cached


def _recorded(self, source, filename):
    with open(os.environ["PROBE_FILE"], "a") as out:
        out.write(f"{os.getpid()}\\n")
    return _compile(self, source, filename)


_jinja_bits.AnsibleEnvironment._compile = _recorded
with open(os.environ["PROBE_FILE"], "a") as out:
    out.write(f"strategy {os.getpid()}\\n")
'''

PLAY = '''
- name: Templates, conditions and variables on two hosts
  hosts: all
  gather_facts: false
  vars:
    base: 3
  tasks:
    - name: Record {{ base }}
      ansible.builtin.set_fact:
        evidence:
          doubled: "{{ base * 2 + offset }}"
          text: "{% for i in range(base) %}{{ i }}{% endfor %}"
      vars:
        offset: "{{ 1 if inventory_hostname == 'h2' else 0 }}"
    - name: Check the evidence
      ansible.builtin.assert:
        that:
          - evidence.doubled | int in [6, 7]
          - evidence.text == '012'
        fail_msg: "wrong: {{ evidence }}"
    - name: Print it where a condition holds
      ansible.builtin.debug:
        msg: "evidence of {{ inventory_hostname }}: {{ evidence.doubled }}"
      when: evidence.doubled | int > 6
    - name: Look on the host for {{ base }} (a module, so a worker even with intagent's strategies)
      ansible.builtin.stat:
        path: "/nonexistent/{{ evidence.text }}-{{ inventory_hostname }}"
      register: looked
      changed_when: looked.stat.exists or base > 100
      failed_when: looked.stat.exists
      when: evidence.doubled | int > 5
'''


@pytest.mark.parametrize("base, workers_compile", [
    ("intagent_linear", False), ("intagent_free", False), ("intagent_mitogen_linear", False),
    ("intagent_mitogen_free", False), ("linear", True)])
def test_workers_compile_no_template_the_strategy_compiled_first(tmp_path, base, workers_compile):
    run, records = run_probed(tmp_path, base, PROBE, {"play.yml": PLAY})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # The templates rendered with each host's own values.
    assert '"msg": "evidence of h2: 7"' in run.stdout and "evidence of h1" not in run.stdout
    assert "skipping: [h1]" in run.stdout
    lines = records.read_text().split()
    strategy = lines[lines.index("strategy") + 1]
    compiled_in = [pid for pid in lines if pid not in ("strategy", strategy)]
    assert lines.count(strategy) > 1  # the strategy's process compiled the templates
    assert bool(compiled_in) == workers_compile, f"workers compiled {len(compiled_in)} templates"
