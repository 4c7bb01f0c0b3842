"""The audit's parts without a lab: overlay snapshots and their diff, the egress classifier, and how the
judge sorts changes against a manifest (the lab e2e tests run them on a real sandbox host)."""

from __future__ import annotations

import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from integration_agent import audit
from integration_agent.catalog import Catalog
from integration_agent.lab import egress
from integration_agent.lab.overlay import Change, Snapshot, diff


def write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_overlay_diff_sees_created_changed_and_deleted_paths(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    write(lower / "etc/keep.conf", "same")
    write(lower / "etc/edit.conf", "old")
    write(lower / "etc/gone.conf")
    upper.mkdir()
    before = Snapshot.take(upper)
    write(upper / "etc/new.conf")
    write(upper / "etc/edit.conf", "new")
    write(upper / "etc/keep.conf", "same")  # copied up, same content: no change
    if os.geteuid() == 0:
        os.mknod(upper / "etc/gone.conf", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # a whiteout
    after = Snapshot.take(upper, ("/etc/ignored",))
    changes = diff(before, after, lower)
    expected = [Change("/etc/edit.conf", "changed"), Change("/etc/new.conf", "created")]
    if os.geteuid() == 0:
        expected.insert(1, Change("/etc/gone.conf", "deleted"))
    assert changes == expected


def ipv4(protocol: int, destination: str, body: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, protocol, 0,
                         socket.inet_aton("10.231.0.240"), socket.inet_aton(destination))
    return header + body


def tcp(port: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, port, 0, 0, 0x50, flags, 0, 0, 0)


def test_egress_records_connection_attempts_only():
    assert egress.classify("sink", ipv4(6, "198.51.100.7", tcp(443, egress.TCP_SYN))) == \
        egress.Attempt("sink", "tcp", "198.51.100.7", 443)
    assert egress.classify("eth0", ipv4(6, "10.231.0.1", tcp(8080, egress.TCP_SYN | egress.TCP_ACK))) is None
    assert egress.classify("eth0", ipv4(6, "10.231.0.1", tcp(8080, egress.TCP_ACK))) is None
    assert egress.classify("sink", ipv4(17, "198.51.100.7", struct.pack("!HHHH", 5353, 53, 8, 0))) == \
        egress.Attempt("sink", "udp", "198.51.100.7", 53)
    assert egress.classify("lo", ipv4(17, "127.0.0.1", struct.pack("!HHHH", 5353, 53, 8, 0))) is None
    assert egress.classify("sink", ipv4(1, "198.51.100.7", bytes([8, 0, 0, 0]))).protocol == "icmp"
    assert egress.classify("sink", ipv4(1, "198.51.100.7", bytes([3, 0, 0, 0]))) is None


@dataclass
class FakeHost:
    root: Path


@dataclass
class FakeBox:
    host: FakeHost
    lower: Path
    recorded: list

    def attempts(self):
        return self.recorded


@pytest.fixture
def judge(tmp_path):
    lower, root = tmp_path / "lower", tmp_path / "root"
    base = "root:x:0:0::/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/bash\n"
    write(lower / "etc/passwd", base)
    write(lower / "etc/group", "root:x:0:\nsudo:x:27:ops\n")
    write(root / "etc/passwd", base + "prometheus:x:999:999::/var/lib/prometheus:/usr/sbin/nologin\n")
    write(root / "etc/group", "root:x:0:\nsudo:x:27:ops,prometheus\nprometheus:x:999:\n")
    repository = tmp_path / "mirror"
    write(repository / "Packages", "Package: prometheus-node-exporter\nFilename: pool/a.deb\nDepends: libc6\n\n"
                                   "Package: libfoo\nFilename: pool/b.deb\n")
    the_judge = object.__new__(audit.Judge)
    the_judge.manifest = Catalog().get("node_exporter").manifest
    the_judge.box = FakeBox(FakeHost(root), lower, [egress.Attempt("lo", "tcp", "127.0.0.1", 9100),
                                                     egress.Attempt("lo", "tcp", "127.0.0.1", 6379)])
    the_judge.package_files = {"/usr/bin/prometheus-node-exporter": "prometheus-node-exporter",
                               "/usr/lib/x86_64-linux-gnu/libc.so.6": "libc6"}
    the_judge.owned_packages = {"prometheus-node-exporter"}
    return the_judge


@pytest.mark.parametrize("path, category", [
    ("/etc/default/prometheus-node-exporter", "footprint"),
    ("/var/lib/prometheus/node-exporter", "footprint"),
    ("/etc/apt/sources.list.d/node_exporter.list", "footprint"),
    ("/usr/bin/prometheus-node-exporter", "package"),
    ("/var/lib/dpkg/status", "bookkeeping"),
    ("/etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service", "bookkeeping"),
    ("/etc/rc2.d/S01prometheus-node-exporter", "bookkeeping"),
    ("/etc/systemd/system/multi-user.target.wants/ssh.service", "outside"),
    ("/etc/passwd", "accounts"),  # only the integration's own user was added
    ("/etc/group", "outside"),  # ... but it was also made a member of sudo
    ("/etc/sudoers.d/node_exporter", "outside"),
    ("/var/lib/prometheus/../../../etc/cron.d/x", "outside"),
])
def test_the_judge_sorts_changes_against_the_manifest(judge, path, category):
    assert judge.category(Change(os.path.normpath(path), "created")) == category


def test_kept_dependencies_are_not_residue_but_the_owned_package_is(judge):
    kept = Change("/usr/lib/x86_64-linux-gnu/libc.so.6", "created")
    owned = Change("/usr/bin/prometheus-node-exporter", "created")
    assert not judge.residue(kept) and judge.residue(owned)
    assert judge.kept([kept, owned]) == {"libc6": 1}
    assert judge.residue(Change("/etc/passwd", "changed"))  # the user is still there
    assert not judge.residue(Change("/var/log/apt/history.log", "changed"))


def test_loopback_calls_to_the_integrations_own_ports_are_not_egress(judge):
    assert [str(a) for a in judge.egress()] == ["tcp to 127.0.0.1:6379 (via lo)"]


def test_findings_name_each_failure_with_its_evidence():
    report = audit.AuditReport("x", "bookworm", "generated", statuses={"install": "failed (boom)",
                                                                       "uninstall": "uninstalled"},
                               written={"outside": ["created /etc/x"]}, left=["created /etc/y"],
                               egress=["tcp to 198.51.100.7:80 (via sink)"])
    found = {f.rule: f.evidence for f in audit.findings(report)}
    assert found == {"IA207": ["install: failed (boom)"], "IA204": ["created /etc/x"],
                     "IA205": ["tcp to 198.51.100.7:80 (via sink)"], "IA206": ["created /etc/y"]}
    clean = audit.AuditReport("x", "bookworm", "curated", statuses={"install": "installed",
                                                                    "uninstall": "uninstalled"})
    assert audit.findings(clean) == [] and clean.ok


def test_the_package_index_lists_every_alternative_as_a_dependency(tmp_path):
    index = write(tmp_path / "Packages", "Package: a\nFilename: pool/a.deb\nPre-Depends: b (>= 1)\n"
                                         "Depends: c | d:any, e\n\nPackage: b\nFilename: pool/b.deb\n")
    assert audit._index(index) == {"a": {"filename": "pool/a.deb", "depends": ["b", "c", "d", "e"]},
                                   "b": {"filename": "pool/b.deb", "depends": []}}
