"""The lab: disposable Debian hosts with real systemd on this machine, reached over SSH."""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LabError
from . import network
from .base import BaseImage, apt_debian_mirror
from .host import LabHost, ssh_argv
from .inventory import Access, InventoryHost, write_atomic, write_inventories
from .layout import BASTION_INDEX, BASTION_NAME, Layout
from .mirror import Mirror
from .system import mounts_under, preflight, process_alive, processes_matching, raise_inotify_limits, run, wait_gone

if TYPE_CHECKING:  # settings imports the lab's release list: no import at run time
    from ..settings import LabSettings

Progress = Callable[[str], None]


@dataclass
class UpReport:
    """What ``Lab.up`` did, with the time each phase took."""

    inventory: Path
    hosts: list[str]
    started: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    bastion: str | None = None  # its address, when the lab has one
    fleet: Path | None = None  # the fleet-like set-up's directory, when asked for


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    running: bool
    answers: bool
    release: str = ""


class Lab:
    """Create, grow, inspect and remove the lab described by ``settings``."""

    def __init__(self, settings: LabSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir
        self.state_file = self.state_dir / "lab.json"
        self.key = self.state_dir / "id_ed25519"
        self.inventory_path = self.state_dir / "inventory.yml"
        self.known_hosts_path = self.state_dir / "known_hosts"
        self.fleet_dir = self.state_dir / "fleet"
        self._mirror_origin = settings.debian_mirror or apt_debian_mirror()
        self.mirror = Mirror(settings.cache_dir, self.state_dir)

    def base(self, release: str) -> BaseImage:
        """The cached base image of ``release``."""
        return BaseImage(self.settings.cache_dir, release, self._mirror_origin)

    def default_layout(self) -> Layout:
        """Today's plain lab: every host of ``lab.suite``, root login, no bastion."""
        return Layout(releases=(self.settings.suite,))

    # -- public verbs -----------------------------------------------------------------------------
    def up(self, hosts: int | None = None, *, layout: Layout | None = None, rebuild: bool = False,
           progress: Progress = lambda _: None) -> UpReport:
        """Make sure ``hosts`` hosts run in ``layout`` (growing the lab if needed) and return the inventory.

        Every host of the lab, old or new, is given the layout: a host whose release or access differs is
        re-created from its pristine image; a host that matches and runs is left alone.
        """
        preflight()
        layout = layout or self.default_layout()
        wanted = hosts or self.settings.hosts
        timings: dict[str, float] = {}
        with self._locked():
            state = self._load()
            if rebuild and any(h.running() for h in self._every_host(state)):
                raise LabError("--rebuild replaces the base image under running hosts; run `intagent lab down` first")
            indices = sorted({*range(1, wanted + 1), *(h["index"] for h in state["hosts"])})
            releases = list(dict.fromkeys(layout.release_of(i) for i in indices))
            timings["base_image"] = self._ensure_bases(releases, rebuild, progress)

            t0 = time.monotonic()
            self._publish_mirror(releases, layout.default_release, state, progress)
            timings["mirror"] = time.monotonic() - t0

            t0 = time.monotonic()
            self._ensure_key()
            bastion, to_start = self._converge_bastion(state, layout)
            by_index = {h["index"]: LabHost(**h) for h in state["hosts"]}
            for index in indices:
                host = by_index.get(index) or self._new_host(index)
                by_index[index] = host
                if self._assign(host, layout.release_of(index), bastion):
                    to_start.append(host)
            if to_start:
                for name, value in raise_inotify_limits(len(indices) + 2).items():  # + the bastion, the sandbox
                    progress(f"raised fs.inotify.{name} to {value} for {len(indices)} hosts")
                progress(f"booting {len(to_start)} host(s): {', '.join(h.name for h in to_start)}")
            for host in to_start:
                self._boot(host)
            lab_hosts = [by_index[i] for i in indices]
            state.update(hosts=[h.to_json() for h in lab_hosts], bastion=bastion and bastion.to_json(),
                         layout=asdict(layout))
            self._save(state)
            try:
                self._wait_all(to_start)
            finally:
                self._write_inventory(lab_hosts, bastion, layout)
            timings["boot"] = time.monotonic() - t0
            return UpReport(self.inventory_path, [h.name for h in lab_hosts], [h.name for h in to_start], timings,
                            bastion=bastion.address if bastion else None,
                            fleet=self.fleet_dir if layout.fleet else None)

    def down(self, progress: Progress = lambda _: None) -> list[str]:
        """Remove everything the lab made; safe to run twice, and when the state file is lost."""
        preflight()
        removed: list[str] = []
        with self._locked():
            for host in self._every_host(self._load()):
                if host.running():
                    progress(f"stopping {host.name}")
                host.stop()
                removed.append(host.name)
            state_marker = str(self.state_dir)
            # Whatever else still runs from the lab's directories (mirror server, orphaned hosts, a sandbox's
            # recorder). Waited for by pid: an exiting process no longer shows its command line.
            stray = processes_matching(state_marker)
            for pid in stray:
                run(["kill", "-TERM", str(pid)], check=False)
            for pid in wait_gone(stray, 10):
                run(["kill", "-KILL", str(pid)], check=False)
            wait_gone(stray, 5)
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
            try:
                self._wait_all(chosen)
            finally:  # new host keys
                self._write_inventory(hosts, self.bastion(), self._layout(state))
            return [h.name for h in chosen]

    def status(self) -> list[HostStatus]:
        """Every known host (the bastion too), whether its container runs and whether it answers SSH."""
        hosts = self._every_host(self._load())

        def probe(host: LabHost) -> HostStatus:
            running = host.running()
            answers = running and host.answers(self.key, jump=_jump(host))
            return HostStatus(host.name, host.address, running, answers, host.release)

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(probe, hosts))

    def hosts(self) -> list[LabHost]:
        """The lab's target hosts (not the bastion)."""
        return [LabHost(**h) for h in self._load()["hosts"]]

    def bastion(self) -> LabHost | None:
        """The bastion the hosts are reached through, when the lab has one."""
        data = self._load().get("bastion")
        return LabHost(**data) if data else None

    def require_inventory(self) -> Path:
        if not self.inventory_path.is_file():
            raise LabError("no lab is up", hint="create one with: intagent lab up")
        return self.inventory_path

    def add_packages(self, debs: Iterable[Path]) -> list[str]:
        """Serve extra .deb files (for example packages built by tests) from the lab mirror, every release."""
        with self._locked():
            return self.mirror.add(debs, top_level=self._layout(self._load()).default_release)

    @property
    def mirror_url(self) -> str:
        """The mirror's top level (the lab's first release, for sources lines written before releases)."""
        return f"http://{network.gateway(self.settings.subnet)}:{self.settings.mirror_port}/"

    def mirror_url_for(self, release: str) -> str:
        """The flat repository of ``release`` on the lab mirror."""
        return f"{self.mirror_url}{release}/"

    def ssh_command(self, host: LabHost | str, command: str) -> list[str]:
        """The argv that runs ``command`` on a lab host (or address) as root, through the bastion if needed."""
        if isinstance(host, str):
            host = next((h for h in self._every_host(self._load()) if h.address == host), None) or host
        if isinstance(host, str):
            return ssh_argv(self.key, f"root@{host}", command)
        return ssh_argv(self.key, f"root@{host.address}", command, jump=_jump(host))

    # -- internals --------------------------------------------------------------------------------
    def _ensure_bases(self, releases: list[str], rebuild: bool, progress: Progress) -> float:
        """Build the base images of ``releases`` that are not cached; return the seconds spent."""
        spent = 0.0
        for release in releases:
            image = self.base(release)
            if not image.ready or rebuild:
                progress(f"building base image {image.path} (debootstrap {release})")
            spent += image.ensure(rebuild=rebuild)
        return spent

    def _publish_mirror(self, releases: list[str], top_level: str, state: dict, progress: Progress) -> None:
        """Fill and index each release's repository, then make sure the mirror is served on the bridge."""
        progress(f"preparing package mirror ({', '.join(releases)})")
        for release in releases:
            repository = self.mirror.repository(release)
            repository.sync(self.base(release).path, self.settings.mirror_packages)
            repository.publish()
        self.mirror.publish_top_level(top_level)
        network.ensure_bridge(self.settings.subnet)
        gw = str(network.gateway(self.settings.subnet))
        state["mirror_pid"] = self.mirror.serve(gw, self.settings.mirror_port, state.get("mirror_pid"))

    def _converge_bastion(self, state: dict, layout: Layout) -> tuple[LabHost | None, list[LabHost]]:
        """The bastion ``layout`` asks for (None: an old one is removed), and ``[it]`` if it must boot."""
        current = LabHost(**state["bastion"]) if state.get("bastion") else None
        if not layout.bastion:
            if current:
                current.stop()
                network.remove_host_link(current.netns, current.veth, current.address)
            return None, []
        bastion = current or self._new_host(BASTION_INDEX, BASTION_NAME)
        return bastion, [bastion] if self._assign(bastion, layout.default_release, None) else []

    @staticmethod
    def _assign(host: LabHost, release: str, bastion: LabHost | None) -> bool:
        """Give ``host`` ``release`` and access through ``bastion``; True when it must (re)boot for that.

        A host that already runs so is left alone; any other is stopped first.
        """
        allow_from = bastion.address if bastion else None
        if host.running() and (host.release, host.allow_from) == (release, allow_from):
            return False
        host.stop()
        host.release, host.allow_from = release, allow_from
        return True

    def _boot(self, host: LabHost) -> None:
        """Plug a host into the bridge, give it a fresh overlay and start its container."""
        network.ensure_host_link(host.netns, host.veth, network.host_address(self.settings.subnet, host.index),
                                 self.settings.subnet)
        host.prepare(self.base(host.release).path, self.key.with_suffix(".pub").read_text(),
                     self.mirror_url_for(host.release))
        host.start(self.state_dir)

    def _new_host(self, index: int, name: str | None = None) -> LabHost:
        name = name or f"lab{index}"
        return LabHost(name=name, index=index,
                       address=str(network.host_address(self.settings.subnet, index)),
                       netns=f"{network.NETNS_PREFIX}{name}", veth=f"{network.VETH_PREFIX}{index}",
                       dir=str(self.state_dir / "hosts" / name))

    def _wait_all(self, hosts: list[LabHost]) -> None:
        """Wait until ``hosts`` answer SSH: hosts reached directly (the bastion) first, then the others."""
        for group in ([h for h in hosts if not h.allow_from], [h for h in hosts if h.allow_from]):
            if not group:
                continue
            with ThreadPoolExecutor(max_workers=min(16, len(group))) as pool:
                futures = [pool.submit(h.wait_ready, self.key, self.settings.boot_timeout, _jump(h)) for h in group]
                for future in futures:
                    future.result()

    def _ensure_key(self) -> None:
        if not self.key.is_file():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "intagent-lab", "-f", str(self.key)])

    def _write_inventory(self, hosts: list[LabHost], bastion: LabHost | None, layout: Layout) -> None:
        """Write the lab inventory and known_hosts, and the fleet-like set-up when the layout asks for it."""
        listed = [InventoryHost(h.name, h.address, h.release, self.mirror_url_for(h.release)) for h in hosts]
        access = Access(self.key, layout.login_user, bastion.address if bastion else None, self.known_hosts_path)
        keys = {h.address: h.host_public_key for h in [*hosts, *([bastion] if bastion else [])] if h.has_host_key}
        write_inventories(self.inventory_path, self.fleet_dir if layout.fleet else None, listed, access, keys,
                          self.mirror_url)
        if not layout.fleet:
            shutil.rmtree(self.fleet_dir, ignore_errors=True)

    def _every_host(self, state: dict) -> list[LabHost]:
        """The lab's hosts, its bastion (first) and a sandbox host left running, as recorded in ``state``."""
        extra = [LabHost(**state[key]) for key in ("bastion", "sandbox") if state.get(key)]
        return [*extra, *(LabHost(**h) for h in state["hosts"])]

    def mirror_serving(self, state: dict) -> bool:
        """True when the package mirror recorded in ``state`` still runs."""
        return process_alive(state.get("mirror_pid"), str(self.mirror.root))

    def _layout(self, state: dict) -> Layout:
        """The layout of the last ``up`` (the default one for a lab made before layouts were recorded)."""
        data = state.get("layout")
        return Layout(**{**data, "releases": tuple(data["releases"])}) if data else self.default_layout()

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
        write_atomic(self.state_file, json.dumps(state, indent=2))

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


def _jump(host: LabHost) -> str | None:
    """Where the lab's own SSH connections to ``host`` jump through (root on the bastion), if anywhere."""
    return f"root@{host.allow_from}" if host.allow_from else None
