"""The footprint audit: what an integration's install really writes on a pristine host, and what its
uninstall leaves behind, measured from outside the host.

The integration is installed (plan, apply, verify), then uninstalled, on the lab's sandbox host (see
``lab/sandbox.py``). Its overlay's upper layer, snapshotted before, after install and after uninstall,
gives every path created, changed or deleted; the egress recorder gives every connection the host tried
to open. Each written path is classified:

    footprint    inside the manifest's ``owns.paths`` (or its own apt source and key, ``/tmp/intagent-*``)
    package      shipped by a package the integration owns, or one those packages depend on (listed from
                 the .deb files of the lab mirror, not from the host's own dpkg database)
    accounts     /etc/passwd, group, shadow, gshadow, changed only by entries of ``owns.users``
    bookkeeping  what the package manager, systemd and Ansible keep for themselves (BOOKKEEPING below),
                 and the enablement links of the integration's own services
    outside      anything else

The audit finds (rule ids of the gates outside the policy, ``docs/policy.md``): IA204 a path written
outside the footprint, IA205 a connection attempt to anything but the lab mirror and the integration's own
ports on loopback, IA206 anything but bookkeeping left after uninstall, IA207 an install that did not
verify or an uninstall that failed. Dependencies that apt installed with the integration's packages
and that uninstall keeps (intagent never removes a package it does not own: on a real host something else
may need it) are listed as ``kept``, by package, and are not residue. The sandbox gate refuses a generated
plan with these findings; ``intagent audit NAME`` prints the report for any integration, curated roles
included.
"""

from __future__ import annotations

import fnmatch
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Integration, within
from .generation.rules.data import SHARED_DIRECTORIES, SHARED_PATHS
from .lab.overlay import Change, diff

if TYPE_CHECKING:
    from .lab.lab import Lab
    from .lab.sandbox import SandboxHost
    from .settings import Settings

# What the package manager, systemd and Ansible write for themselves on any install (never residue).
BOOKKEEPING = (
    "/var/lib/dpkg", "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf", "/var/cache/ldconfig",
    "/etc/ld.so.cache", "/var/log/apt", "/var/log/dpkg.log", "/var/log/alternatives.log", "/var/lib/ucf",
    "/var/lib/systemd", "/root/.ansible", "/var/lib/polkit-1", "/etc/passwd-", "/etc/group-", "/etc/shadow-",
    "/etc/gshadow-", "/etc/.pwd.lock", "/var/log/lastlog", "/var/log/faillog", "/var/log/wtmp", "/var/log/btmp",
)
ACCOUNT_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")
# Links that enable or order a service, by name: allowed for the integration's own services.
SERVICE_LINKS = ("/etc/systemd/system/*.wants/{service}.service", "/etc/rc[0-6S].d/[SK][0-9][0-9]{service}")
USR_MERGED = ("/bin", "/sbin", "/lib", "/lib32", "/lib64")  # links into /usr on the lab's releases
RELEASES = {"debian-11": "bullseye", "debian-12": "bookworm", "debian-13": "trixie"}


@dataclass(frozen=True)
class AuditFinding:
    """One reason a plan is refused, with the evidence (paths, addresses, host failures)."""

    rule: str
    message: str
    evidence: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        shown = ", ".join(self.evidence[:8]) + (f" (+{len(self.evidence) - 8} more)" if len(self.evidence) > 8 else "")
        return f"{self.rule} {self.message}" + (f": {shown}" if shown else "")


@dataclass
class AuditReport:
    """What install wrote, what uninstall left, whom the host tried to reach, and the findings."""

    integration: str
    release: str
    origin: str
    runs: dict[str, str] = field(default_factory=dict)  # step -> run id
    statuses: dict[str, str] = field(default_factory=dict)  # step -> the host's status
    written: dict[str, list[str]] = field(default_factory=dict)  # category -> "created /etc/x", ...
    left: list[str] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)  # dependency package -> paths of it still installed
    egress: list[str] = field(default_factory=list)
    findings: list[AuditFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "findings": [{**asdict(f), "text": str(f)} for f in self.findings]}


def audit(integration: Integration, lab: Lab, settings: Settings, *, release: str | None = None,
          variables: list[str] | tuple[str, ...] = (), progress=lambda _: None,
          parent: str | None = None) -> AuditReport:
    """Install, verify and uninstall ``integration`` on a fresh sandbox host and audit it from outside."""
    from .lab.sandbox import sandbox

    release = release or lab.default_layout().default_release
    report = AuditReport(integration.name, release, integration.origin)
    with sandbox(lab, release, progress) as box:
        pristine = box.snapshot()
        progress(f"installing {integration.name} on the sandbox host")
        _step(report, "install", integration, box, settings, variables, parent)
        installed = box.snapshot()
        progress(f"uninstalling {integration.name} from the sandbox host")
        _step(report, "uninstall", integration, box, settings, variables, parent)
        removed = box.snapshot()
        judge = Judge(integration, lab, release, box)
        report.written = judge.classify(diff(pristine, installed, box.lower))
        after = diff(pristine, removed, box.lower)
        report.left = [str(c) for c in after if judge.residue(c)]
        report.kept = judge.kept(after)
        report.egress = [str(a) for a in judge.egress()]
    report.findings = findings(report)
    return report


def findings(report: AuditReport) -> list[AuditFinding]:
    """The audit's verdict as findings (empty: the integration stayed inside its footprint)."""
    out = []
    failed = [f"{step}: {status}" for step, status in report.statuses.items()
              if status not in ("verified", "installed", "unchanged", "uninstalled")]
    if failed:
        out.append(AuditFinding("IA207", "the sandbox lifecycle did not succeed", failed))
    if report.written.get("outside"):
        out.append(AuditFinding("IA204", "install changed paths outside the integration's footprint",
                                report.written["outside"]))
    if report.egress:
        out.append(AuditFinding("IA205", "the host tried to reach addresses other than the lab mirror and "
                                "the integration's own ports", report.egress))
    if report.left:
        out.append(AuditFinding("IA206", "uninstall left changes behind", report.left))
    return out


def _step(report: AuditReport, action: str, integration: Integration, box: SandboxHost, settings: Settings,
          variables, parent: str | None) -> None:
    from .api import run_action

    result = run_action(action, integration, box.inventory, variables=variables, settings=settings, parent=parent)
    report.runs[action] = result.run_id
    host = next(iter(result.hosts.values()), None)
    report.statuses[action] = host.status if host else result.status
    if host and host.failures:
        report.statuses[action] += f" ({'; '.join(host.failures[:2])})"


class Judge:
    """Classifies the sandbox's changes and connection attempts against one integration's manifest."""

    def __init__(self, integration: Integration, lab: Lab, release: str, box: SandboxHost) -> None:
        self.manifest = integration.manifest
        self.box = box
        self.repository = lab.mirror.repository(release).root
        self.package_files = _package_files(self.repository, tuple(self.manifest.owns.packages))
        self.owned_packages = set(self.manifest.owns.packages)

    def classify(self, changes: list[Change]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for change in changes:
            out.setdefault(self.category(change), []).append(str(change))
        return out

    def category(self, change: Change) -> str:
        path, owns = change.path, self.manifest.owns
        name = self.manifest.name
        if any(within(path, p) for p in owns.paths) or path in SHARED_DIRECTORIES or any(
                fnmatch.fnmatchcase(path, pattern.format(name=name)) for pattern in SHARED_PATHS):
            return "footprint"
        if any(within(path, p) for p in BOOKKEEPING) or self._own_service_link(path):
            return "bookkeeping"
        if path in ACCOUNT_FILES:
            return "accounts" if self._accounts_owned(path) else "outside"
        if path in self.package_files:
            return "package"
        return "outside"

    def egress(self) -> list[Any]:
        """Attempts other than to the mirror (the recorder's filter) and to the integration's own ports."""
        ports = set(self.manifest.owns.ports)
        return [a for a in self.box.attempts() if not (a.interface == "lo" and a.port in ports)]

    def _own_service_link(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, link.format(service=service))
                   for link in SERVICE_LINKS for service in self.manifest.owns.services)

    def _accounts_owned(self, path: str) -> bool:
        """Do the entries of the account file ``path`` differ from the base image's only in the integration's
        own users (and their groups)? Adding a member to another group changes that group: outside."""
        return self.accounts_changed(path) <= set(self.manifest.owns.users)

    def accounts_changed(self, path: str) -> set[str]:
        """Names whose entry in ``path`` was added, removed or changed against the base image."""
        now, base = _entries(self.box.host.root / path.lstrip("/")), _entries(self.box.lower / path.lstrip("/"))
        return {name for name in now.keys() | base.keys() if now.get(name) != base.get(name)}

    def residue(self, change: Change) -> bool:
        """Is ``change`` (against the pristine host, after uninstall) something uninstall left behind?"""
        if change.path in ACCOUNT_FILES:
            return bool(self.accounts_changed(change.path))
        return self.category(change) != "bookkeeping" and self._dependency(change) is None

    def kept(self, changes: list[Change]) -> dict[str, int]:
        """Dependency packages (not the integration's own) whose files are still there, with their counts."""
        counts: dict[str, int] = {}
        for change in changes:
            if (package := self._dependency(change)) is not None and change.kind == "created":
                counts[package] = counts.get(package, 0) + 1
        return dict(sorted(counts.items()))

    def _dependency(self, change: Change) -> str | None:
        package = self.package_files.get(change.path)
        return package if package is not None and package not in self.owned_packages else None


def _entries(path: Path) -> dict[str, str]:
    """name -> line of an account file (missing file: none)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    return {line.split(":", 1)[0]: line for line in lines if line and not line.startswith("#")}


@lru_cache(maxsize=16)
def _package_files(repository: Path, packages: tuple[str, ...]) -> dict[str, str]:
    """Every path (files and their directories) shipped by ``packages`` and their dependencies in the
    repository's index, read from the .deb files themselves, and the package that ships it (an owned
    package wins a directory two packages share)."""
    index = _index(repository / "Packages")
    wanted, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in wanted or name not in index:
            continue
        wanted.add(name)
        todo.extend(index[name]["depends"])
    paths: dict[str, str] = {}
    for name in sorted(wanted, key=lambda n: n in packages):  # owned packages last: they win
        listing = subprocess.run(["dpkg-deb", "--contents", str(repository / index[name]["filename"])],
                                 capture_output=True, text=True, check=False).stdout
        for line in listing.splitlines():
            entry = line.split(None, 5)[-1].split(" -> ")[0].removeprefix(".").rstrip("/")
            merged = "/usr" + entry if entry.startswith(tuple(d + "/" for d in USR_MERGED)) else entry
            for path in {entry, merged}:
                while path:
                    paths[path] = name
                    path = path.rsplit("/", 1)[0]
    return paths


def _index(packages_file: Path) -> dict[str, dict[str, Any]]:
    """Package name -> {filename, depends} from a Packages index (every alternative counts as a dependency)."""
    index: dict[str, dict[str, Any]] = {}
    for stanza in packages_file.read_text().split("\n\n") if packages_file.is_file() else []:
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" not in fields:
            continue
        depends = []
        for key in ("Pre-Depends", "Depends"):
            for clause in fields.get(key, "").split(","):
                for alternative in clause.split("|"):
                    if alternative.strip():
                        depends.append(alternative.split()[0].split(":")[0])
        index[fields["Package"]] = {"filename": fields.get("Filename", ""), "depends": depends}
    return index
