"""A disposable lab host for auditing a plan: pristine at boot, watched from outside, removed afterwards.

The sandbox host (``sandbox``, beside the lab's own hosts and never one of them) boots from the base
image on a fresh overlay. Its namespace has no route out of the lab bridge but a dummy ``sink`` that
drops everything, and a recorder in the namespace logs every connection the host tries to open. Its
overlay's upper layer shows every file it changed. One sandbox runs at a time on a machine.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LabError
from . import egress, network
from .host import LabHost
from .inventory import Access, InventoryHost, dump_yaml, lab_inventory, write_atomic
from .overlay import Snapshot
from .system import preflight, processes_matching, run

if TYPE_CHECKING:
    from .lab import Lab

SANDBOX_NAME = "sandbox"
SANDBOX_INDEX = 240  # far above the lab's own hosts (at most 200)
# Paths no plan's audit looks at: lab plumbing written before the first snapshot, and the journal.
UNWATCHED = ("/var/log/journal", "/root/.ssh", "/home/ops/.ssh", "/etc/ssh")


@dataclass
class SandboxHost:
    """A booted sandbox host: its inventory, base image, overlay and egress record."""

    host: LabHost
    inventory: Path
    lower: Path
    egress_log: Path
    mirror: tuple[str, int]  # the lab mirror's address and port: the one destination allowed

    @property
    def upper(self) -> Path:
        return Path(self.host.dir) / "upper"

    def snapshot(self) -> Snapshot:
        return Snapshot.take(self.upper, UNWATCHED)

    def attempts(self) -> list[egress.Attempt]:
        """Connections the host tried to open, except to the lab mirror."""
        address, port = self.mirror
        return [a for a in egress.read(self.egress_log)
                if not (a.interface == "eth0" and a.protocol == "tcp" and (a.address, a.port) == (address, port))]


@contextmanager
def sandbox(lab: Lab, release: str, progress=lambda _: None) -> Iterator[SandboxHost]:
    """Boot the sandbox host with ``release`` from its pristine image; stop and remove it afterwards."""
    preflight()
    lab.state_dir.mkdir(parents=True, exist_ok=True)
    with open(lab.state_dir / ".sandbox.lock", "w") as guard:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError("another sandbox runs on this machine", hint="wait for it to finish") from None
        host, recorder = _boot(lab, release, progress)
        try:
            yield SandboxHost(host, host_dir(host) / "inventory.yml", lab.base(release).path,
                              host_dir(host) / "egress.jsonl",
                              (str(network.gateway(lab.settings.subnet)), lab.settings.mirror_port))
        finally:
            _remove(lab, host, recorder)


def host_dir(host: LabHost) -> Path:
    return Path(host.dir)


def _boot(lab: Lab, release: str, progress) -> tuple[LabHost, subprocess.Popen]:
    with lab._locked():
        state = lab._load()
        lab._ensure_bases([release], False, progress)
        repository = lab.mirror.repository(release)
        if not (repository.published and lab.mirror_serving(state)):
            lab._publish_mirror([release], lab._layout(state).default_release, state, progress)
        lab._ensure_key()
        old = state.get("sandbox")
        if old:  # left by a run that was killed: its host and its recorder go first
            LabHost(**old).stop()
            for pid in processes_matching(str(host_dir(LabHost(**old)) / "egress.jsonl")):
                run(["kill", "-KILL", str(pid)], check=False)
        host = lab._new_host(SANDBOX_INDEX, SANDBOX_NAME)
        host.release = release
        network.ensure_host_link(host.netns, host.veth, network.host_address(lab.settings.subnet, host.index),
                                 lab.settings.subnet)
        # The sink: a veth pair whose both ends stay in the namespace. Frames sent into it reach only its
        # peer, which drops them (not its address, and the namespace does not forward).
        for command in (["link", "add", egress.SINK, "type", "veth", "peer", "name", egress.SINK_PEER],
                        ["link", "set", egress.SINK, "arp", "off", "up"], ["link", "set", egress.SINK_PEER, "up"],
                        ["route", "add", "default", "dev", egress.SINK]):
            run(["ip", "-n", host.netns, *command])
        shutil.rmtree(host.dir, ignore_errors=True)
        host_dir(host).mkdir(parents=True)
        recorder = _start_recorder(host)
        progress(f"booting sandbox host ({release})")
        host.prepare(lab.base(release).path, lab.key.with_suffix(".pub").read_text(), lab.mirror_url_for(release))
        host.start(lab.state_dir)  # the console log outlives the host: lab.state_dir/sandbox.console.log
        state["sandbox"] = host.to_json()
        lab._save(state)
    try:
        host.wait_ready(lab.key, lab.settings.boot_timeout)
    except BaseException:
        _remove(lab, host, recorder)
        raise
    listed = [InventoryHost(host.name, host.address, release, lab.mirror_url_for(release))]
    write_atomic(host_dir(host) / "inventory.yml",
                 dump_yaml(lab_inventory(listed, Access(lab.key), lab.mirror_url), "The intagent sandbox host."))
    return host, recorder


def _start_recorder(host: LabHost) -> subprocess.Popen:
    log = host_dir(host) / "egress.jsonl"
    with open(host_dir(host) / "egress.err", "wb") as errors:  # the recorder keeps its own descriptor
        proc = subprocess.Popen(["ip", "netns", "exec", host.netns, sys.executable, "-m",
                                 "integration_agent.lab.egress", "record", str(log)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if log.is_file() and log.read_text().startswith('{"ready"'):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise LabError("the sandbox's egress recorder did not start",
                   hint=f"see {host_dir(host) / 'egress.err'}")


def _remove(lab: Lab, host: LabHost, recorder: subprocess.Popen) -> None:
    recorder.terminate()
    try:
        recorder.wait(timeout=5)
    except subprocess.TimeoutExpired:
        recorder.kill()
    host.stop()
    network.remove_host_link(host.netns, host.veth, host.address)
    with lab._locked():
        state = lab._load()
        state.pop("sandbox", None)
        lab._save(state)
    shutil.rmtree(host.dir, ignore_errors=True)
