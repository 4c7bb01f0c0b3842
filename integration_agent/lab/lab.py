"""The lab: disposable Debian hosts with real systemd on this machine, reached over SSH."""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import LabError
from ..settings import LabSettings
from . import network
from .base import BaseImage, apt_debian_mirror
from .host import SSH_OPTIONS, LabHost
from .mirror import Mirror
from .system import mounts_under, preflight, processes_matching, run

Progress = Callable[[str], None]


@dataclass
class UpReport:
    """What ``Lab.up`` did, with the time each phase took."""

    inventory: Path
    hosts: list[str]
    started: list[str]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    running: bool
    answers: bool


class Lab:
    """Create, grow, inspect and remove the lab described by ``settings``."""

    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir
        self.state_file = self.state_dir / "lab.json"
        self.key = self.state_dir / "id_ed25519"
        self.inventory_path = self.state_dir / "inventory.yml"
        self._mirror_origin = settings.debian_mirror or apt_debian_mirror()
        self.base = BaseImage(settings.cache_dir, settings.suite, self._mirror_origin)
        self.mirror = Mirror(settings.cache_dir, self.state_dir, settings.suite)

    # -- public verbs -----------------------------------------------------------------------------
    def up(self, hosts: int | None = None, *, rebuild: bool = False, progress: Progress = lambda _: None) -> UpReport:
        """Make sure ``hosts`` hosts run (growing the lab if needed) and return the inventory."""
        preflight()
        wanted = hosts or self.settings.hosts
        timings: dict[str, float] = {}
        with self._locked():
            state = self._load()
            if rebuild and any(LabHost(**h).running() for h in state["hosts"]):
                raise LabError("--rebuild replaces the base image under running hosts; run `intagent lab down` first")
            if not self.base.ready or rebuild:
                progress(f"building base image {self.base.path} (debootstrap {self.settings.suite})")
            timings["base_image"] = self.base.ensure(rebuild=rebuild)

            t0 = time.monotonic()
            progress("preparing package mirror")
            self.mirror.sync(self.base.path, self.settings.mirror_packages)
            self.mirror.publish()
            network.ensure_bridge(self.settings.subnet)
            gw = str(network.gateway(self.settings.subnet))
            state["mirror_pid"] = self.mirror.serve(gw, self.settings.mirror_port, state.get("mirror_pid"))
            timings["mirror"] = time.monotonic() - t0

            t0 = time.monotonic()
            self._ensure_key()
            by_index = {h["index"]: LabHost(**h) for h in state["hosts"]}
            to_start = []
            for index in range(1, wanted + 1):
                host = by_index.get(index) or self._new_host(index)
                by_index[index] = host
                if not host.running():
                    to_start.append(host)
            if to_start:
                progress(f"booting {len(to_start)} host(s): {', '.join(h.name for h in to_start)}")
            for host in to_start:
                self._boot(host)
            state["hosts"] = [by_index[i].to_json() for i in sorted(by_index)]
            self._save(state)
            try:
                self._wait_all(to_start)
            finally:
                self._write_inventory([by_index[i] for i in sorted(by_index)])
            timings["boot"] = time.monotonic() - t0
            return UpReport(self.inventory_path, [by_index[i].name for i in sorted(by_index)],
                            [h.name for h in to_start], timings)

    def down(self, progress: Progress = lambda _: None) -> list[str]:
        """Remove everything the lab made; safe to run twice, and when the state file is lost."""
        preflight()
        removed: list[str] = []
        with self._locked():
            state = self._load()
            for data in state["hosts"]:
                host = LabHost(**data)
                if host.running():
                    progress(f"stopping {host.name}")
                host.stop()
                removed.append(host.name)
            state_marker = str(self.state_dir)
            # Whatever else still runs from the lab's directories (mirror server, orphaned hosts).
            for pid in processes_matching(state_marker):
                run(["kill", "-TERM", str(pid)], check=False)
            deadline = time.monotonic() + 10
            while processes_matching(state_marker) and time.monotonic() < deadline:
                time.sleep(0.1)
            for pid in processes_matching(state_marker):
                run(["kill", "-KILL", str(pid)], check=False)
            for point in mounts_under(state_marker):
                run(["umount", "--lazy", point], check=False)
            network.remove_network()
            for entry in self.state_dir.iterdir() if self.state_dir.is_dir() else []:
                if entry.name != ".lock":
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
        return removed

    def reset(self, names: Iterable[str] = (), progress: Progress = lambda _: None) -> list[str]:
        """Put hosts (default: all) back to the pristine base image and boot them again."""
        preflight()
        with self._locked():
            state = self._load()
            hosts = [LabHost(**h) for h in state["hosts"]]
            wanted = set(names) or {h.name for h in hosts}
            unknown = wanted - {h.name for h in hosts}
            if unknown:
                raise LabError(f"no lab host named {', '.join(sorted(unknown))}",
                               hint=f"lab hosts: {', '.join(h.name for h in hosts) or 'none'}")
            chosen = [h for h in hosts if h.name in wanted]
            progress(f"resetting {', '.join(h.name for h in chosen)}")
            for host in chosen:
                host.stop()
                self._boot(host)
            state["hosts"] = [h.to_json() for h in hosts]
            self._save(state)
            self._wait_all(chosen)
            return [h.name for h in chosen]

    def status(self) -> list[HostStatus]:
        """Every known host, whether its container runs and whether it answers SSH."""
        state = self._load()
        hosts = [LabHost(**h) for h in state["hosts"]]

        def probe(host: LabHost) -> HostStatus:
            running = host.running()
            return HostStatus(host.name, host.address, running, running and host.answers(self.key))

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(probe, hosts))

    def hosts(self) -> list[LabHost]:
        return [LabHost(**h) for h in self._load()["hosts"]]

    def require_inventory(self) -> Path:
        if not self.inventory_path.is_file():
            raise LabError("no lab is up", hint="create one with: intagent lab up")
        return self.inventory_path

    def add_packages(self, debs: Iterable[Path]) -> list[str]:
        """Serve extra .deb files (for example packages built by tests) from the lab mirror."""
        if not (self.mirror.root / "Packages").is_file():
            raise LabError("no lab mirror to add packages to", hint="create the lab with: intagent lab up")
        with self._locked():
            return self.mirror.add(debs)

    @property
    def mirror_url(self) -> str:
        return f"http://{network.gateway(self.settings.subnet)}:{self.settings.mirror_port}/"

    def ssh_command(self, host: LabHost | str, command: str) -> list[str]:
        """The argv that runs ``command`` on a lab host as root."""
        address = host.address if isinstance(host, LabHost) else host
        return ["ssh", "-i", str(self.key), *SSH_OPTIONS, "-o", "ConnectTimeout=5", f"root@{address}", command]

    # -- internals --------------------------------------------------------------------------------
    def _boot(self, host: LabHost) -> None:
        """Plug a host into the bridge, give it a fresh overlay and start its container."""
        network.ensure_host_link(host.netns, host.veth, network.host_address(self.settings.subnet, host.index),
                                 self.settings.subnet)
        host.prepare(self.base.path, self.key.with_suffix(".pub").read_text(), self.mirror_url)
        host.start(self.state_dir)

    def _new_host(self, index: int) -> LabHost:
        name = f"lab{index}"
        return LabHost(name=name, index=index,
                       address=str(network.host_address(self.settings.subnet, index)),
                       netns=f"{network.NETNS_PREFIX}{name}", veth=f"{network.VETH_PREFIX}{index}",
                       dir=str(self.state_dir / "hosts" / name))

    def _wait_all(self, hosts: list[LabHost]) -> None:
        if not hosts:
            return
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            for future in [pool.submit(h.wait_ready, self.key, self.settings.boot_timeout) for h in hosts]:
                future.result()

    def _ensure_key(self) -> None:
        if not self.key.is_file():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "intagent-lab", "-f", str(self.key)])

    def _write_inventory(self, hosts: list[LabHost]) -> None:
        inventory = {"all": {
            "children": {"lab": {"hosts": {h.name: {"ansible_host": h.address} for h in hosts}}},
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "ansible_python_interpreter": "/usr/bin/python3",
                "intagent_lab_mirror_url": self.mirror_url,
            },
        }}
        tmp = self.inventory_path.with_suffix(".tmp")
        tmp.write_text("# Written by `intagent lab up`; regenerated on every run.\n"
                       + yaml.safe_dump(inventory, sort_keys=False))
        tmp.replace(self.inventory_path)

    def _load(self) -> dict:
        try:
            state = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"hosts": [], "mirror_pid": None}
        except (OSError, ValueError) as exc:
            raise LabError(f"{self.state_file}: unreadable lab state ({exc})",
                           hint="remove the lab with: intagent lab down") from None
        state["hosts"] = [h for h in state.get("hosts", []) if isinstance(h, dict)]
        return state

    def _save(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @contextmanager
    def _locked(self, timeout: float = 300.0) -> Iterator[None]:
        """One lab command at a time; a second one waits (up to ``timeout``) rather than failing."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / ".lock", "w") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(f"another intagent lab command held {self.state_dir}/.lock "
                                       f"for over {timeout:.0f}s") from None
                    time.sleep(0.2)
            yield
