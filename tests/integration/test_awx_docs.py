"""docs/awx/configure.yml, the AWX configuration example, is checked against the real awx.awx modules.

Every task runs with its real arguments against a closed loopback port: the awx.awx module validates its
arguments first and only then tries to reach the controller, so "connection refused" proves the
arguments are valid and an argument error proves the example wrong. A negative control makes sure an
invalid argument is caught.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent
ANSIBLE_WHEEL = "ansible==12.3.0"  # the community package that ships awx.awx 24.6.1
EXAMPLE = REPO / "docs" / "awx" / "configure.yml"
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def awx_collection(tmp_path_factory) -> Path:
    """awx.awx taken from the ansible wheel on PyPI (Galaxy is not reachable), cached between runs."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "intagent" / "awx.awx-24.6.1"
    if not (cache / "ansible_collections" / "awx" / "awx" / "MANIFEST.json").is_file():
        download = tmp_path_factory.mktemp("wheel")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", ANSIBLE_WHEEL, "-d", str(download)],
                       check=True, timeout=600)
        with zipfile.ZipFile(next(download.glob("ansible-*.whl"))) as wheel:
            members = [n for n in wheel.namelist() if n.startswith("ansible_collections/awx/awx/")]
            wheel.extractall(cache, members=members)
    return cache


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return "{% raw %}" + loader.construct_scalar(node) + "{% endraw %}"


def _load_example(text: str) -> list[dict]:
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!unsafe", _unsafe)
    return yaml.load(text, Loader=loader)  # a SafeLoader subclass


def _run_against_closed_port(example_text: str, collections: Path, tmp_path: Path) -> list[dict]:
    """Run every task of the example, each allowed to fail, and return each task's result."""
    play = _load_example(example_text)[0]
    for index, task in enumerate(play["tasks"]):
        task["ignore_errors"] = True
        task["register"] = f"result_{index}"
    count = len(play["tasks"])
    play["module_defaults"] = {"group/awx.awx.controller": {"controller_host": CLOSED_PORT,
                                                            "controller_oauthtoken": "token-for-a-closed-port"}}
    play["vars"].update(intagent_git_url="https://git.example.org/intagent.git", intagent_ee_image="intagent-ee:1",
                        intagent_inventory="fleet", new_relic_license_key="license-for-a-closed-port")
    out = tmp_path / "results.json"
    play["tasks"].append({"name": "Save the results", "ansible.builtin.copy": {
        "content": "{{ [" + ", ".join(f"result_{i}" for i in range(count)) + "] | to_json }}", "dest": str(out)}})
    playbook = tmp_path / "example.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return json.loads(out.read_text())


def _messages(result: dict) -> list[str]:
    return [r.get("msg", "") for r in result["results"]] if "results" in result else [result.get("msg", "")]


def test_every_task_of_the_awx_example_has_valid_arguments(awx_collection, tmp_path):
    results = _run_against_closed_port(EXAMPLE.read_text(), awx_collection, tmp_path)
    tasks = _load_example(EXAMPLE.read_text())[0]["tasks"]
    assert len(results) == len(tasks) == 6
    assert next(t for t in tasks if "awx.awx.credential" in t).get("no_log") is True
    for task, result in zip(tasks, results, strict=False):
        for message in _messages(result):
            assert "Connection refused" in message and "127.0.0.1:9" in message, (task["name"], message)


def test_an_invalid_argument_in_the_example_would_be_caught(awx_collection, tmp_path):
    broken = EXAMPLE.read_text().replace("        scm_branch: main\n",
                                         "        scm_branch: main\n        scm_brnch: main\n")
    assert broken != EXAMPLE.read_text()
    results = _run_against_closed_port(broken, awx_collection, tmp_path)
    assert "Unsupported parameters" in _messages(results[1])[0] and "scm_brnch" in _messages(results[1])[0]


def test_the_example_uses_the_entry_playbooks_and_their_artifacts():
    play = _load_example(EXAMPLE.read_text())[0]
    templates = next(t for t in play["tasks"] if "awx.awx.job_template" in t)
    actions = play["vars"]["intagent_actions"]
    assert all((REPO / "playbooks" / f"{action}.yml").is_file() for action in actions)
    assert templates["awx.awx.job_template"]["playbook"] == "playbooks/{{ item }}.yml"
    workflow = next(t for t in play["tasks"] if "awx.awx.workflow_job_template" in t)["awx.awx.workflow_job_template"]
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    assert nodes["install"]["related"]["failure_nodes"] == [{"identifier": "rollback"}]
    assert nodes["rollback"]["unified_job_template"]["name"] == "intagent uninstall"
    # The rollback node reads what the install job publishes.
    entry = (REPO / "playbooks" / "tasks" / "entry_point.yml").read_text()
    assert "intagent_failed_hosts" in entry
    assert "intagent_failed_hosts" in (REPO / "playbooks" / "uninstall.yml").read_text()
    docs = (REPO / "docs" / "awx.md").read_text()
    for key in ("intagent_outcome", "intagent_evidence", "intagent_failures", "intagent_failed_hosts"):
        assert key in entry and key in docs, key
