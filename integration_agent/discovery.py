"""Discovery, the knowledge agent's other half: facts about the hosts.

``discover`` runs one read-only fact-gathering playbook (``playbooks/discover.yml``: processes, listening TCP
ports, packages and systemd units), then the verify entry point of every integration it finds installed,
in the same run so each host's facts are gathered once. Each integration's discovery rules (its manifest's
``discovery``) then say where it is relevant, with the matching rules as the evidence. Nothing changes on
any host.

``install_recommended`` installs, per host, what discovery recommends: integration by integration in the
order of their ``requires``, each an ordinary install (plan, apply, verify, recovery, batches). A host where
an integration failed gets none of the integrations that require it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .ansible_env import AnsibleOptions, AnsibleSecrets
from .catalog import Catalog, Discovery, Footprint, Integration, Match
from .errors import ExecutionFailed, IntegrationError, TotalFailure
from .executor import PlaybookRun
from .inventory import Inventories, inspect_inventory, sources
from .paths import PROJECT_ROOT
from .render import entry_playbook
from .runs import REPORT, RunDir, RunRequest
from .scratch import Scratch
from .settings import Settings, load_settings
from .status import HostStatus
from .streaming import make_executor

if TYPE_CHECKING:
    from .lifecycle import RunReport, StageEvent
    from .params import Prompt

DISCOVER_PLAYBOOK = PROJECT_ROOT / "playbooks" / "discover.yml"
# Units every host runs, left out of "what runs there" (the JSON report keeps them all).
_PLUMBING = ("systemd-", "dbus", "getty@", "serial-getty@", "console-getty", "user@", "user-runtime-dir@",
             "ssh", "cron", "rsyslog", "networking", "ifupdown", "polkit", "unattended-upgrades", "e2scrub")


def _unit(name: str) -> str:
    return name if "." in name else f"{name}.service"


@dataclass(frozen=True)
class HostFacts:
    """What the discovery playbook found on one host."""

    os_family: str = ""
    distribution: str = ""
    version: str = ""
    processes: frozenset[str] = frozenset()
    ports: frozenset[int] = frozenset()
    packages: Mapping[str, str] = field(default_factory=dict)  # the packages asked about that are installed
    active_units: frozenset[str] = frozenset()
    unit_files: frozenset[str] = frozenset()  # of the services asked about

    @classmethod
    def from_evidence(cls, data: Mapping[str, Any]) -> HostFacts:
        return cls(os_family=str(data.get("os_family", "")), distribution=str(data.get("distribution", "")),
                   version=str(data.get("distribution_version", "")),
                   processes=frozenset(map(str, data.get("processes") or ())),
                   ports=frozenset(int(p) for p in data.get("ports") or ()),
                   packages={str(k): str(v) for k, v in (data.get("packages") or {}).items()},
                   active_units=frozenset(map(str, data.get("active_units") or ())),
                   unit_files=frozenset(map(str, data.get("unit_files") or ())))

    def match(self, rule: Match) -> str | None:
        """The evidence that ``rule`` holds on this host, or None."""
        if rule.process is not None and rule.process in self.processes:
            return f"process {rule.process} is running"
        if rule.package is not None and rule.package in self.packages:
            return f"package {rule.package} {self.packages[rule.package]} is installed"
        if rule.port is not None and rule.port in self.ports:
            return f"TCP port {rule.port} is listening"
        if rule.unit is not None and _unit(rule.unit) in self.active_units:
            return f"unit {_unit(rule.unit)} is active"
        if rule.os_family is not None and rule.os_family.lower() == self.os_family.lower():
            return f"os_family is {self.os_family}"
        return None

    def relevant(self, discovery: Discovery) -> list[str] | None:
        """The evidence that an integration with these rules belongs here, or None (no rule: never)."""
        if discovery.empty:
            return None
        evidence = [e for rule in discovery.any if (e := self.match(rule))]
        if discovery.any and not evidence:
            return None
        for rule in discovery.all:
            if (e := self.match(rule)) is None:
                return None
            evidence.append(e)
        return evidence

    def installed(self, owns: Footprint) -> list[str]:
        """What shows an integration with this footprint is installed here (its packages, its unit files)."""
        found = [f"package {p} {self.packages[p]}" for p in owns.packages if p in self.packages]
        found += [f"unit file {_unit(s)}" for s in owns.services if _unit(s) in self.unit_files]
        return found

    @property
    def services(self) -> list[str]:
        """Active services other than the plumbing every host runs."""
        return sorted(u.removesuffix(".service") for u in self.active_units
                      if u.endswith(".service") and not u.startswith(_PLUMBING))


@dataclass
class Installed:
    """An integration found on a host, and what its verify entry point said."""

    integration: str
    status: str  # verified | failing | unknown (verify could not run there)
    found: list[str]
    evidence: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class Recommendation:
    integration: str
    why: list[str]  # the matching rules, or the failing verify
    repair: bool = False  # installed but failing: installing again repairs it
    requires: list[str] = field(default_factory=list)  # required integrations not verified here yet
    blocked: str | None = None  # why it cannot be installed here now


@dataclass
class HostDiscovery:
    host: str
    status: str  # discovered | unreachable | failed | unknown
    platform: str = ""
    services: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    recommended: list[Recommendation] = field(default_factory=list)
    installed: list[Installed] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def verified(self, integration: str) -> bool:
        return any(i.integration == integration and i.status == "verified" for i in self.installed)


@dataclass
class DiscoveryReport:
    run_id: str
    run_dir: str
    status: str  # ok | partial | failed
    hosts: dict[str, HostDiscovery]

    @property
    def exit_code(self) -> int:
        return {"ok": 0, "partial": ExecutionFailed.exit_code}.get(self.status, TotalFailure.exit_code)

    def recommended(self) -> dict[str, list[str]]:
        """{integration: hosts} of every recommendation that is not blocked."""
        found: dict[str, list[str]] = {}
        for host in self.hosts.values():
            for rec in host.recommended:
                if rec.blocked is None:
                    found.setdefault(rec.integration, []).append(host.host)
        return found

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "run_dir": self.run_dir, "status": self.status, "exit_code": self.exit_code,
                "hosts": {name: asdict(host) for name, host in self.hosts.items()}}


def _interest(integrations: Iterable[Integration]) -> tuple[list[str], list[str]]:
    """The packages and services the discovery playbook reports: those of rules and footprints."""
    packages: set[str] = set()
    services: set[str] = set()
    for integration in integrations:
        manifest = integration.manifest
        packages.update(manifest.owns.packages)
        services.update(manifest.owns.services)
        for rule in (*manifest.discovery.any, *manifest.discovery.all):
            if rule.package:
                packages.add(rule.package)
    return sorted(packages), sorted(services)


def _host(name: str, outcome: Any, completed: bool) -> HostDiscovery:
    if outcome is None:
        return HostDiscovery(name, "unknown" if not completed else "failed",
                             failures=["discover: no result for this host"])
    if outcome.unreachable:
        return HostDiscovery(name, "unreachable", failures=list(outcome.failures))
    if outcome.failed or outcome.evidence is None:
        return HostDiscovery(name, "failed", failures=list(outcome.failures) or ["discover: no facts reported"])
    facts = HostFacts.from_evidence(outcome.evidence)
    return HostDiscovery(name, "discovered", platform=f"{facts.distribution} {facts.version}".strip(),
                         services=facts.services, ports=sorted(facts.ports), facts=outcome.evidence)


def _recommend(host: HostDiscovery, catalog: Catalog) -> None:
    """Fill in the host's recommendations from the rules and what verify said (installed hosts known)."""
    facts = HostFacts.from_evidence(host.facts)
    failing = {i.integration: i for i in host.installed if i.status == "failing"}
    for name, integration in sorted(catalog.integrations.items()):
        if host.verified(name):
            continue
        if name in failing:
            rec = Recommendation(name, [f"installed but failing verify: {'; '.join(failing[name].failures)}"],
                                 repair=True)
        elif (evidence := facts.relevant(integration.manifest.discovery)) is not None and not any(
                i.integration == name for i in host.installed):
            rec = Recommendation(name, evidence)
        else:
            continue
        if not integration.has_role:
            rec.blocked = "no curated role (install it with --generate)"
        host.recommended.append(rec)
    planned = {rec.integration for rec in host.recommended}
    for rec in host.recommended:
        rec.requires = [r for r in catalog.get(rec.integration).manifest.requires if not host.verified(r)]
        missing = [r for r in rec.requires if r not in planned]
        if missing and rec.blocked is None:
            rec.blocked = f"needs {', '.join(missing)} first, which is not installed and working on this host"


def discover(inventory: Inventories, *, limit: str | None = None, settings: Settings | None = None,
             catalog: Catalog | None = None, ansible: AnsibleOptions | None = None,
             ansible_secrets: AnsibleSecrets | None = None, scratch: Scratch | None = None,
             cancel: threading.Event | None = None,
             on_event: Callable[[str, dict[str, Any]], None] | None = None) -> DiscoveryReport:
    """What each targeted host runs, which integrations are installed there (and whether they verify), and
    which are recommended, with the evidence. Read only: the discovery playbook and verify entry points."""
    from .params import resolve

    settings = settings or load_settings()
    catalog = catalog or Catalog.for_settings(settings)
    ansible = ansible or AnsibleOptions()
    scratch = scratch or Scratch.for_settings(settings)
    view = inspect_inventory(inventory, limit, options=ansible, secrets=ansible_secrets, scratch=scratch)
    targets = view.hosts
    packages, services = _interest(catalog.integrations.values())
    run = RunDir.create(settings.runs_dir)
    run.write_request(RunRequest.new(action="discover", inventory=[str(p.resolve()) for p in sources(inventory)],
                                     limit=limit, targets=targets, ansible=ansible.recorded()))
    executor = make_executor(settings, ansible, ansible_secrets, scratch)

    def run_playbook(stage: str, playbook: Any, hosts: Sequence[str], **kwargs: Any) -> PlaybookRun:
        return executor.run(playbook, sources(inventory), limit=",".join(hosts), events_file=run.events_file,
                            stage=stage, cancel=cancel,
                            on_event=(lambda event: on_event(stage, event)) if on_event else None, **kwargs)

    with executor.fact_cache():
        result = run_playbook("discover", DISCOVER_PLAYBOOK, targets,
                              extravars={"intagent_discover_packages": packages,
                                         "intagent_discover_services": services})
        hosts = {name: _host(name, result.hosts.get(name), result.completed) for name in targets}
        found = {name: HostFacts.from_evidence(h.facts) for name, h in hosts.items() if h.status == "discovered"}
        for name, integration in sorted(catalog.integrations.items()):
            owns = integration.manifest.owns
            where = {h: evidence for h, facts in found.items() if (evidence := facts.installed(owns))}
            if not where:
                continue
            if not integration.has_role or (cancel is not None and cancel.is_set()):
                for h, evidence in where.items():
                    hosts[h].installed.append(Installed(name, "unknown", evidence,
                                                        failures=["verify: not run (no curated role)"]))
                continue
            params = resolve(integration, (), require=False)
            playbook = run.playbook(f"{name}-verify.yml",
                                    entry_playbook(name, "verify", integration.manifest.facts))
            verified = run_playbook(f"verify {name}", playbook, sorted(where), extravars=params.extravars,
                                    secrets=params.secrets, roles_path=integration.roles_path)
            for h, evidence in where.items():
                outcome = verified.hosts.get(h)
                status = ("unknown" if outcome is None or outcome.unreachable
                          else "verified" if outcome.succeeded else "failing")
                hosts[h].installed.append(Installed(name, status, evidence, outcome.evidence if outcome else None,
                                                    list(outcome.failures) if outcome else []))
    for host in hosts.values():
        if host.status == "discovered":
            _recommend(host, catalog)
    good = sum(1 for h in hosts.values() if h.status == "discovered")
    status = "ok" if good == len(hosts) else "failed" if good == 0 else "partial"
    report = DiscoveryReport(run.id, str(run.path), status, hosts)
    run.write_json(REPORT, report.to_json())
    run.reserve.unlink(missing_ok=True)
    return report


# -- install --recommended --------------------------------------------------------------------------------

# How an install run leaves a host whose integration works: its dependents may go on.
WORKING = frozenset({HostStatus.INSTALLED, HostStatus.UNCHANGED, HostStatus.VERIFIED})


@dataclass
class RecommendedReport:
    """What ``install --recommended`` did: the discovery, then one install run per integration."""

    discovery: DiscoveryReport
    order: list[str]
    runs: list[RunReport] = field(default_factory=list)
    hosts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # host -> integration -> outcome
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        codes = [r.exit_code for r in self.runs if r.exit_code]
        if self.interrupted:
            return 130
        if codes:
            return codes[0]
        skipped = any(o["status"] == HostStatus.SKIPPED for h in self.hosts.values() for o in h.values())
        return ExecutionFailed.exit_code if skipped or self.discovery.exit_code else 0

    def to_json(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "order": self.order, "hosts": self.hosts,
                "discovery": self.discovery.to_json(), "runs": [r.to_json() for r in self.runs]}


def scoped_variables(variables: Sequence[str], catalog: Catalog) -> dict[str, list[str]]:
    """``--var NAME.KEY=VALUE`` of install --recommended, as each integration's ``KEY=VALUE``."""
    scoped: dict[str, list[str]] = {}
    for pair in variables:
        key, equals, value = pair.partition("=")
        name, dot, param = key.partition(".")
        if pair.startswith("@") or not equals or not dot or not param:
            raise IntegrationError(f"--var {pair!r}: with --recommended, name the integration: "
                                   "--var NAME.KEY=VALUE (for example nginx_exporter.listen_address=:9113)")
        catalog.get(name)  # unknown: IntegrationError naming the known ones
        scoped.setdefault(name, []).append(f"{param}={value}")
    return scoped


def install_recommended(inventory: Inventories, *, limit: str | None = None, variables: Sequence[str] = (),
                        settings: Settings | None = None, catalog: Catalog | None = None,
                        ansible: AnsibleOptions | None = None, ansible_secrets: AnsibleSecrets | None = None,
                        scratch: Scratch | None = None, cancel: threading.Event | None = None,
                        on_event: StageEvent | None = None, prompt: Prompt | None = None,
                        on_discovered: Callable[[DiscoveryReport], bool] | None = None,
                        **install: Any) -> RecommendedReport:
    """Discover, then install on each host exactly what discovery recommends, dependencies first.

    ``on_discovered(report)`` sees the discovery before anything is installed; False stops there.
    ``install`` goes to each ``run_action("install", ...)`` (confirm, batches, max_fail)."""
    from .api import run_action

    settings = settings or load_settings()
    catalog = catalog or Catalog.for_settings(settings)
    scoped = scoped_variables(variables, catalog)
    scratch = scratch or Scratch.for_settings(settings)
    common: dict[str, Any] = {"settings": settings, "ansible": ansible, "ansible_secrets": ansible_secrets,
                              "scratch": scratch, "cancel": cancel}
    found = discover(inventory, limit=limit, catalog=catalog,
                     on_event=(lambda stage, event: on_event("discover", event)) if on_event else None, **common)
    wanted = found.recommended()
    report = RecommendedReport(found, catalog.install_order(list(wanted)))
    for seen in found.hosts.values():
        outcomes = report.hosts.setdefault(seen.host, {})
        for rec in seen.recommended:
            if rec.blocked is not None:
                outcomes[rec.integration] = {"status": HostStatus.SKIPPED, "detail": rec.blocked}
    if on_discovered is not None and not on_discovered(found):
        return report
    for name in report.order:
        if cancel is not None and cancel.is_set():
            report.interrupted = True
            break
        hosts = []
        for host in wanted[name]:
            outcomes = report.hosts[host]
            failed = [r for r in catalog.get(name).manifest.requires
                      if r in outcomes and outcomes[r]["status"] not in WORKING]
            if failed:
                outcomes[name] = {"status": HostStatus.SKIPPED,
                                  "detail": f"not attempted: {', '.join(failed)} failed on this host"}
            else:
                hosts.append(host)
        if not hosts:
            continue
        run = run_action("install", name, inventory, limit=",".join(hosts), variables=scoped.get(name, ()),
                         catalog=catalog, on_event=on_event, prompt=prompt, **common, **install)
        report.runs.append(run)
        for target in hosts:
            result = run.hosts.get(target)
            status = result.status if result is not None else HostStatus.UNKNOWN
            detail = "; ".join(result.failures) if result is not None else "not in the run"
            report.hosts[target][name] = {"status": status, "detail": detail, "run_id": run.run_id}
    return report
