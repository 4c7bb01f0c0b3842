"""Failure classification and learning: real messages from lab runs, notes written once per cause."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from integration_agent.catalog import Catalog
from integration_agent.improvement import known_failures, learn, normalise
from integration_agent.knowledge import KnowledgeBase, load_document
from integration_agent.recovery import BY_ID, CLASSES, classify, classify_host, retry_delays, split_failure

REPO = Path(__file__).resolve().parents[2]

SERVICE = ("apply: Enable and start node_exporter: Unable to start service prometheus-node-exporter: Job for "
           "prometheus-node-exporter.service failed because the control process exited with error code.")
REPO_DOWN = ("apply: Install the Debian package: Failed to update apt cache: W:Failed to fetch "
             "http://10.231.0.1:8080/./InRelease  Could not connect to 10.231.0.1:8080 (10.231.0.1). - connect "
             "(111: Connection refused)")
LOCK = ("apply: Install the Debian package: E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by "
        "process 1234 (apt-get)")
CHECKSUM = ("apply: Download the release tarball (checksum verified): The checksum for "
            "/var/lib/node_exporter/x.tar.gz did not match 000...; it was abc...")
VERIFY = "verify: Check node_exporter works: node_exporter does not work: ..."
SSH = ("plan: Gathering Facts: Failed to connect to the host via ssh: ssh: connect to host 10.231.0.13 port 2: "
       "Connection refused")
CANARY = "NRCANARY0123456789abcdefNRAL"


def classify_line(failure: str, **kwargs: bool):
    stage, rest = failure.split(": ", 1)
    return classify(stage, rest, **kwargs)


# -- classification ------------------------------------------------------------------------------------

@pytest.mark.parametrize("failure, class_id, strategy, transient", [
    (SERVICE, "service_failed_to_start", "rollback", False),
    (REPO_DOWN, "repository_unreachable", "stop", False),
    (LOCK, "package_manager_lock", "retry", True),
    (CHECKSUM, "checksum_mismatch", "rollback", False),
    (VERIFY, "verification_failed", "rollback", False),
    ("apply: Configure: license key rejected by the collector (403)", "license_rejected", "rollback", False),
    ("apply: Start: listen tcp :9100: bind: address already in use", "port_in_use", "rollback", False),
    ("generate: Build: no valid plan for collectd after 3 attempt(s); last findings: IA101", "generation_gave_up",
     "stop", False),
    ("apply: Copy the unit: Destination directory /etc/x does not exist", "unknown", "rollback", False),
])
def test_real_lab_messages_are_classified(failure: str, class_id: str, strategy: str, transient: bool):
    cls = classify_line(failure)
    assert (cls.id, cls.strategy, cls.transient) == (class_id, strategy, transient)


def test_unreachable_host_is_marked_unknown_never_rolled_back():
    cls = classify_line(SSH, unreachable=True)
    assert cls.id == "unreachable" and cls.strategy == "unknown"
    # "Connection refused" without a repository URL is not a repository problem.
    assert classify_line(SSH.replace("Failed to connect to the host via ssh: ", "")).id == "unknown"


def test_a_refused_endpoint_in_verify_is_not_a_repository_problem():
    failure = ("verify: Check the endpoint: Status code was -1 and not [200]: Request failed: <urlopen error "
               "[Errno 111] Connection refused> http://localhost:9100/metrics")
    assert classify_line(failure).id == "verification_failed"


def test_classes_are_data_and_every_strategy_is_known():
    assert CLASSES[0].id == "unreachable" and CLASSES[-1].id == "unknown"
    assert {c.strategy for c in CLASSES} <= {"retry", "rollback", "unknown", "stop"}
    assert [c.id for c in CLASSES if c.transient] == ["package_manager_lock"]


def test_classify_host_uses_status_and_first_failure():
    host = SimpleNamespace
    assert classify_host(host(status="installed", failures=[])) is None
    assert classify_host(host(status="unchanged", failures=["not applied: the plan was not confirmed"])) is None
    assert classify_host(host(status="unreachable", failures=[SSH])).id == "unreachable"
    assert classify_host(host(status="unknown", failures=[])).id == "interrupted"
    rolled_back = host(status="rolled_back", failures=[SERVICE, "recover: Remove it: failed"])
    assert classify_host(rolled_back).id == "service_failed_to_start"
    assert classify_host({"status": "failed", "failures": [LOCK]}).id == "package_manager_lock"  # report.json form


def test_split_failure():
    assert split_failure(LOCK)[:2] == ("apply", "Install the Debian package")
    assert split_failure("apply: no result for this host (run interrupted)") == \
        ("apply", "", "no result for this host (run interrupted)")


def test_retry_delays_back_off_only_for_transient_classes():
    assert retry_delays(BY_ID["package_manager_lock"]) == [2.0, 4.0, 8.0]
    assert retry_delays(BY_ID["package_manager_lock"], attempts=2, base=5) == [5.0, 10.0]
    assert retry_delays(BY_ID["repository_unreachable"]) == []
    assert retry_delays(BY_ID["unknown"], attempts=5) == []
    with pytest.raises(ValueError):
        retry_delays(BY_ID["package_manager_lock"], attempts=-1)


def test_normalise_drops_what_differs_between_hosts_and_runs():
    a = normalise("connect to 10.231.0.11:8080 from lab-deb-1 in /tmp/ansible-abc/x run 20261125T101010-a1b2c3",
                  ["lab-deb-1"])
    b = normalise("connect to 10.231.0.12:8081 from lab-deb-2 in /tmp/ansible-xyz/y run 20261126T111111-d4e5f6",
                  ["lab-deb-2"])
    assert a == b and "lab-deb" not in a and "10.231" not in a


# -- learning --------------------------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    folder = root / "knowledge" / "alpha"
    folder.mkdir(parents=True)
    manifest = (REPO / "knowledge" / "node_exporter" / "integration.yml").read_text()
    (folder / "integration.yml").write_text(manifest.replace("name: node_exporter", "name: alpha", 1))
    return root




def run_report(run_id: str, **hosts: tuple[str, list[str]]) -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, integration="alpha", action="install", status="failed",
                           hosts={name: SimpleNamespace(host=name, status=status, failures=failures)
                                  for name, (status, failures) in hosts.items()})


def lab_service_failure(host: str, ip: str) -> str:
    return SERVICE.replace("error code.", f"error code. See journal on {host} ({ip}), pid 4242.")


def test_learn_writes_one_note_per_cause_and_dedupes_across_hosts_and_runs(root: Path, tmp_path: Path,
                                                                           kb: KnowledgeBase):
    first = run_report("20261125T101010-a1b2c3",
                       **{"lab-deb-1": ("rolled_back", [lab_service_failure("lab-deb-1", "10.231.0.11")]),
                          "lab-deb-2": ("rolled_back", [lab_service_failure("lab-deb-2", "10.231.0.12")]),
                          "lab-deb-3": ("failed", [REPO_DOWN]),
                          "lab-deb-4": ("unreachable", [SSH]),
                          "lab-deb-5": ("unknown", ["interrupted: the run was stopped before this host finished"]),
                          "lab-deb-6": ("installed", [])})
    written = learn(first, kb)
    assert len(written) == 2, written  # service + repository; the second service host is the same cause
    learned = tmp_path / "data" / "learned" / "alpha"
    assert all(p.parent == learned for p in written)
    assert not list((root / "knowledge").rglob("learned"))  # nothing written next to the curated documents
    service = load_document(written[0], "alpha", f"learned/{written[0].stem}")
    assert service.source == "intagent://runs/20261125T101010-a1b2c3" and service.applies_to == "debian-12"
    assert "class: service_failed_to_start" in service.body and "digest: " in service.body
    assert "lab-deb-1" not in service.body and "10.231.0.11" not in service.body
    hit = kb.search("prometheus-node-exporter control process exited", integration="alpha")[0]
    assert hit.id.startswith(f"alpha/learned/{written[0].stem}#")

    again = run_report("20261126T080000-d4e5f6",
                       **{"web-7": ("rolled_back", [lab_service_failure("web-7", "192.168.5.7")]),
                          "web-8": ("failed", [REPO_DOWN.replace("10.231.0.1", "192.168.5.1")])})
    assert learn(again, kb) == []
    assert learn(again, kb, platform="ubuntu-24.04") != []  # another platform is another cause
    assert len(list(learned.glob("*.md"))) == 4


def test_learn_skips_unknown_failures_without_a_message(kb: KnowledgeBase):
    report = run_report("r1", h1=("failed", ["apply: no result for this host (run skipped it)"]),
                        h2=("failed", []))
    assert learn(report, kb) == []


def test_learn_accepts_the_json_form_of_a_report(kb: KnowledgeBase):
    report = {"run_id": "r2", "integration": "alpha", "action": "install",
              "hosts": {"h1": {"status": "failed", "failures": [LOCK]}}}
    assert len(learn(json.loads(json.dumps(report)), kb)) == 1


def test_no_secret_reaches_a_note(root: Path, tmp_path: Path, kb: KnowledgeBase):
    failure = (f"apply: Write the agent config: license key rejected (401): license_key={CANARY} "
               f"--api-token {CANARY} https://user:{CANARY}@repo.example/apt password: '{CANARY}'")
    report = run_report("r3", h1=("rolled_back", [failure]))
    [path] = learn(report, kb)
    assert "class: license_rejected" in path.read_text()
    for note in [*(root / "knowledge").rglob("*.md"), *(tmp_path / "data").rglob("*.md")]:
        assert CANARY not in note.read_text()
    assert all(CANARY not in p.text for p in kb.passages("alpha"))


def test_known_failures_lists_learned_notes(kb: KnowledgeBase):
    assert known_failures("alpha", kb) == []
    learn(run_report("r4", h1=("failed", [CHECKSUM])), kb)
    kb.add_note("alpha", "Hand-written tip", "Port 9100 is often taken by an older exporter.", "intagent://runs/r0")
    notes = known_failures("alpha", kb)
    assert [n["class"] for n in notes] == ["checksum_mismatch", None]
    assert notes[0]["source"] == "intagent://runs/r4" and notes[0]["strategy"] == "rollback"
    assert notes[0]["title"].startswith("Checksum mismatch on debian-12")


# -- intagent show ---------------------------------------------------------------------------------------

def test_show_lists_known_failures_and_survives_a_broken_index(root: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from integration_agent.cli import app

    monkeypatch.setenv("INTAGENT_INTEGRATIONS_PATH", str(root))  # the setting: show finds alpha there
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("INTAGENT_LEARNED_DIR", str(tmp_path / "notes"))  # the setting: show reads notes there
    with KnowledgeBase(tmp_path / "cache" / "intagent" / "knowledge.sqlite", Catalog([(root, "test")]),
                       learned_dir=tmp_path / "notes") as kb:
        [note] = learn(run_report("r5", h1=("failed", [REPO_DOWN])), kb)
    assert note.parent == tmp_path / "notes" / "alpha"
    runner = CliRunner()
    shown = runner.invoke(app, ["show", "alpha"])
    assert shown.exit_code == 0, shown.output
    assert "known failures:" in shown.output and "repository_unreachable" in shown.output
    as_json = json.loads(runner.invoke(app, ["show", "alpha", "--json"]).output)
    assert [n["class"] for n in as_json["known_failures"]] == ["repository_unreachable"]
    assert as_json["known_failures"][0]["path"] == str(note)
    monkeypatch.setenv("INTAGENT_LEARNED_DIR", str(tmp_path / "elsewhere"))  # another folder: no notes there
    assert json.loads(runner.invoke(app, ["show", "alpha", "--json"]).output)["known_failures"] == []
    monkeypatch.setenv("INTAGENT_LEARNED_DIR", str(tmp_path / "notes"))

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the index cannot be created under a file
    shown = runner.invoke(app, ["show", "alpha"])
    assert shown.exit_code == 0 and "known failures" not in shown.output and "alpha" in shown.output


def test_runs_learn_into_the_learned_dir_setting(root: Path, tmp_path: Path, isolated_env,
                                                 monkeypatch: pytest.MonkeyPatch):
    from integration_agent.api import _learner
    from integration_agent.settings import load_settings

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = load_settings(cwd=tmp_path, env={"INTAGENT_INTEGRATIONS_PATH": str(root), "INTAGENT_LEARN": "true"})
    learner = _learner(settings)
    assert learner is not None
    [note] = learner(run_report("r6", h1=("failed", [CHECKSUM])))
    assert note.parent == tmp_path / "data" / "intagent" / "learned" / "alpha"  # $XDG_DATA_HOME (isolated_env)
    assert not list((root / "knowledge").rglob("learned"))
