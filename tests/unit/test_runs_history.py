"""Run history: filtered listing, the timeline in ``runs show``, and the redacted bug-report bundle."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from integration_agent.journal import (
    HostOutcome,
    Journal,
    Note,
    RunFinished,
    RunInterrupted,
    RunRequested,
    StepFinished,
    StepStarted,
)
from integration_agent.runs import RunDir, export, list_runs, run_status
from integration_agent.secrets import MASK, mask_secret_keys

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-7b1e55-license-value"
OTHER_CANARY = "hunter2-db-password-canary"


def _fake_run(runs_dir: Path, run_id: str, *, integration="infra_agent", targets=("h1", "h2"), status="ok",
              journal=True, report=True) -> RunDir:
    run = RunDir.create(runs_dir, run_id)
    run.write_json("request.json", {"action": "install", "integration": integration, "targets": list(targets),
                                    "parameters": {"license_key": CANARY, "region": "eu",
                                                   "db": {"Password": OTHER_CANARY}},
                                    "created": "2024-01-01T00:00:00+00:00"})
    run.playbook("main.yml", f"- hosts: all\n  roles: [{integration}]\n  # {CANARY}\n")
    if report:
        run.write_json("report.json", {
            "run_id": run.id, "integration": integration, "action": "install", "status": status,
            "exit_code": 0 if status == "ok" else 10,
            "hosts": {h: {"status": "installed", "failures": [f"apply: license {CANARY} rejected"],
                          "evidence": {"version": "1.0"}} for h in targets}})
    with run.events_file.open("w") as handle:
        handle.write(json.dumps({"event": "runner_on_ok", "stage": "apply",
                                 "res": {"cmd": f"install --key {CANARY}", "api_token": "tok-abcdef-123"}}) + "\n")
        handle.write('{"event": "runner_on_failed", "password": "' + OTHER_CANARY + '", "torn...\n')
    if journal:
        j = run.journal
        j.append(RunRequested("install", integration, tuple(targets), {"license_key": MASK}))
        j.append(StepStarted("plan", tuple(targets)))
        j.append(StepFinished("plan", {h: HostOutcome("planned", 1) for h in targets}))
        if report:
            j.append(RunFinished(status, 0))
        else:
            j.append(StepStarted("apply", tuple(targets)))
            j.append(RunInterrupted("apply", tuple(targets)))
    return run


def test_list_filters(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "20240101T000001-aaaaaa", integration="infra_agent", targets=("h1", "h2"), status="ok")
    _fake_run(runs, "20240101T000002-bbbbbb", integration="collectd", targets=("h2", "h3"), status="partial")
    _fake_run(runs, "20240101T000003-cccccc", integration="collectd", targets=("h3",), report=False)
    _fake_run(runs, "20240101T000004-dddddd", integration="infra_agent", targets=("h1",), report=False,
              journal=False)
    ids = lambda found: [r.id[-6:] for r in found]  # noqa: E731
    assert ids(list_runs(runs)) == ["dddddd", "cccccc", "bbbbbb", "aaaaaa"]
    assert ids(list_runs(runs, integration="collectd")) == ["cccccc", "bbbbbb"]
    assert ids(list_runs(runs, host="h1")) == ["dddddd", "aaaaaa"]
    assert ids(list_runs(runs, host="h3", integration="collectd")) == ["cccccc", "bbbbbb"]
    assert ids(list_runs(runs, status="partial")) == ["bbbbbb"]
    assert ids(list_runs(runs, status="interrupted")) == ["cccccc"]
    assert ids(list_runs(runs, status="incomplete")) == ["dddddd"]
    assert list_runs(runs, host="nowhere") == [] and list_runs(tmp_path / "absent") == []
    assert run_status(RunDir(runs / "20240101T000001-aaaaaa")) == "ok"


def test_mask_secret_keys():
    data = {"license_key": "x" * 10, "API_TOKEN": 12345, "secrets": {"a": "b", "n": [1, "c"]}, "has_password": True,
            "region": "eu", "nested": [{"db_password": "pw"}]}
    assert mask_secret_keys(data) == {"license_key": MASK, "API_TOKEN": MASK, "secrets": {"a": MASK, "n": [MASK, MASK]},
                                      "has_password": True, "region": "eu", "nested": [{"db_password": MASK}]}


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_export_has_no_canary_and_a_manifest(tmp_path):
    run = _fake_run(tmp_path / "runs", "20240101T000001-aaaaaa")
    bundle = export(run, tmp_path / "out.tar.gz", secrets=[CANARY])
    assert bundle == tmp_path / "out.tar.gz"
    raw = _members(bundle)
    prefix = "intagent-run-20240101T000001-aaaaaa/"
    assert sorted(raw) == sorted(prefix + n for n in ("MANIFEST.txt", "request.json", "report.json", "journal.jsonl",
                                                       "events.jsonl", "playbooks/main.yml"))
    everything = b"".join(raw.values())
    for secret in (CANARY, OTHER_CANARY, "tok-abcdef-123"):
        assert secret.encode() not in everything, secret
    request = json.loads(raw[prefix + "request.json"])
    assert request["parameters"] == {"license_key": MASK, "region": "eu", "db": {"Password": MASK}}
    # MANIFEST.txt is sha256sum-compatible and covers every other file as stored.
    manifest = raw[prefix + "MANIFEST.txt"].decode().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in manifest)
    assert sorted(listed) == sorted(n[len(prefix):] for n in raw if not n.endswith("MANIFEST.txt"))
    for name, digest in listed.items():
        assert hashlib.sha256(raw[prefix + name]).hexdigest() == digest
    # The exported journal is still a valid journal.
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "journal.jsonl").write_bytes(raw[prefix + "journal.jsonl"])
    assert Journal(tmp_path / "j" / "journal.jsonl").state().status == "finished"


def test_export_without_given_secrets_masks_values_found_under_secret_keys(tmp_path):
    run = _fake_run(tmp_path / "runs", "20240101T000001-aaaaaa")
    bundle = export(run, tmp_path)  # a directory: the default name inside it
    assert bundle.name == "intagent-run-20240101T000001-aaaaaa.tar.gz"
    everything = b"".join(_members(bundle).values())
    assert CANARY.encode() not in everything and OTHER_CANARY.encode() not in everything


def test_export_is_deterministic_and_private(tmp_path):
    run = _fake_run(tmp_path / "runs", "20240101T000001-aaaaaa")
    first = export(run, tmp_path / "a.tar.gz").read_bytes()
    second = export(run, tmp_path / "b.tar.gz")
    assert first == second.read_bytes()
    assert (second.stat().st_mode & 0o777) == 0o600
    with tarfile.open(second) as tar:
        names = tar.getnames()
    assert names[1] == "intagent-run-20240101T000001-aaaaaa/MANIFEST.txt"


def test_export_skips_symlinks(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the run")
    run = _fake_run(tmp_path / "runs", "20240101T000001-aaaaaa")
    (run.path / "playbooks" / "leak.yml").symlink_to(outside)
    assert not any(n.endswith("leak.yml") for n in _members(export(run, tmp_path / "x.tar.gz")))


def _cli(*args: str, state_home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAGENT_")}
    env.update(XDG_STATE_HOME=str(state_home), XDG_CONFIG_HOME=str(state_home / "config"),
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "integration_agent", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, check=False)


def test_cli_runs_export_list_and_show(tmp_path):
    state_home = tmp_path / "state"
    runs = state_home / "intagent" / "runs"
    _fake_run(runs, "20240101T000001-aaaaaa", integration="infra_agent")
    _fake_run(runs, "20240101T000002-bbbbbb", integration="collectd", targets=("h3",), report=False)
    (tmp_path / "work").mkdir()

    out = tmp_path / "bundle.tar.gz"
    proc = _cli("runs", "export", "20240101T000001-aaaaaa", "--out", str(out), state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    members = _members(out)
    assert any(n.endswith("MANIFEST.txt") for n in members)
    assert CANARY.encode() not in b"".join(members.values())

    proc = _cli("runs", "export", "20240101T000002-bbbbbb", state_home=state_home, cwd=tmp_path / "work")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == tmp_path / "work" / "intagent-run-20240101T000002-bbbbbb.tar.gz"
    assert Path(proc.stdout.strip()).is_file()

    proc = _cli("runs", "export", "nope", state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 3 and "no run" in proc.stderr

    proc = _cli("runs", "list", "--integration", "collectd", "--json", state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["run_id"], r["status"]) for r in rows] == [("20240101T000002-bbbbbb", "interrupted")]
    proc = _cli("runs", "list", "--host", "h1", "--status", "ok", "--json", state_home=state_home, cwd=tmp_path)
    assert [r["run_id"] for r in json.loads(proc.stdout)] == ["20240101T000001-aaaaaa"]

    proc = _cli("runs", "show", "20240101T000002-bbbbbb", state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "timeline:" in proc.stdout and "run_interrupted" in proc.stdout and "step_finished" in proc.stdout
    assert "stopped after plan" in proc.stdout and "h3: unknown" in proc.stdout
    proc = _cli("runs", "show", "20240101T000001-aaaaaa", "--json", state_home=state_home, cwd=tmp_path)
    shown = json.loads(proc.stdout)
    assert [e["type"] for e in shown["timeline"]] == ["run_requested", "step_started", "step_finished",
                                                      "run_finished"]
    assert shown["state"]["status"] == "finished" and shown["report"]["status"] == "ok"


def test_cli_show_without_journal_uses_the_report(tmp_path):
    state_home = tmp_path / "state"
    _fake_run(state_home / "intagent" / "runs", "20240101T000001-aaaaaa", journal=False)
    proc = _cli("runs", "show", "20240101T000001-aaaaaa", state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "timeline:" not in proc.stdout
    assert "status: ok (exit 0)" in proc.stdout and "h1: installed" in proc.stdout


def test_cli_show_warns_about_a_doctored_journal(tmp_path):
    state_home = tmp_path / "state"
    run = _fake_run(state_home / "intagent" / "runs", "20240101T000001-aaaaaa")
    lines = run.journal.path.read_text().splitlines(keepends=True)
    run.journal.path.write_text("".join(lines[:1] + lines[2:]))
    proc = _cli("runs", "show", "20240101T000001-aaaaaa", state_home=state_home, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "journal cannot be trusted" in proc.stderr and "status: ok" in proc.stdout


def test_export_keeps_unusual_line_separators_inside_json_lines(tmp_path):
    run = _fake_run(tmp_path / "runs", "20240101T000001-aaaaaa")
    run.journal.append(Note(None, "a\u2028b\x85c"))
    raw = _members(export(run, tmp_path / "x.tar.gz"))
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "journal.jsonl").write_bytes(raw["intagent-run-20240101T000001-aaaaaa/journal.jsonl"])
    assert Journal(tmp_path / "j" / "journal.jsonl").events()[-1]["text"] == "a\u2028b\x85c"


def test_a_run_whose_owner_died_is_interrupted_and_one_whose_owner_lives_is_running(tmp_path):
    import multiprocessing
    import signal

    runs = tmp_path / "runs"
    run = _fake_run(runs, "20240101T000005-eeeeee", targets=("h1",), report=False, journal=False)
    run.journal.append(RunRequested("install", "node_exporter", ("h1",), {}))
    run.journal.append(StepStarted("apply", ("h1",)))
    ready, hold = multiprocessing.Event(), multiprocessing.Event()

    def owner() -> None:  # another process runs the run, as intagent would
        with run.owned():
            ready.set()
            hold.wait(30)

    child = multiprocessing.get_context("fork").Process(target=owner)
    child.start()
    assert ready.wait(10)
    assert run.has_owner() and run_status(run) == "running"
    os.kill(child.pid, signal.SIGKILL)  # the controller crashes: no report, no run_interrupted event
    child.join(10)
    assert not run.has_owner() and run_status(run) == "interrupted"
    assert [r.id[-6:] for r in list_runs(runs, status="interrupted")] == ["eeeeee"]
